#include "core/util/ids.h"

#include <random>

namespace kasi {

std::string new_uuid() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char* hex = "0123456789ABCDEF";
    uint64_t a = rng(), b = rng();
    a = (a & ~0xF000ull) | 0x4000ull;                         // version 4
    b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 32; ++i) {
        uint64_t w = i < 16 ? a : b;
        int shift = 60 - 4 * (i % 16);
        out += hex[(w >> shift) & 15];
        if (i == 7 || i == 11 || i == 15 || i == 19) out += '-';
    }
    return out;
}

}  // namespace kasi
