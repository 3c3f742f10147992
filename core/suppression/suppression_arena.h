// The byte arena behind the suppression table: every entry's key and event id, packed back
// to back instead of as std::strings (32 bytes each plus a heap block per string longer
// than 15 bytes, plus malloc's own overhead).
//
// Memory comes in chunks (4 MiB for the table) that never move: growing the arena adds a
// chunk, so there is no reallocation spike (a doubling std::vector<char> of 600 MB would
// need 1.8 GB for an instant, and copy it while holding the lock that lookups wait on). A
// block never spans two chunks; an offset is (chunk << chunk_bits | position) and fits the
// table's 48-bit field.
//
// A block freed by a removal goes on a free list for its exact length and is handed out
// again to the next block of that length: keys cluster in a narrow range of lengths, so
// churn (soft bounces that expire, unsubscribes undone) reuses space instead of growing.
//
// Text encoding of one entry (what the table stores at an offset), varints little-endian
// base 128:
//   varint scope id, varint domain id (suppression_interner.h), varint local-part length,
//   the local part, then the event id:
//     one byte n < 0x80:  n raw bytes follow (n <= 64);
//     one byte 0x80 | suffix_len << 1 | lower:  a UUID (8-4-4-4-12 hex, all upper- or all
//       lower-case) as 16 bytes, then suffix_len raw bytes (".3" in Kasi's "<uuid>.<n>").
//   Kasi's event ids are message ids, so this turns ~38 bytes into ~19.
// Not thread-safe: the table's owner serializes mutations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

class TextArena {
  public:
    explicit TextArena(unsigned chunk_bits = 22)
        : chunk_bits_(chunk_bits), chunk_size_(size_t(1) << chunk_bits), used_(chunk_size_) {}

    // Room for `len` bytes (len <= the chunk size); returns the offset.
    uint64_t alloc(size_t len);
    void release(uint64_t off, size_t len);
    uint8_t* at(uint64_t off) {
        return chunks_[off >> chunk_bits_].get() + (off & (chunk_size_ - 1));
    }
    const uint8_t* at(uint64_t off) const {
        return chunks_[off >> chunk_bits_].get() + (off & (chunk_size_ - 1));
    }
    size_t reserved_bytes() const { return chunks_.size() * chunk_size_; }
    size_t free_bytes() const { return free_bytes_; }

  private:
    unsigned chunk_bits_;
    size_t chunk_size_;
    std::vector<std::unique_ptr<uint8_t[]>> chunks_;
    size_t used_;                              // bytes used in the last chunk (full: none yet)
    std::vector<std::vector<uint64_t>> free_;  // free blocks, by exact length
    size_t free_bytes_ = 0;
};

void write_varint(std::string& out, uint64_t v);
size_t read_varint(const uint8_t* p, size_t& value);  // returns the bytes read

// What identifies an entry: its scope, its domain and its local part (before the last @).
struct TextKey {
    uint32_t scope = 0;
    uint32_t domain = 0;
    std::string_view local;
    bool operator==(const TextKey&) const = default;
};

void encode_text(std::string& out, const TextKey& key, std::string_view event);
struct DecodedText {
    TextKey key;
    size_t size = 0;  // bytes of the whole block
};
// Reads the key (and the block's size) without decoding the event.
DecodedText decode_text(const uint8_t* p);
std::string decode_event(const uint8_t* p);  // p: the start of the block

}  // namespace kasi
