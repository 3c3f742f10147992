#include "core/queue/journal.h"

#include <cstring>

#include "core/log/log.h"
#include "core/spool/spool.h"
#include "core/util/clock.h"

namespace kasi {

void Journal::record(const QueuedMessage& m, bool attempted, const std::vector<uint32_t>& rcpts,
                     bool done, int64_t next_due) {
    StateUpdate u;
    u.id = m.id;
    u.at_ms = now_ms();
    u.done = done;
    if (attempted) u.attempts = m.attempts;
    if (next_due) u.next_due_ms = next_due;
    for (uint32_t i : rcpts)
        u.rcpts.emplace_back(i, RcptState{m.rcpts[i].status, m.rcpts[i].reply()});
    std::string id = m.id;
    // Lazy: a progress record lost in a crash means a retry (a duplicate at worst), never
    // a lost message, so it need not cost a sync of its own.
    spool_.submit_state(
        u,
        [id](const SpoolResult& r) {
            if (r.err) log::error("queue: {}: journal write failed: {}", id, std::strerror(r.err));
        },
        true, m.segment);
}

}  // namespace kasi
