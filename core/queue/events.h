// The event log: one JSON object per line for every Reception, Delivery, TransientFailure,
// Bounce and Expiration (schema in docs/events.md). Written by the delivery loop only, so
// records are appended without locking; the buffer is flushed at least once a second and
// at shutdown. A write error is logged once and the records are dropped, never blocking
// delivery. Records are buffered and written whole with one write(2).
// reopen() (SIGHUP, `kasictl reopen-logs`) writes the buffer to the file it has open, then
// opens the path again: after logrotate renamed the file, every record is in exactly one
// of the two files, the older ones in the renamed file.
#pragma once

#include <cstdint>
#include <string>

#include "core/classify/classification.h"
#include "core/queue/queued_message.h"
#include "core/smtp/client/reply_parser.h"

namespace kasi {

struct EventPeer {  // where an attempt went; empty for events without a connection
    std::string ready_queue, source, egress_ip, site, mx_host, mx_ip;
    std::string tls_version, tls_cipher;
    bool tls_verified = false;
};

class EventLog {
  public:
    ~EventLog();
    bool open(const std::string& path, std::string& err);  // "" = events off
    void close();
    // Flushes, then opens the same path again; on failure the old file stays in use.
    bool reopen(std::string& err);

    void reception(const QueuedMessage& m);
    // type: "Delivery", "TransientFailure", "Bounce" or "Expiration"; `c` is what the
    // outcome means (reason, class, hard, scope, provider).
    void recipient(const char* type, const QueuedMessage& m, uint32_t rcpt,
                   const std::string& queue, const EventPeer& peer, const SmtpReply& reply,
                   const Classification& c, int attempt, int64_t now_ms, int64_t next_due_ms = 0);
    // An event from elsewhere (a one-click unsubscribe): one JSON object, no newline.
    void other(const std::string& json) { put(json); }
    void flush();
    uint64_t written() const { return written_; }

  private:
    void put(const std::string& line);

    int fd_ = -1;
    std::string buf_;  // whole records only: a reader never sees half a line
    std::string path_;
    bool failed_ = false;
    uint64_t written_ = 0;
};

}  // namespace kasi
