#include "core/hooks/runner.h"

#include "core/metrics/metrics.h"

#include <algorithm>
#include <exception>

#include "core/log/log.h"
#include "core/smtp/reply.h"

namespace kasi {

void PendingHook::resume(Result r) const {
    if (auto rn = runner_.lock()) rn->resume(seq_, std::move(r));
}

HookCall* PendingHook::call() const {
    auto rn = runner_.lock();
    return rn ? rn->waiting_call(seq_) : nullptr;
}

HookCall* HookRunner::waiting_call(uint64_t seq) {
    if (seq != seq_ || !active_ || !waiting_) return nullptr;
    return in_deny_ ? deny_call_.get() : call_;
}

PendingHook HookCall::suspend() {
    return runner->suspend();
}

std::optional<Result> HookCall::answer_after(uint64_t ms, Result r) {
    struct Later {  // owns itself until the timer fires
        UvHandle<uv_timer_t> timer;
        PendingHook pending;
        Result r;
    };
    auto l = std::make_unique<Later>();
    l->pending = suspend();
    l->r = std::move(r);
    uv_timer_init(runner->loop(), l->timer.get());
    Later* raw = l.get();
    raw->timer->data = l.release();
    uv_timer_start(
        raw->timer.get(),
        [](uv_timer_t* t) {
            std::unique_ptr<Later> own(static_cast<Later*>(t->data));
            own->pending.resume(own->r);
        },
        ms, 0);
    return std::nullopt;
}

void HookTable::add(Hook h, std::string plugin, HookHandler fn, int priority, uint32_t timeout_ms,
                    bool lua) {
    by_hook_[int(h)].push_back(HookRegistration{h, priority, next_order_++, std::move(plugin),
                                                std::move(fn), timeout_ms, lua});
}

void HookTable::finalize() {
    for (auto& v : by_hook_)
        std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
            return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
        });
}

void HookTable::add_sealer(std::shared_ptr<const Sealer> s) {
    sealers_.push_back(std::move(s));
    std::stable_sort(sealers_.begin(), sealers_.end(),
                     [](const auto& a, const auto& b) { return a->stage() < b->stage(); });
}

void HookRunner::run(std::shared_ptr<const HookTable> table, HookCall& call) {
    table_ = std::move(table);
    call_ = &call;
    call.runner = this;
    active_ = true;
    in_deny_ = false;
    index_ = 0;
    last_ = Result::cont();
    step();
}

void HookRunner::cancel() {
    ++seq_;
    active_ = false;
    waiting_ = false;
    if (timer_) uv_timer_stop(timer_->get());
}

PendingHook HookRunner::suspend() {
    waiting_ = true;
    return PendingHook(weak_from_this(), seq_);
}

void HookRunner::resume(uint64_t seq, Result r) {
    if (seq != seq_ || !active_ || !waiting_) {
        log::debug("hook answer ignored: it came after a timeout or after the session ended");
        return;
    }
    waiting_ = false;
    if (timer_) uv_timer_stop(timer_->get());
    ++seq_;
    on_answer(std::move(r));
    if (!stepping_) step();
}

void HookRunner::arm_timer(uint32_t ms) {
    if (ms == 0) return;
    if (!timer_) {
        timer_ = std::make_unique<UvHandle<uv_timer_t>>();
        uv_timer_init(loop_, timer_->get());
    }
    timer_->get()->data = this;
    uv_timer_start(
        timer_->get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<HookRunner*>(t->data);
            if (!self) return;
            Hook h = self->in_deny_ ? Hook::deny : self->call_->hook;
            const auto& chain = self->table_->at(h);
            std::string plugin = self->index_ > 0 ? chain[self->index_ - 1].plugin : "?";
            log::warn("plugin {} timed out on hook {}", plugin, hook_name(h));
            self->resume(self->seq_, Result::denysoft("plugin timeout"));
        },
        ms, 0);
}

// Records one handler's answer and decides where the chain goes next.
void HookRunner::on_answer(Result r) {
    Hook h = in_deny_ ? Hook::deny : call_->hook;
    cap_reply_text(r.msg);  // whatever a plugin says, a reply stays a few lines
    if (started_ns_) {
        CoreMetrics::global().hook_latency[size_t(h)][current_lua_].observe_ns(uv_hrtime() -
                                                                               started_ns_);
        started_ns_ = 0;
    }
    if (in_deny_) {
        if (r.code == Code::ok) {  // denial overridden: resume the original chain
            in_deny_ = false;
            index_ = orig_index_;
            return;
        }
        if (r.code != Code::cont) {  // any other answer: the denial stands
            finish(std::move(denial_));
            return;
        }
        return;
    }
    if (hook_runs_all(h)) {
        if (r.code != Code::cont) last_ = std::move(r);
        return;
    }
    if (r.code == Code::cont) return;
    if (is_deny(r.code) && h != Hook::deny && call_->session && !table_->at(Hook::deny).empty()) {
        denial_ = std::move(r);
        denied_by_ = table_->at(h)[index_ - 1].plugin;
        orig_index_ = index_;
        in_deny_ = true;
        index_ = 0;
        return;
    }
    finish(std::move(r));
}

void HookRunner::finish(Result r) {
    active_ = false;
    in_deny_ = false;
    Hook h = call_->hook;
    sink_.hook_done(h, std::move(r));
}

void HookRunner::step() {
    stepping_ = true;
    while (active_ && !waiting_) {
        Hook h = in_deny_ ? Hook::deny : call_->hook;
        const auto& chain = table_->at(h);
        if (index_ >= chain.size()) {
            if (in_deny_) {  // no deny plugin overrode it
                finish(std::move(denial_));
            } else {
                finish(hook_runs_all(h) ? std::move(last_) : Result::cont());
            }
            break;
        }
        const auto& reg = chain[index_++];
        if (in_deny_) {
            deny_call_ = std::make_unique<HookCall>(HookCall{Hook::deny, call_->session});
            deny_call_->denial = &denial_;
            deny_call_->denied_by = denied_by_;
            deny_call_->denied_hook = call_->hook;
            deny_call_->address = call_->address;
            deny_call_->runner = this;
        }
        HookCall& c = in_deny_ ? *deny_call_ : *call_;
        uint64_t seq_before = seq_;
        std::optional<Result> answer;
        started_ns_ = uv_hrtime();
        current_lua_ = reg.lua;
        try {
            answer = reg.fn(c);
        } catch (const std::exception& e) {
            log::crit("plugin {} threw in hook {}: {}", reg.plugin, hook_name(h), e.what());
            answer = Result::cont();
            waiting_ = false;
        }
        if (!answer) {
            if (seq_ != seq_before) continue;  // suspended and already resumed inside the call
            if (!waiting_) {                   // returned nullopt without suspending: a plugin bug
                log::error("plugin {} returned no answer from hook {} without suspending",
                           reg.plugin, hook_name(h));
                answer = Result::cont();
            } else {
                arm_timer(reg.timeout_ms);
                break;
            }
        }
        ++seq_;
        on_answer(std::move(*answer));
    }
    stepping_ = false;
}

}  // namespace kasi
