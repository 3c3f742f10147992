// The DSN stage: mail Kasi writes itself about a message. The outcome stage (outcome.h)
// asks for a failure DSN once a message's last recipient has its outcome and some failed,
// or for one delay warning while a message is still being retried. The writer reads the
// original from the spool, composes the report (dsn.h), seals it like relayed mail
// (DKIM as MAILER-DAEMON@me's domain), writes it durably to the spool, then hands it to
// DsnQueue (the scheduler) to be delivered like any other message.
//
// A failed message leaves the queue only once its DSN is on disk: if Kasi stops in
// between, the message is finished again from the spool at the next start, so a DSN may be
// sent twice but never not at all. A lost delay warning is only a warning.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/queue/delivery_context.h"

namespace kasi {

class Spool;

// Where a DSN goes once it is durable. Declared here, implemented by the scheduler: the
// only way this stage reaches back up the pipeline.
class DsnQueue {
  public:
    virtual void enqueue(std::shared_ptr<QueuedMessage> m) = 0;

  protected:
    ~DsnQueue() = default;
};

class DsnWriter {
  public:
    // `post` runs a task on the delivery loop from any thread (the spool writer's answer).
    using Post = std::function<void(std::function<void()>)>;
    DsnWriter(DeliveryContext& ctx, Spool& spool, Post post, DsnQueue& queue)
        : ctx_(ctx), spool_(spool), post_(std::move(post)), queue_(queue) {}

    // A DSN for the failed recipients of `m` (its sender is not null); `m` then leaves the
    // queue.
    void failure(const std::shared_ptr<QueuedMessage>& m);
    // A delay warning for `rcpts`, still being retried; once per message.
    void delay_warning(const std::shared_ptr<QueuedMessage>& m, const std::vector<uint32_t>& rcpts);

  private:
    void write(const std::shared_ptr<QueuedMessage>& m, std::string original,
               const std::vector<uint32_t>& delayed);
    // The DSN is durable: deliver it, and finish the original unless this was a warning.
    void written(const std::shared_ptr<QueuedMessage>& m, std::shared_ptr<QueuedMessage> dsn,
                 bool warning);
    void seal(std::string& msg, const std::string& id);

    DeliveryContext& ctx_;
    Spool& spool_;
    Post post_;
    DsnQueue& queue_;
};

}  // namespace kasi
