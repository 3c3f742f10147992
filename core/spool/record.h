// Spool records and segment files. A segment is an append-only file of records:
//
//   offset  size  field
//   0       4     magic "KSPL"
//   4       1     type (1 message, 2 state update)
//   5       1     format version (1)
//   6       2     reserved, zero
//   8       4     payload length (little-endian)
//   12      4     CRC-32C of the payload
//   16      4     CRC-32C of bytes 0..15
//   20      n     payload
//
// A message payload is a 4-byte envelope length, the envelope text (envelope.h) and the
// message bytes (CRLF, not dot-stuffed). A state payload is a StateUpdate's text.
// Records are never rewritten; a reader stops at the first record that does not verify,
// which is how a torn tail left by a crash is recognised (it was never acknowledged).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kasi {

enum class RecordType : uint8_t { message = 1, state = 2 };

constexpr size_t record_header_size = 20;
constexpr uint32_t record_max_payload = 1u << 30;

// Fills `hdr` (record_header_size bytes) for a payload given in up to three pieces.
void encode_record_header(uint8_t* hdr, RecordType type, std::string_view a,
                          std::string_view b = {}, std::string_view c = {});

struct RecordView {
    RecordType type;
    uint64_t offset;  // of the header within the segment
    std::string_view payload;
};

struct ScanResult {
    uint64_t valid_end = 0;  // offset just past the last good record
    bool torn = false;       // bytes after valid_end that are not a whole, valid record
    std::string problem;     // what was wrong at valid_end, if anything
};

// Scans a whole segment held in memory; calls fn for each valid record in order.
ScanResult scan_records(std::string_view data, const std::function<void(const RecordView&)>& fn);

// Splits a message payload into envelope text and message bytes.
bool split_message_payload(std::string_view payload, std::string_view& envelope,
                           std::string_view& body);

}  // namespace kasi
