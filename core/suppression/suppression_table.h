// The in-memory index of the suppression list: what every recipient lookup reads, sized so
// that 10 million entries fit in a few hundred MB (docs/suppression.md has the measurement).
//
// Why not unordered_map<std::string, Entry>: a node per entry (its own malloc block), a
// bucket pointer, and three std::strings of 32 bytes each with a heap block for any longer
// than 15 bytes come to roughly 250 bytes per entry before the text itself, 3 GB at 10M.
// The layout here, per entry:
//   - a 16-byte record in a chunked array: reason, created and expires (32-bit unix
//     seconds) and the arena offset of its text. Chunks never move, so growth never
//     copies and never pauses lookups.
//   - its key and event id in the TextArena (suppression_arena.h): scope and domain as
//     1-3 byte ids (scopes and domains are interned, suppression_interner.h: a handful of
//     tenants and a few providers serve millions of entries), the local part, and the
//     event id (Kasi's own packed to 19 bytes).
//   - a slot in an open-addressing table: the record index (4 bytes) and an 8-bit tag from
//     the hash (1 byte), at a load of 0.4 to 0.8. Linear probing reads the tag bytes, 64 to
//     a cache line, and touches a record only when a tag matches; so a miss (the common
//     case: most recipients are not suppressed) usually costs one or two cache lines. An
//     address whose domain was never interned misses without a probe.
// The key is a 64-bit hash of (scope id, domain id, local part), seeded per table
// (suppression_hash.h).
//
// Removal deletes the slot by backward shift (no tombstones, so probe lengths do not decay
// with churn); the record goes on a free list and its text on the arena's free lists.
//
// Replacement rule (upsert): an add replaces an existing entry unless that entry is newer
// (larger `created`) and still in force at the add's write time `at`. Deciding with the
// write time recorded in the journal, never the clock at replay, is what makes a replay
// rebuild exactly the state the live store had (suppression_store.h).
//
// Not thread-safe: SuppressionStore holds a shared lock around lookups and an exclusive one
// around mutations. Growing the slot array takes two steps so that the bigger array can be
// built while lookups continue: grown() only reads, install() swaps.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/suppression/suppression_arena.h"
#include "core/suppression/suppression_entry.h"
#include "core/suppression/suppression_interner.h"

namespace kasi {

class SuppressionTable {
  public:
    SuppressionTable();

    struct Slots {
        std::vector<uint32_t> rec;  // record index
        std::vector<uint8_t> tag;   // 0 = empty, else 1..255 from the hash
    };

    // Lookups (shared lock). Addresses are normalized already.
    std::optional<uint32_t> scope_id(std::string_view scope) const { return scopes_.find(scope); }
    // The key of `address` in scope 0 (set .scope before find); none when no entry can match.
    std::optional<TextKey> key(std::string_view address) const;
    std::optional<uint32_t> find(const TextKey& key) const;
    std::optional<uint32_t> find(uint32_t scope, std::string_view address) const;
    SuppressionEntry entry(uint32_t rec) const;
    bool live(uint32_t rec) const { return record(rec).live; }
    bool expired(uint32_t rec, int64_t now) const;
    SuppressionReason reason(uint32_t rec) const { return SuppressionReason(record(rec).reason); }
    uint32_t scope_of(uint32_t rec) const { return key_of(record(rec)).scope; }
    uint32_t records() const { return records_; }  // record indices are [0, records())
    size_t size() const { return size_; }
    uint64_t count(SuppressionReason r) const { return counts_[reason_index(r)]; }
    size_t memory_bytes() const;
    // A lower bound of the earliest `expires` among entries (0: none expires).
    int64_t next_expiry() const { return next_expiry_; }

    // Mutations (exclusive lock). True when the table changed.
    bool upsert(const SuppressionEntry& e, int64_t at);
    bool erase(std::string_view scope, std::string_view address);
    // Drops entries with 0 < expires <= horizon among records [from, to); returns the count
    // and lowers `next` to the earliest expiry it kept.
    size_t drop_expired(uint32_t from, uint32_t to, int64_t horizon, int64_t& next);
    void set_next_expiry(int64_t t) { next_expiry_ = t; }

    // Growth: true when `extra` more entries would load the slots beyond 0.8.
    bool needs_growth(size_t extra) const;
    Slots grown(size_t extra) const;  // the slots rebuilt for size() + extra at most 0.5
    void install(Slots s) { slots_ = std::move(s); }

  private:
    struct Rec {  // 16 bytes
        uint32_t text_lo;
        uint16_t text_hi;
        uint8_t reason;
        uint8_t live;
        uint32_t created;
        uint32_t expires;
    };
    static_assert(sizeof(Rec) == 16);
    static constexpr unsigned rec_chunk_bits = 16;

    const Rec& record(uint32_t i) const {
        return rec_chunks_[i >> rec_chunk_bits][i & ((1u << rec_chunk_bits) - 1)];
    }
    Rec& record(uint32_t i) {
        return rec_chunks_[i >> rec_chunk_bits][i & ((1u << rec_chunk_bits) - 1)];
    }
    static uint64_t text_of(const Rec& r) { return uint64_t(r.text_hi) << 32 | r.text_lo; }
    static void set_text(Rec& r, uint64_t off);
    TextKey key_of(const Rec& r) const { return decode_text(text_.at(text_of(r))).key; }
    uint64_t hash(const TextKey& k) const;
    static uint8_t tag_of(uint64_t h) { return uint8_t(1 + (h >> 56) % 255); }
    uint32_t new_record();
    void store_text(Rec& r, const TextKey& k, std::string_view event);
    void place(Slots& s, uint32_t rec, uint64_t h) const;
    void erase_slot(size_t i);
    void erase_record(uint32_t rec);
    std::optional<size_t> find_slot(const TextKey& k, uint64_t h) const;

    uint64_t seed_;
    Slots slots_;
    std::vector<std::unique_ptr<Rec[]>> rec_chunks_;
    uint32_t records_ = 0;
    std::vector<uint32_t> free_records_;
    TextArena text_;
    std::string scratch_;  // encode buffer
    size_t size_ = 0;
    std::array<uint64_t, all_suppression_reasons.size()> counts_{};
    int64_t next_expiry_ = 0;
    StringInterner scopes_, domains_;
};

}  // namespace kasi
