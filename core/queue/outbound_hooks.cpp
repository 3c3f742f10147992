#include "core/queue/outbound_hooks.h"

#include "core/dns/resolver.h"
#include "core/util/strings.h"

namespace kasi {

// The state of one call: the runner keeps a reference to `call`, so it lives until the
// loop's next turn after the answer (retire()).
struct OutboundHooks::Call : HookRunner::Sink {
    OutboundHooks* owner = nullptr;
    HookCall call{Hook::get_mx, nullptr};
    OutboundAnswer answer;
    OutboundEvent event;
    ResponseEvent response;
    ReportEvent report;
    std::shared_ptr<const QueueInfo> queue;
    std::string domain;
    std::shared_ptr<QueuedMessage> msg;
    std::shared_ptr<HookRunner> runner;
    Done done;
    void hook_done(Hook, Result r) override {
        auto fn = std::move(done);
        done = nullptr;
        if (fn) fn(std::move(r), answer);
        owner->retire(this);
    }
};

OutboundHooks::OutboundHooks(uv_loop_t* loop, const std::shared_ptr<const HookTable>& table,
                             const std::shared_ptr<Resolver>& resolver)
    : loop_(loop), table_(table), resolver_(resolver) {
    uv_timer_init(loop_, reaper_.get());
    reaper_->data = this;
}

OutboundHooks::~OutboundHooks() {
    cancel_all();
}

void OutboundHooks::run(Hook h, std::shared_ptr<QueuedMessage> m, std::string domain, Done done,
                        OutboundEvent ev, std::shared_ptr<const QueueInfo> queue) {
    auto owned = std::make_unique<Call>();
    Call* c = owned.get();
    c->event = std::move(ev);
    c->queue = std::move(queue);
    c->call.queue = c->queue.get();
    if (h == Hook::deferred || h == Hook::bounce || h == Hook::delivered) c->call.event = &c->event;
    start(std::move(owned), h, std::move(m), std::move(domain), std::move(done));
}

void OutboundHooks::run_response(std::shared_ptr<QueuedMessage> m, ResponseEvent ev, Done done) {
    auto owned = std::make_unique<Call>();
    Call* c = owned.get();
    std::string domain = ev.domain;
    c->response = std::move(ev);
    c->call.response = &c->response;
    start(std::move(owned), Hook::classify_response, std::move(m), std::move(domain),
          std::move(done));
}

void OutboundHooks::run_report(std::shared_ptr<QueuedMessage> m, ReportEvent ev, Done done) {
    auto owned = std::make_unique<Call>();
    Call* c = owned.get();
    std::string domain(address_domain(ev.rcpt));
    c->report = std::move(ev);
    c->call.report = &c->report;
    start(std::move(owned), Hook::inbound_report, std::move(m), std::move(domain), std::move(done));
}

// What every call shares: the message, the domain, the answer slot, and the runner.
void OutboundHooks::start(std::unique_ptr<Call> owned, Hook h, std::shared_ptr<QueuedMessage> m,
                          std::string domain, Done done) {
    Call* c = owned.get();
    c->owner = this;
    c->msg = std::move(m);
    c->domain = std::move(domain);
    c->call.hook = h;
    c->call.hmail = c->msg.get();
    c->call.domain = c->domain;
    c->call.outbound = &c->answer;
    c->done = std::move(done);
    c->runner = std::make_shared<HookRunner>(loop_, *c);
    c->runner->set_resolver(resolver_);
    running_.emplace(c, std::move(owned));
    c->runner->run(table_, c->call);
}

void OutboundHooks::retire(Call* c) {
    auto it = running_.find(c);
    if (it == running_.end()) return;
    done_.push_back(std::move(it->second));
    running_.erase(it);
    uv_timer_start(
        reaper_.get(), [](uv_timer_t* t) { static_cast<OutboundHooks*>(t->data)->done_.clear(); },
        0, 0);
}

void OutboundHooks::cancel_all() {
    for (auto& [p, c] : running_) c->runner->cancel();
}

}  // namespace kasi
