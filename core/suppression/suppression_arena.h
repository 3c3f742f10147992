// The byte arena behind the suppression table: every entry's address and event id, packed
// back to back instead of as two std::strings (32 bytes each plus a heap block per string
// longer than 15 bytes, plus malloc's own overhead).
//
// Memory comes in 4 MiB chunks that never move: growing the arena adds a chunk, so there is
// no reallocation spike (a doubling std::vector<char> of 600 MB would need 1.8 GB for an
// instant, and copy it while holding the lock that lookups wait on). A block never spans
// two chunks; an offset is (chunk << 22 | position) and fits the table's 48-bit field.
//
// A block freed by a removal goes on a free list for its exact length and is handed out
// again to the next block of that length: addresses cluster in a narrow range of lengths,
// so churn (soft bounces that expire, unsubscribes undone) reuses space instead of growing.
//
// Text encoding of one entry (what the table stores at an offset):
//   varint address length, address bytes, then the event id:
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
    static constexpr unsigned chunk_bits = 22;
    static constexpr size_t chunk_size = size_t(1) << chunk_bits;

    // Room for `len` bytes (len <= chunk_size); returns the offset.
    uint64_t alloc(size_t len);
    void release(uint64_t off, size_t len);
    uint8_t* at(uint64_t off) {
        return chunks_[off >> chunk_bits].get() + (off & (chunk_size - 1));
    }
    const uint8_t* at(uint64_t off) const {
        return chunks_[off >> chunk_bits].get() + (off & (chunk_size - 1));
    }
    size_t reserved_bytes() const { return chunks_.size() * chunk_size; }
    size_t free_bytes() const { return free_bytes_; }

  private:
    std::vector<std::unique_ptr<uint8_t[]>> chunks_;
    size_t used_ = chunk_size;                 // bytes used in the last chunk (full: none yet)
    std::vector<std::vector<uint64_t>> free_;  // free blocks, by exact length
    size_t free_bytes_ = 0;
};

// The encoding above. encode_text appends to `out`; text_size is the encoded length.
void encode_text(std::string& out, std::string_view address, std::string_view event);
struct DecodedText {
    std::string_view address;
    size_t size = 0;  // bytes of the whole block
};
// Reads the address (and the block's size) without decoding the event.
DecodedText decode_address(const uint8_t* p);
std::string decode_event(const uint8_t* p);  // p: the start of the block

}  // namespace kasi
