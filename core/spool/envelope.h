// The envelope of a spooled message: what SMTP said about it, apart from the bytes of the
// message itself. Serialised as text lines "key =value" (values percent-escaped by
// escape_token), so that the spool stays inspectable with ordinary tools and new keys can
// be added without a format change. Unknown keys are kept on read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct Envelope {
    std::string id;           // transaction uuid, "<conn-uuid>.<n>"
    int64_t received_ms = 0;  // arrival time
    std::string mail_from;    // "" for <>
    std::vector<std::string> rcpts;
    std::string client_ip;
    std::string helo;
    std::string auth_user;
    bool tls = false;
    bool relaying = false;
    std::string tenant;
    std::string campaign;
    std::map<std::string, std::string> notes;  // transaction notes (string values)
    std::map<std::string, std::string> extra;  // unknown keys, kept as read

    std::string serialize() const;
    // False (with `err`) when the text is not a valid envelope.
    static bool parse(std::string_view text, Envelope& out, std::string& err);
};

// Per-recipient delivery state and the message's schedule: the mutable metadata, written
// as journal records apart from the immutable message record.
enum class RcptStatus : uint8_t { queued = 0, delivered = 1, deferred = 2, failed = 3 };
std::string_view rcpt_status_name(RcptStatus s);

struct RcptState {
    RcptStatus status = RcptStatus::queued;
    std::string last_reply;
};

struct MessageState {
    int attempts = 0;
    int64_t next_due_ms = 0;
    std::vector<RcptState> rcpts;      // parallel to Envelope::rcpts
    std::vector<std::string> history;  // "<ms> <event>"
};

// A journal record: a change of state for one message, or the message being finished.
struct StateUpdate {
    std::string id;
    bool done = false;  // every recipient finished: the message leaves the spool
    int attempts = -1;  // -1: unchanged
    int64_t next_due_ms = -1;
    std::vector<std::pair<size_t, RcptState>> rcpts;
    std::string event;
    int64_t at_ms = 0;  // when the change happened

    std::string serialize() const;
    static bool parse(std::string_view text, StateUpdate& out, std::string& err);
    void apply(MessageState& st) const;
};

}  // namespace kasi
