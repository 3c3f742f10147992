// The delivery side's record of every change of a message's state, appended to the spool
// journal (core/spool/spool.h): per-recipient status and last reply, the attempt count,
// the next due time, and `done` when the message leaves the queue. At start-up the spool
// replays these records (queue_loader.h), so nothing in memory is the only copy of
// anything. The outcome stage (outcome.h) and the DSN writer (dsn_writer.h) write here.
#pragma once

#include <cstdint>
#include <vector>

#include "core/queue/queued_message.h"

namespace kasi {

class Spool;

class Journal {
  public:
    explicit Journal(Spool& spool) : spool_(spool) {}

    // The state of `rcpts` after an attempt (`attempted`: the message's attempt count is
    // recorded too); `next_due` (0: none) is when the message is tried again; `done`: it
    // has left the queue.
    void record(const QueuedMessage& m, bool attempted, const std::vector<uint32_t>& rcpts,
                bool done, int64_t next_due);
    // The message has left the queue.
    void done(const QueuedMessage& m) { record(m, false, {}, true, 0); }

  private:
    Spool& spool_;
};

}  // namespace kasi
