// Reads a spool directory: every message record, with the journal's state updates applied.
// Used at start-up for recovery and by kasictl against a live spool: records are immutable
// and appended, so a reader sees a consistent prefix and ignores an unfinished tail.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/spool/envelope.h"

namespace kasi {

struct SpooledMessage {
    Envelope env;
    MessageState state;
    uint64_t segment = 0;
    uint64_t offset = 0;  // record offset within the segment
    uint64_t body_size = 0;
    uint64_t body_offset = 0;  // of the message bytes within the segment file
    bool done = false;
};

struct TornTail {
    std::string path;
    uint64_t valid_end;
    uint64_t file_size;
    std::string problem;
};

struct SpoolSnapshot {
    // In arrival (segment, offset) order, live only. A deque, so that a consumer can pop
    // messages off the front and free them as it goes (recovery of a million messages).
    std::deque<SpooledMessage> messages;
    std::map<uint64_t, size_t> live_per_segment;
    std::vector<TornTail> torn;
    std::vector<std::string> problems;  // bad envelopes, unknown ids in the journal
    uint64_t max_msg_seq = 0, max_meta_seq = 0;
    size_t done_count = 0;
};

// `lean` drops the envelope fields delivery does not use (client_ip, helo, auth_user,
// unknown keys), for recovery of large queues. Notes stay: delivery hooks read them.
bool read_spool(const std::string& dir, SpoolSnapshot& out, std::string& err,
                bool keep_done = false, bool lean = false);

// The same without holding every message at once: the journal is read first, then each
// message goes to `on_message` in (segment, offset) order with its state applied (`done`
// set for finished ones), and `on_segment_end` after each message segment. `info` gets
// everything but `messages`. Recovery of a large queue uses this.
bool stream_spool(const std::string& dir, SpoolSnapshot& info, std::string& err, bool lean,
                  const std::function<void(SpooledMessage&)>& on_message,
                  const std::function<void(uint64_t seq)>& on_segment_end = {},
                  uint64_t max_msg_seq = UINT64_MAX, uint64_t max_meta_seq = UINT64_MAX);

// The message bytes of one spooled message (reads its segment).
bool read_message_body(const std::string& dir, const SpooledMessage& m, std::string& body,
                       std::string& err);

}  // namespace kasi
