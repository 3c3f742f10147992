// Where every accepted message enters the system, whichever way it came (SMTP, or the HTTP
// API through a local SMTP session): reception describes the message (an Envelope) and hands
// over its bytes; the intake writes both to the spool and, once they are durable (the group
// commit has synced them), hands the message to its MessageSink, the delivery queue
// (core/queue/queue_sink.h). Only then does the caller acknowledge (250 after DATA, 2xx
// from the API). Reception sees the intake, never the queue.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/spool/envelope.h"
#include "core/spool/spool.h"

namespace kasi {

// Where durable messages go next.
class MessageSink {
  public:
    virtual ~MessageSink() = default;
    // Runs on the spool writer's thread once the message is durable at `where`.
    using Durable = std::function<void(const SpoolResult& where)>;
    // Called on the receiving loop before the message is written, so that what delivery
    // needs is built there and the writer's thread only hands it over.
    virtual Durable prepare(const Envelope& env, uint64_t body_size) = 0;
};

class Intake {
  public:
    // `sink` may be null (tools and tests without delivery); both outlive the intake.
    Intake(Spool& spool, MessageSink* sink) : spool_(spool), sink_(sink) {}

    // Stamps the arrival time and takes the tenant and campaign from the notes, then moves
    // `body` into the spool. `done` runs on the spool writer's thread with the outcome; by
    // then a durable message has already been handed to the sink. `via_http`: for metrics.
    void submit(Envelope env, std::string body, bool via_http,
                std::function<void(const SpoolResult&)> done);

  private:
    Spool& spool_;
    MessageSink* sink_;
};

}  // namespace kasi
