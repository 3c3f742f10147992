// The outbound hooks (send_email, get_egress, get_mx, queue_limits, classify_response,
// deferred, bounce, delivered, inbound_report) as the delivery stages call them: one HookRunner per
// call, run with the hook table in force, answering through a callback on the delivery loop.
//
// Every stage uses this the same way: run(hook, message, domain, done). A call's state
// lives until the loop turn after its answer (the runner still holds a reference while it
// returns), then it is freed; cancel_all() drops the answers still pending (shutdown).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hooks/runner.h"
#include "core/queue/queued_message.h"
#include "core/util/uv_handle.h"

namespace kasi {

class Resolver;

class OutboundHooks {
  public:
    using Done = std::function<void(Result, OutboundAnswer&)>;

    // `table` and `resolver` are read at each call: a reload may replace them.
    OutboundHooks(uv_loop_t* loop, const std::shared_ptr<const HookTable>& table,
                  const std::shared_ptr<Resolver>& resolver);
    ~OutboundHooks();
    OutboundHooks(const OutboundHooks&) = delete;
    OutboundHooks& operator=(const OutboundHooks&) = delete;

    // Whether any plugin handles `h` (a hook nobody handles costs nothing).
    bool has(Hook h) const { return table_ && !table_->at(h).empty(); }
    // Runs `h` for a message (and a recipient domain); `done` gets the code and what the
    // handlers set. `ev` is what happened (deferred, bounce, delivered); `queue` the ready
    // queue a queue_limits hook is asked about.
    void run(Hook h, std::shared_ptr<QueuedMessage> m, std::string domain, Done done,
             OutboundEvent ev = {}, std::shared_ptr<const QueueInfo> queue = nullptr);
    // classify_response for one recipient's outcome: `done` finds a handler's change in
    // OutboundAnswer::response.
    void run_response(std::shared_ptr<QueuedMessage> m, ResponseEvent ev, Done done);
    // inbound_report for one recipient of a report (`m` is the report itself): `done`
    // finds a handler's change in OutboundAnswer::report.
    void run_report(std::shared_ptr<QueuedMessage> m, ReportEvent ev, Done done);
    void cancel_all();

  private:
    struct Call;
    void start(std::unique_ptr<Call> c, Hook h, std::shared_ptr<QueuedMessage> m,
               std::string domain, Done done);
    void retire(Call* c);

    uv_loop_t* loop_;
    const std::shared_ptr<const HookTable>& table_;
    const std::shared_ptr<Resolver>& resolver_;
    std::unordered_map<Call*, std::unique_ptr<Call>> running_;
    std::vector<std::unique_ptr<Call>> done_;  // freed on the next loop turn
    UvHandle<uv_timer_t> reaper_;
};

}  // namespace kasi
