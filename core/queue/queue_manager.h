// The delivery side of Kasi, on one libuv loop: every queued message from reception (or
// the spool at start-up) to its last recipient's outcome.
//
//   enqueue() -> scheduled queue (tenant, campaign, domain), ordered by due time
//             -> route (MX lookup: ok / defer / bounce) -> ready queue (source, site)
//             -> SMTP transaction -> per recipient: delivered | deferred | bounced
//   deferred: retry after temp_fail_intervals[attempt-1]; bounced once they run out or
//   the message is older than max_age (checked in every tier); failures produce one DSN
//   per message to the envelope sender, and the message leaves the spool.
//
// Every change of a message's state is appended to the spool journal; nothing in memory
// is the only copy of anything. Events go to the event log (events.h).
#pragma once

#include <uv.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dns/resolver.h"
#include "core/hooks/runner.h"
#include "core/queue/delivery_context.h"
#include "core/queue/dsn_writer.h"
#include "core/queue/outcome.h"
#include "core/queue/queue_loader.h"
#include "core/queue/queued_message.h"
#include "core/queue/ready_queues.h"
#include "core/queue/router.h"
#include "core/spool/spool.h"
#include "core/util/uv_handle.h"

namespace kasi {

class QueueManager : public DsnQueue, public RetrySink {
  public:
    // `post` runs a task on this loop from any thread (the spool writer's callbacks).
    QueueManager(uv_loop_t* loop, Spool& spool, QueueSettings s,
                 std::function<void(std::function<void()>)> post);
    ~QueueManager();
    QueueManager(const QueueManager&) = delete;
    QueueManager& operator=(const QueueManager&) = delete;

    void set_settings(QueueSettings s);
    bool open_events(std::string& err);
    void load_recovered(QueueLoader& loader, const std::map<uint64_t, size_t>& live_per_segment);
    void enqueue(std::shared_ptr<QueuedMessage> m) override;
    void segment_closed(uint64_t seg, uint64_t written) {
        ctx_.bodies.segment_closed(seg, written);
    }
    void journal_closed(uint64_t seq, std::vector<uint64_t> refs) {
        ctx_.bodies.journal_closed(seq, std::move(refs));
    }
    void shutdown();  // closes connections; what is in flight is retried after restart
    QueueStats stats() const;
    // One command line from the control socket (control.h); the reply.
    std::string control(const std::string& line);

    // ---- for policies on this loop (kasi.queue) ----
    // The QueueManager running on `loop`, or null; valid on that loop's thread only.
    static QueueManager* on_loop(uv_loop_t* loop);
    const ReadyQueue* ready_queue(const std::string& key) const;
    // Overrides some limits of ready queue `key` for `seconds` (an adaptive back-off);
    // false if there is no such queue.
    bool set_temporary_limits(const std::string& key, const LimitOverride& o, int64_t seconds);
    std::string summary_json() const;
    void log_event(const std::string& json) { ctx_.events.other(json); }
    bool reopen_events(std::string& err) { return ctx_.events.reopen(err); }
    // Prometheus text for the delivery side (queue_metrics.cpp): outcomes by provider and
    // egress source, queue depths, ready-queue states, and per-queue series for the busiest
    // `top_n` ready queues plus one "other".
    std::string prometheus(size_t top_n) const;

    const QueueSettings& settings() const { return ctx_.settings; }
    uv_loop_t* loop() { return ctx_.loop; }

  private:
    struct HeapEntry {
        int64_t due;
        uint64_t seq;
        std::unique_ptr<Delivery> d;
    };

    void split(std::shared_ptr<QueuedMessage> m, const std::vector<uint32_t>& todo, int attempts,
               int64_t due);
    void schedule(std::unique_ptr<Delivery> d);
    void arm_timer();
    void run_due();
    void route(std::unique_ptr<Delivery> d);
    void retry(std::unique_ptr<Delivery> d, const std::string& why) override;
    void sweep();

    DeliveryContext ctx_;
    DsnWriter dsn_;
    Outcome outcome_;
    ReadyQueues ready_;
    Router router_;
    std::vector<HeapEntry> heap_;
    uint64_t heap_seq_ = 0;
    UvHandle<uv_timer_t> due_timer_;
    UvHandle<uv_timer_t> sweep_timer_;
    std::unordered_map<std::string, uint64_t> sched_counts_;  // scheduled queue -> deliveries
    // why the last delivery of a scheduled queue was deferred (the summary shows it)
    std::unordered_map<std::string, std::string> sched_reasons_;
    void forget_sched(std::unordered_map<std::string, uint64_t>::iterator it) {
        sched_reasons_.erase(it->first);
        sched_counts_.erase(it);
    }
    struct Suspension {
        std::string reason;
        std::vector<std::unique_ptr<Delivery>> held;
    };
    std::map<std::string, Suspension> suspended_;  // by recipient domain
    size_t drop_matching(const std::function<bool(const Delivery&)>& pred, bool bounce);
    int sweep_tick_ = 0;
};

}  // namespace kasi
