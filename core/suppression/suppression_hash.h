// The seeded 64-bit hash of the suppression table and its interners (wyhash's mixing step:
// a 64x64->128-bit multiply folded to 64 bits). The seed is random per table, so that
// addresses chosen by an outsider (a bounce may name any recipient it likes) cannot be
// made to collide and turn lookups into long probe runs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace kasi::suppression_hash {

__extension__ typedef unsigned __int128 u128;

inline uint64_t mum(uint64_t a, uint64_t b) {
    u128 r = u128(a) * b;
    return uint64_t(r) ^ uint64_t(r >> 64);
}

constexpr uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                   k2 = 0x8ebc6af09c88c6e3ull, k3 = 0x589965cc75374cc3ull;

// `extra` folds small integers (ids) into the same hash.
inline uint64_t hash(uint64_t seed, std::string_view s, uint64_t extra = 0) {
    uint64_t h = mum(seed ^ extra ^ k0, s.size() ^ k1);
    const char* p = s.data();
    size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        h = mum(v ^ seed ^ k1, h ^ k2);
    }
    uint64_t v = 0;
    if (n) std::memcpy(&v, p, n);
    return mum(v ^ seed ^ k3, h ^ k0);
}

uint64_t random_seed();

}  // namespace kasi::suppression_hash
