#include "core/suppression/suppression_interner.h"

#include <cstring>
#include <random>

#include "core/suppression/suppression_hash.h"

namespace kasi {

uint64_t suppression_hash::random_seed() {
    std::random_device rd;
    return uint64_t(rd()) << 32 | rd();
}

uint64_t StringInterner::hash(std::string_view s) const {
    return suppression_hash::hash(seed_, s);
}

std::string_view StringInterner::name(uint32_t id) const {
    const uint8_t* p = text_.at(offsets_[id]);
    size_t len = 0, k = read_varint(p, len);
    return std::string_view(reinterpret_cast<const char*>(p + k), len);
}

std::optional<uint32_t> StringInterner::find(std::string_view s) const {
    if (slots_.empty()) return std::nullopt;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash(s) & mask; slots_[i] != 0; i = (i + 1) & mask)
        if (name(slots_[i] - 1) == s) return slots_[i] - 1;
    return std::nullopt;
}

void StringInterner::place(std::vector<uint32_t>& slots, uint32_t id) const {
    size_t mask = slots.size() - 1;
    size_t i = hash(name(id)) & mask;
    while (slots[i] != 0) i = (i + 1) & mask;
    slots[i] = id + 1;
}

uint32_t StringInterner::intern(std::string_view s) {
    if (auto id = find(s)) return *id;
    std::string block;
    write_varint(block, s.size());
    block += s;
    uint64_t off = text_.alloc(block.size());
    std::memcpy(text_.at(off), block.data(), block.size());
    uint32_t id = uint32_t(offsets_.size());
    offsets_.push_back(off);
    if ((offsets_.size()) * 2 > slots_.size()) {  // keep the load at most 0.5
        std::vector<uint32_t> bigger(std::max<size_t>(64, slots_.size() * 2), 0);
        for (uint32_t i = 0; i < id; ++i) place(bigger, i);
        slots_.swap(bigger);
    }
    place(slots_, id);
    return id;
}

size_t StringInterner::memory_bytes() const {
    return text_.reserved_bytes() + offsets_.capacity() * sizeof(uint64_t) +
           slots_.capacity() * sizeof(uint32_t);
}

}  // namespace kasi
