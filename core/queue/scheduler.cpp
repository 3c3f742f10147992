#include "core/queue/scheduler.h"

#include <algorithm>

#include "core/log/log.h"
#include "core/queue/ready_queues.h"
#include "core/queue/router.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t due_batch = 20000;             // deliveries released per timer tick
constexpr int64_t breaker_recheck_ms = 30'000;  // a held tenant's delivery is looked at again

bool heap_less(const auto& a, const auto& b) {  // min-heap on (due, seq)
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
}

std::string domain_of(const std::string& rcpt) {
    size_t at = rcpt.rfind('@');
    return to_lower(at == std::string::npos ? std::string() : rcpt.substr(at + 1));
}

}  // namespace

Scheduler::Scheduler(DeliveryContext& ctx, Router& router, ReadyQueues& ready, Outcome& outcome)
    : ctx_(ctx), router_(router), ready_(ready), outcome_(outcome) {
    uv_timer_init(ctx_.loop, due_timer_.get());
    due_timer_->data = this;
    uv_timer_init(ctx_.loop, sweep_timer_.get());
    sweep_timer_->data = this;
    uv_timer_start(
        sweep_timer_.get(), [](uv_timer_t* t) { static_cast<Scheduler*>(t->data)->sweep(); }, 1000,
        1000);
    uv_unref(sweep_timer_.handle());
}

void Scheduler::enqueue(std::shared_ptr<QueuedMessage> m) {
    ctx_.bodies.message_queued(m->segment);
    ++ctx_.stats.messages;
    ctx_.events.reception(*m);
    std::vector<uint32_t> todo(m->rcpts.size());
    for (uint32_t i = 0; i < todo.size(); ++i) todo[i] = i;
    split(std::move(m), todo, 0, now_ms());
}

void Scheduler::load_recovered(QueueLoader& loader,
                               const std::map<uint64_t, size_t>& live_per_segment) {
    int64_t now = now_ms();
    auto& items = loader.items();
    size_t total = items.size();
    for (auto& item : items) {
        auto m = std::move(item.msg);
        std::vector<uint32_t> todo;
        for (uint32_t i = 0; i < m->rcpts.size(); ++i)
            if (m->rcpts[i].status == RcptStatus::queued ||
                m->rcpts[i].status == RcptStatus::deferred)
                todo.push_back(i);
        ctx_.bodies.message_queued(m->segment);
        ++ctx_.stats.messages;
        if (todo.empty()) {  // every recipient has its outcome: only the end is missing
            m->open_parts = 1;
            outcome_.part_done(m);
            continue;
        }
        int attempts = m->attempts;
        split(std::move(m), todo, attempts, std::max(now, item.next_due_ms));
    }
    items.clear();
    items.shrink_to_fit();
    for (const auto& [seg, n] : live_per_segment) ctx_.bodies.segment_closed(seg, n);
    if (total)
        log::info("queue: {} recovered messages scheduled ({} deliveries waiting)", total,
                  heap_.size());
}

// One delivery per recipient domain (per recipient with always_split).
void Scheduler::split(std::shared_ptr<QueuedMessage> m, const std::vector<uint32_t>& todo,
                      int attempts, int64_t due) {
    std::vector<std::unique_ptr<Delivery>> parts;
    for (uint32_t i : todo) {
        std::string dom = domain_of(m->rcpts[i].address);
        Delivery* target = nullptr;
        if (!ctx_.cfg().always_split)
            for (auto& p : parts)
                if (p->domain == dom) target = p.get();
        if (!target) {
            parts.push_back(std::make_unique<Delivery>());
            target = parts.back().get();
            target->msg = m;
            target->domain = dom;
            target->attempts = attempts;
            target->due_ms = due;
        }
        target->rcpts.push_back(i);
    }
    m->open_parts += int(parts.size());
    for (auto& p : parts) schedule(std::move(p));
}

void Scheduler::retry(std::unique_ptr<Delivery> d, const std::string& why) {
    reasons_[scheduled_queue(*d->msg, d->domain)] = why;
    schedule(std::move(d));
}

void Scheduler::schedule(std::unique_ptr<Delivery> d) {
    if (d->due_ms <= now_ms() && !ctx_.cfg().disabled && !ctx_.shutting_down)
        return release(std::move(d));
    ++counts_[scheduled_queue(*d->msg, d->domain)];
    ++ctx_.stats.scheduled;
    int64_t due = d->due_ms;
    heap_.push_back(HeapEntry{due, heap_seq_++, std::move(d)});
    std::push_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
    if (heap_.front().due == due) arm_timer();
}

void Scheduler::arm_timer() {
    if (heap_.empty() || ctx_.shutting_down) {
        uv_timer_stop(due_timer_.get());
        return;
    }
    int64_t wait = ctx_.cfg().disabled ? 1000 : std::max<int64_t>(0, heap_.front().due - now_ms());
    uv_timer_start(
        due_timer_.get(), [](uv_timer_t* t) { static_cast<Scheduler*>(t->data)->run_due(); },
        uint64_t(wait), 0);
}

