// The delivery queue's side of the intake (core/spool/intake.h): a message reception has
// spooled becomes the queue's compact QueuedMessage, built on the receiving loop, and goes
// to the delivery loop (Outbound::submit) as soon as it is durable.
#pragma once

#include "core/queue/outbound.h"
#include "core/spool/intake.h"

namespace kasi {

class QueueSink final : public MessageSink {
  public:
    explicit QueueSink(Outbound& outbound) : outbound_(outbound) {}
    Durable prepare(const Envelope& env, uint64_t body_size) override;

  private:
    Outbound& outbound_;
};

}  // namespace kasi
