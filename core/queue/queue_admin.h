// The operator's side door into the delivery stages: the control socket's commands
// (kasictl flush, suspend, resume, delete, bounce, tenant; control.h) and the summaries (the
// counters, queue/queues.json, the admin API's queue view). It acts on the stages through
// their own interfaces — the scheduler's heap and suspensions, the router's route cache,
// the ready queues — and removed deliveries go to the outcome stage like any other, so
// the events, the journal and the DSNs stay the same.
#pragma once

#include <string>

#include "core/queue/delivery_context.h"

namespace kasi {

class Outcome;
class ReadyQueues;
class Router;
class Scheduler;

class QueueAdmin {
  public:
    QueueAdmin(DeliveryContext& ctx, Scheduler& scheduler, Router& router, ReadyQueues& ready,
               Outcome& outcome)
        : ctx_(ctx), scheduler_(scheduler), router_(router), ready_(ready), outcome_(outcome) {}

    // One command line; the reply ("ok: ..." or "error: ...").
    std::string control(const std::string& line);
    QueueStats stats() const;
    // Totals, scheduled queues, suspended domains and ready queues with their limits.
    std::string summary_json() const;

  private:
    std::string flush(const std::string& domain);
    std::string suspend_or_resume(const std::string& cmd, const std::string& arg,
                                  const std::string& reason);
    std::string drop(const std::string& cmd, const std::string& arg);
    // tenant pause T [reason] | resume T | list [all]: the tenants' circuit breakers
    std::string tenant(const std::string& arg, const std::string& rest);
    std::string scheduled_json() const;
    std::string suspended_json() const;
    std::string ready_json() const;
    std::string errors_json() const;

    DeliveryContext& ctx_;
    Scheduler& scheduler_;
    Router& router_;
    ReadyQueues& ready_;
    Outcome& outcome_;
};

}  // namespace kasi
