// The suppression store's journal: the on-disk truth from which the in-memory table is
// rebuilt at every start (docs/suppression.md has the format table).
//
//   header (16 bytes): magic "KSUPJRNL", u16 format version (1), u16 zero,
//                      u32 CRC-32C of bytes 0..11
//   record:            u32 payload length n, u32 CRC-32C of (the 4 length bytes + payload),
//                      n bytes of payload
//   add payload:       u8 1, u8 reason, u64 at, u64 created, u64 expires,
//                      u8 scope length, scope, u16 address length, address,
//                      u8 event length, event
//   remove payload:    u8 2, u64 at, u8 scope length, scope, u16 address length, address
// Integers are little-endian. `at` is when the record was written (unix seconds); replay
// decides replacements with it (see suppression_table.h), so replaying gives the state the
// live store had.
//
// Recovery. A record is good when its length is sane, it lies within the file, its CRC
// matches and its payload parses. The first record that is not good ends the replay:
//   - if no good record follows it anywhere in the file, it is a torn tail (a write that a
//     crash interrupted, or garbage appended): the store truncates the file there and logs
//     it; nothing acknowledged is lost, because add() returns only after fdatasync;
//   - if a good record follows, bytes in the middle were damaged: opening fails with the
//     file name and both byte offsets, because dropping acknowledged suppressions silently
//     would send mail to addresses that asked not to get it.
// A good-looking checksum over garbage has a chance of 2^-32 per candidate position.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/suppression/suppression_entry.h"

namespace kasi {

constexpr size_t journal_header_size = 16;
constexpr size_t journal_prefix_size = 8;       // length + CRC before each payload
constexpr uint32_t journal_max_payload = 1024;  // a record's payload never comes close
constexpr uint16_t journal_version = 1;

enum class JournalOp : uint8_t { add = 1, remove = 2 };

struct JournalRecord {
    JournalOp op = JournalOp::add;
    int64_t at = 0;          // write time, unix seconds
    SuppressionEntry entry;  // remove: only scope and address
};

std::string journal_header();
void append_record(std::string& out, const JournalRecord& r);  // framed, ready to write
bool decode_record(std::string_view payload, JournalRecord& r, std::string& err);

struct JournalScan {
    uint64_t file_size = 0;
    uint64_t end = 0;      // just past the last good record: where appends continue
    uint64_t records = 0;  // good records
    bool torn = false;     // bytes after `end` are a torn tail
    bool fresh = false;    // no complete header: a new (or never written) journal
};

// Reads the journal open at `fd` from the start, streaming (a few MiB of buffer whatever
// the file size), and calls `fn` for every good record in order. False with `err` naming
// `path` and the byte offset on a bad header or damage in the middle.
bool scan_journal(int fd, const std::string& path,
                  const std::function<void(const JournalRecord&)>& fn, JournalScan& out,
                  std::string& err);

// pwrite until done (EINTR retried); false with errno set.
bool pwrite_all(int fd, std::string_view data, uint64_t offset);

}  // namespace kasi
