// Runs one hook's chain for one session at a time, as Haraka's plugins.js does:
//   - handlers in HookTable order; the first non-CONT answer ends the chain, except for
//     hooks that run every plugin (connect_init, disconnect, ...);
//   - a DENY* answer first runs the `deny` hook; a deny handler answering OK overrides the
//     denial and the original chain resumes with the next plugin;
//   - a handler that suspends gets its timeout; expiry answers DENYSOFT "plugin timeout";
//   - a handler that throws counts as CONT (logged at CRIT).
// The outcome goes to Sink::hook_done(), possibly before run() returns.
#pragma once

#include <uv.h>

#include <memory>

#include "core/hooks/plugin.h"
#include "core/util/uv_handle.h"

namespace kasi {

class Resolver;

class HookRunner : public std::enable_shared_from_this<HookRunner> {
  public:
    struct Sink {
        virtual ~Sink() = default;
        virtual void hook_done(Hook h, Result r) = 0;
    };

    HookRunner(uv_loop_t* loop, Sink& sink) : loop_(loop), sink_(sink) {}
    ~HookRunner() = default;

    // `call` must stay valid until hook_done (the session keeps it in a member).
    void run(std::shared_ptr<const HookTable> table, HookCall& call);
    bool busy() const { return active_; }
    uv_loop_t* loop() const { return loop_; }
    void cancel();  // the session is going away: drop any pending answer

    PendingHook suspend();
    void resume(uint64_t seq, Result r);
    HookCall* waiting_call(uint64_t seq);  // the call if it still waits for answer `seq`

    // The owner's DNS resolver, for plugins that query DNS (Lua's kasi.dns). Weak: the
    // owner replaces or destroys it on its own loop.
    void set_resolver(std::weak_ptr<Resolver> r) { resolver_ = std::move(r); }
    const std::weak_ptr<Resolver>& resolver() const { return resolver_; }

  private:
    void step();
    void finish(Result r);
    void on_answer(Result r);
    void arm_timer(uint32_t ms);

    uv_loop_t* loop_;
    Sink& sink_;
    std::shared_ptr<const HookTable> table_;
    HookCall* call_ = nullptr;
    bool active_ = false;
    bool in_deny_ = false;
    size_t index_ = 0;       // next handler of the current chain
    size_t orig_index_ = 0;  // resume point of the denied chain
    Result denial_;
    std::string denied_by_;
    Result last_;  // runs-all hooks: the last non-CONT answer (informational)
    uint64_t seq_ = 0;
    bool waiting_ = false;
    bool stepping_ = false;
    std::unique_ptr<UvHandle<uv_timer_t>> timer_;
    std::unique_ptr<HookCall> deny_call_;
    std::weak_ptr<Resolver> resolver_;
    uint64_t started_ns_ = 0;  // when the current handler was called (hook latency metric)
    bool current_lua_ = false;
};

}  // namespace kasi
