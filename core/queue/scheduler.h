// The scheduler: the first stage of delivery. A message enters here (enqueue: received and
// durable; load_recovered: found in the spool at start-up) and is split into deliveries,
// one per recipient domain (per recipient with always_split). Each waits in its scheduled
// queue (tenant, campaign, domain) — one heap ordered by due time — until it is due, then
// is released to the router (router.h):
//
//   released   cancelled -> its part ends (outcome.h); older than max_age -> expired;
//              domain suspended -> held until resumed; the tenant's circuit breaker open
//              or paused -> back here for 30 s (no attempt counted); send_email DELAY ->
//              back here for that long (no attempt counted); else -> the router
//
// Deliveries come back here from the outcome stage (RetrySink: deferred recipients, due
// at their next retry) and new DSNs from the DSN writer (DsnQueue). The sweep (every
// second) flushes the event log and ends temporary limits; every 10 s it expires what
// waited in a ready queue past max_age. While outbound.ini says disabled=true, nothing is
// released.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/queue/delivery_context.h"
#include "core/queue/dsn_writer.h"
#include "core/queue/outcome.h"
#include "core/queue/queue_loader.h"
#include "core/util/uv_handle.h"

namespace kasi {

class ReadyQueues;
class Router;

class Scheduler : public RetrySink, public DsnQueue {
  public:
    Scheduler(DeliveryContext& ctx, Router& router, ReadyQueues& ready, Outcome& outcome);
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;
    // Runs `fn` at every sweep (each second) after the scheduler's own work.
    void on_sweep(std::function<void(int64_t now_ms)> fn) { on_sweep_ = std::move(fn); }

    // A new message, durable in the spool (also a DSN from the DSN writer).
    void enqueue(std::shared_ptr<QueuedMessage> m) override;
    // The messages the spool recovered at start-up, each recipient still open due at its
    // recorded time (now at the earliest).
    void load_recovered(QueueLoader& loader, const std::map<uint64_t, size_t>& live_per_segment);
    // Deferred recipients, due at d->due_ms.
    void retry(std::unique_ptr<Delivery> d, const std::string& why) override;
    void settings_changed() { arm_timer(); }  // `disabled` may have changed
    void stop() { uv_timer_stop(due_timer_.get()); }

    // ---- for the operator (queue_admin.h) ----
    // Every delivery (to `domain`, or all) is due now; how many.
    size_t make_due(const std::string& domain);
    // Deliveries to `domain` are held when they become due, until resume().
    void suspend(const std::string& domain, std::string reason);
    // Releases what was held for `domain`: how many, or nullopt if it was not suspended.
    std::optional<size_t> resume(const std::string& domain);
    // Takes out the scheduled and held deliveries `pred` selects.
    std::vector<std::unique_ptr<Delivery>> take_if(
        const std::function<bool(const Delivery&)>& pred);

    struct Suspension {
        std::string reason;
        std::vector<std::unique_ptr<Delivery>> held;
    };
    // scheduled queue -> deliveries waiting in it
    const std::unordered_map<std::string, uint64_t>& queue_sizes() const { return counts_; }
    // scheduled queue -> the reply that deferred its last delivery
    const std::unordered_map<std::string, std::string>& last_deferrals() const { return reasons_; }
    const std::map<std::string, Suspension>& suspended() const { return suspended_; }

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
    void uncount(const Delivery& d);  // one delivery left its scheduled queue
    void release(std::unique_ptr<Delivery> d);
    void ask_send_email(std::unique_ptr<Delivery> d);
    void sweep();
    std::function<void(int64_t)> on_sweep_;
    void expire_waiting(int64_t now);

    DeliveryContext& ctx_;
    Router& router_;
    ReadyQueues& ready_;
    Outcome& outcome_;
    std::vector<HeapEntry> heap_;  // a min-heap on (due, seq)
    uint64_t heap_seq_ = 0;
    UvHandle<uv_timer_t> due_timer_;
    UvHandle<uv_timer_t> sweep_timer_;
    int sweep_tick_ = 0;
    std::unordered_map<std::string, uint64_t> counts_;
    std::unordered_map<std::string, std::string> reasons_;
    std::map<std::string, Suspension> suspended_;  // by recipient domain
};

}  // namespace kasi