void Scheduler::run_due() {
    if (ctx_.cfg().disabled || ctx_.shutting_down) return arm_timer();
    int64_t now = now_ms();
    size_t n = 0;
    while (!heap_.empty() && heap_.front().due <= now && n++ < due_batch) {
        std::pop_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
        auto d = std::move(heap_.back().d);
        heap_.pop_back();
        uncount(*d);
        release(std::move(d));
    }
    arm_timer();
}

void Scheduler::uncount(const Delivery& d) {
    auto key = scheduled_queue(*d.msg, d.domain);
    if (auto it = counts_.find(key); it != counts_.end() && --it->second == 0) {
        reasons_.erase(it->first);
        counts_.erase(it);
    }
    --ctx_.stats.scheduled;
}

// A due delivery leaves the scheduled queue: the checks the header lists, then the router.
void Scheduler::release(std::unique_ptr<Delivery> d) {
    if (d->msg->cancelled) return outcome_.part_done(d->msg);
    if (now_ms() - d->msg->received_ms >= ctx_.cfg().max_age_ms)
        return outcome_.expire(std::move(d), EventPeer{});
    if (auto it = suspended_.find(d->domain); it != suspended_.end()) {
        it->second.held.push_back(std::move(d));  // until resumed (or taken by an operator)
        return;
    }
    if (ctx_.breaker.any_held() && !d->msg->is_dsn &&
        !ctx_.breaker.allow(d->msg->tenant(), now_ms())) {
        d->due_ms = now_ms() + breaker_recheck_ms;  // the tenant's breaker holds it: no attempt
        return schedule(std::move(d));
    }
    if (!ctx_.hooks.has(Hook::send_email)) return router_.route(std::move(d));
    ask_send_email(std::move(d));
}

// send_email (Haraka's semantics): DELAY puts the delivery back for that many seconds
// without counting an attempt; every other code goes on.
void Scheduler::ask_send_email(std::unique_ptr<Delivery> d) {
    auto held = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& dref = **held;
    ctx_.hooks.run(
        Hook::send_email, dref.msg, dref.domain, [this, alive, held](Result r, OutboundAnswer&) {
            if (!alive.lock()) return;
            auto d = std::move(*held);
            if (r.code != Code::delay) return router_.route(std::move(d));
            unsigned long long secs = 60;
            if (!r.msg.empty() && (!parse_u64(r.msg, secs) || secs == 0)) secs = 60;
            d->due_ms = now_ms() + int64_t(std::min<unsigned long long>(secs, 86400)) * 1000;
            schedule(std::move(d));
        });
}

void Scheduler::sweep() {
    ctx_.events.flush();
    int64_t now = now_ms();
    ready_.end_temporary_limits(now);
    if (on_sweep_ && !ctx_.shutting_down) on_sweep_(now);
    if (++sweep_tick_ % 10 != 0 || ctx_.shutting_down) return;
    expire_waiting(now);
    ready_.forget_tls_failures(now);
}

// Deliveries that waited in a ready queue past max_age (a site that stays unreachable
// keeps nothing there for long, but a slow or suspended queue may).
void Scheduler::expire_waiting(int64_t now) {
    for (auto& [key, rq] : ready_.all())
        for (auto& d : rq->take_expired(now, ctx_.cfg().max_age_ms)) {
            if (d->msg->cancelled) {
                outcome_.part_done(d->msg);
                continue;
            }
            outcome_.expire(std::move(d), rq->peer());
        }
}

size_t Scheduler::make_due(const std::string& domain) {
    size_t n = 0;
    int64_t now = now_ms();
    for (auto& e : heap_)
        if (domain.empty() || e.d->domain == domain) {
            e.due = now;
            e.d->due_ms = now;
            ++n;
        }
    std::make_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
    arm_timer();
    return n;
}

void Scheduler::suspend(const std::string& domain, std::string reason) {
    suspended_[domain].reason = std::move(reason);
}

std::optional<size_t> Scheduler::resume(const std::string& domain) {
    auto node = suspended_.extract(domain);
    if (node.empty()) return std::nullopt;
    size_t n = node.mapped().held.size();
    for (auto& d : node.mapped().held) release(std::move(d));
    return n;
}

std::vector<std::unique_ptr<Delivery>> Scheduler::take_if(
    const std::function<bool(const Delivery&)>& pred) {
    std::vector<std::unique_ptr<Delivery>> taken;
    std::vector<HeapEntry> keep;
    for (auto& e : heap_) {
        if (pred(*e.d)) {
            uncount(*e.d);
            taken.push_back(std::move(e.d));
        } else {
            keep.push_back(std::move(e));
        }
    }
    heap_ = std::move(keep);
    std::make_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
    for (auto& [dom, s] : suspended_)
        for (auto it = s.held.begin(); it != s.held.end();) {
            if (pred(**it)) {
                taken.push_back(std::move(*it));
                it = s.held.erase(it);
            } else {
                ++it;
            }
        }
    arm_timer();
    return taken;
}

}  // namespace kasi
