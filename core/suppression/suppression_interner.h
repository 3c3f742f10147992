// Strings that many entries share, stored once and named by a dense 32-bit id: the
// suppression table's scopes ("tenant:acme") and recipient domains ("gmail.com"). A list
// of 10 million addresses has a few hundred thousand distinct domains at most, most of
// its entries on a dozen of them; storing the domain as a 1-3 byte id instead of its
// ~14 bytes saves about 110 MB at 10M (docs/suppression.md).
//
// The layout is the table's in miniature: the strings in a TextArena (varint length,
// bytes), an id -> offset array, and an open-addressing array of ids at a load of at most
// 0.5: about 20 bytes plus the string per distinct value, against ~80 in an
// unordered_map<std::string, uint32_t>. Ids are never freed: a domain stays interned
// until the store is opened again (its journal replayed), which bounds it by the distinct
// values seen since.
// Not thread-safe: the table's owner serializes intern() with lookups.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/suppression/suppression_arena.h"

namespace kasi {

class StringInterner {
  public:
    explicit StringInterner(uint64_t seed) : seed_(seed) {}

    std::optional<uint32_t> find(std::string_view s) const;
    uint32_t intern(std::string_view s);
    std::string_view name(uint32_t id) const;
    size_t size() const { return offsets_.size(); }
    size_t memory_bytes() const;

  private:
    uint64_t hash(std::string_view s) const;
    void place(std::vector<uint32_t>& slots, uint32_t id) const;

    uint64_t seed_;
    TextArena text_{16};             // 64 KiB chunks: a few scopes must not cost 4 MiB
    std::vector<uint64_t> offsets_;  // id -> arena offset
    std::vector<uint32_t> slots_;    // id + 1; 0 = empty
};

}  // namespace kasi
