// The delivery side of Kasi on one libuv loop: it owns the stages a message goes through,
// wires them together, and is what the rest of Kasi talks to (Outbound, the HTTP API,
// Lua's kasi.queue). It decides nothing about a message itself. The stages, in the order
// a message meets them:
//
//   scheduler.h      enqueue, split per domain, wait until due, release
//   router.h         egress source and route (get_egress, get_mx, MX lookup)
//   ready_queues.h   a ready queue per (source, site); pooled SMTP connections send
//   outcome.h        per recipient: delivered | deferred (back to the scheduler) | failed;
//                    outcomes feed the automation rules (core/shaping/shaping_engine.h),
//                    whose actions the ready queues apply
//   dsn_writer.h     DSNs and delay warnings, spooled, then enqueued like any message
//
// beside them: the journal of every state change (journal.h), the operator's commands and
// summaries (queue_admin.h), and what they all share (delivery_context.h).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/queue/delivery_context.h"
#include "core/queue/dsn_writer.h"
#include "core/queue/outcome.h"
#include "core/queue/queue_admin.h"
#include "core/queue/queue_loader.h"
#include "core/queue/ready_queues.h"
#include "core/queue/report_transport.h"
#include "core/queue/router.h"
#include "core/queue/scheduler.h"

namespace kasi {

class Spool;

class QueueManager {
  public:
    // `post` runs a task on this loop from any thread (the spool writer's callbacks).
    QueueManager(uv_loop_t* loop, Spool& spool, QueueSettings s,
                 std::function<void(std::function<void()>)> post);
    ~QueueManager();
    QueueManager(const QueueManager&) = delete;
    QueueManager& operator=(const QueueManager&) = delete;

    void set_settings(QueueSettings s);
    bool open_events(std::string& err);
    void load_recovered(QueueLoader& loader, const std::map<uint64_t, size_t>& live_per_segment) {
        scheduler_.load_recovered(loader, live_per_segment);
    }
    void enqueue(std::shared_ptr<QueuedMessage> m) { scheduler_.enqueue(std::move(m)); }
    void segment_closed(uint64_t seg, uint64_t written) {
        ctx_.bodies.segment_closed(seg, written);
    }
    void journal_closed(uint64_t seq, std::vector<uint64_t> refs) {
        ctx_.bodies.journal_closed(seq, std::move(refs));
    }
    void shutdown();  // closes connections; what is in flight is retried after restart
    QueueStats stats() const { return admin_.stats(); }
    // One command line from the control socket (control.h); the reply.
    std::string control(const std::string& line) { return admin_.control(line); }

    // ---- for policies on this loop (kasi.queue) ----
    // The QueueManager running on `loop`, or null; valid on that loop's thread only.
    static QueueManager* on_loop(uv_loop_t* loop);
    const ReadyQueue* ready_queue(const std::string& key) const;
    // Overrides some limits of ready queue `key` for `seconds` (an adaptive back-off);
    // false if there is no such queue.
    bool set_temporary_limits(const std::string& key, const LimitOverride& o, int64_t seconds) {
        return ready_.set_temporary_limits(key, o, seconds);
    }
    std::string summary_json() const { return admin_.summary_json(); }
    // The automation rules' actions in force, with their provenance (kasictl adaptive).
    std::string adaptive_json() const;
    void log_event(const std::string& json) { ctx_.events.other(json); }
    bool reopen_events(std::string& err) { return ctx_.events.reopen(err); }
    // Prometheus text for the delivery side (queue_metrics.cpp): outcomes by provider and
    // egress source, queue depths, ready-queue states, and per-queue series for the busiest
    // `top_n` ready queues plus one "other".
    std::string prometheus(size_t top_n) const;

    const QueueSettings& settings() const { return ctx_.settings; }
    uv_loop_t* loop() { return ctx_.loop; }

  private:
    void apply_rules();
    void load_shaping_state();
    void save_shaping_state(bool now);

    // Declared in pipeline order; a stage that feeds back (outcome -> scheduler, DSN writer
    // -> scheduler) holds a reference to an earlier one through the interface declared
    // beside it (RetrySink, DsnQueue).
    DeliveryContext ctx_;
    Scheduler scheduler_;
    Router router_;
    ReadyQueues ready_;
    ShapingEngine shaping_;
    ReportTransport reports_;
    Outcome outcome_;
    DsnWriter dsn_;
    QueueAdmin admin_;
    std::string shaping_saved_;  // the state last written (QUEUE/adaptive.state)
    bool shaping_saving_ = false;
    uint64_t sweeps_ = 0;
};

}  // namespace kasi
