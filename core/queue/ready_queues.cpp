#include "core/queue/ready_queues.h"

#include <algorithm>

#include "core/log/log.h"
#include "core/queue/outcome.h"
#include "core/queue/txn_loader.h"
#include "core/util/clock.h"

namespace kasi {

void ReadyQueues::place(std::unique_ptr<Delivery> d, const Route& route, const EgressSource* src) {
    // The queue exists almost always: find it by key; copy the route only to create one.
    auto it = ready_.find(queue_key(route, src ? src->name : route.source));
    ReadyQueue* found = it == ready_.end() ? nullptr : it->second.get();
    if (!found) {
        Route r = route;
        if (src) apply_source(r, *src);
        found = &create(r, d->domain);
    }
    ReadyQueue& rq = *found;
    size_t max_rcpts = verp_return_domain(ctx_.cfg(), *d->msg)
                           ? 1
                           : size_t(std::max(1, rq.limits().max_recipients));
    while (d->rcpts.size() > max_rcpts) {  // one transaction per max_recipients
        auto extra = std::make_unique<Delivery>(*d);
        extra->rcpts.assign(d->rcpts.begin() + long(max_rcpts), d->rcpts.end());
        d->rcpts.resize(max_rcpts);
        ++d->msg->open_parts;
        rq.push(std::move(d));
        d = std::move(extra);
    }
    rq.push(std::move(d));
}

ReadyQueue& ReadyQueues::create(const Route& r, const std::string& domain) {
    std::string key = queue_key(r);
    QueueLimits lim = ctx_.cfg().limits_for(domain, r.mx_hosts, r.source);
    auto rq = std::make_unique<ReadyQueue>(*this, key, r, lim);
    rq->set_first_domain(domain);
    auto& ref = *rq;
    ready_.emplace(key, std::move(rq));
    refresh_limits(ref);
    return ref;
}

ReadyQueue* ReadyQueues::find(const std::string& key) {
    auto it = ready_.find(key);
    return it == ready_.end() ? nullptr : it->second.get();
}

bool ReadyQueues::set_temporary_limits(const std::string& key, const LimitOverride& o,
                                       int64_t seconds) {
    ReadyQueue* rq = find(key);
    if (!rq) return false;
    temp_limits_[key] = TempLimits{o, now_ms() + seconds * 1000};
    log::info("queue: {}: limits overridden for {} s by {}", key, seconds, o.origin);
    refresh_limits(*rq);
    return true;
}

void ReadyQueues::end_temporary_limits(int64_t now) {
    for (auto it = temp_limits_.begin(); it != temp_limits_.end();) {
        if (it->second.until_ms > now) {
            ++it;
            continue;
        }
        std::string key = it->first;
        it = temp_limits_.erase(it);
        log::info("queue: {}: temporary limits ended", key);
        if (ReadyQueue* rq = find(key)) refresh_limits(*rq);
    }
}

void ReadyQueues::refresh_all_limits() {
    for (auto& [k, rq] : ready_) refresh_limits(*rq);
}

void ReadyQueues::refresh_limits(ReadyQueue& rq) {
    const Route& r = rq.route();
    QueueLimits lim = ctx_.cfg().limits_for(rq.first_domain(), r.mx_hosts, r.source);
    if (ctx_.hooks.has(Hook::queue_limits)) return ask_queue_limits(rq, lim);
    if (auto t = temp_limits_.find(rq.key()); t != temp_limits_.end())
        apply_override(lim, t->second.o);
    rq.set_limits(lim);
}

// queue_limits: OK with limits overrides the configured ones; the queue waits, with no
// connection, while an asynchronous handler answers.
void ReadyQueues::ask_queue_limits(ReadyQueue& rq, const QueueLimits& configured) {
    const Route& r = rq.route();
    auto info = std::make_shared<QueueInfo>();
    info->key = rq.key();
    info->source = r.source;
    info->site = r.site;
    info->domain = rq.first_domain();
    info->mx_hosts = r.mx_hosts;
    info->limits = configured;
    auto answered = std::make_shared<bool>(false);
    std::weak_ptr<bool> alive = ctx_.alive;
    std::string key = rq.key();
    ctx_.hooks.run(
        Hook::queue_limits, nullptr, rq.first_domain(),
        [this, alive, key, info, answered](Result res, OutboundAnswer& a) {
            *answered = true;
            if (!alive.lock()) return;
            ReadyQueue* q = find(key);
            if (!q) return;
            QueueLimits l = info->limits;
            if (res.code == Code::ok && a.limits) apply_override(l, *a.limits);
            if (auto t = temp_limits_.find(key); t != temp_limits_.end())
                apply_override(l, t->second.o);
            q->set_limits(std::move(l));
        },
        {}, info);
    if (!*answered) {  // hold the queue until the policy has answered
        QueueLimits hold = configured;
        hold.max_connections = 0;
        hold.origin = "waiting for the queue_limits hook";
        rq.set_limits(hold);
    }
}

void ReadyQueues::close_all() {
    for (auto& [k, rq] : ready_) rq->close_all();
}

bool ReadyQueues::may_connect() const {
    return !ctx_.shutting_down && conns_ < ctx_.cfg().concurrency_max;
}

bool ReadyQueues::tls_failed_recently(const std::string& host) const {
    return tls_failures_.failed_recently(host, now_ms());
}

void ReadyQueues::remember_tls_failure(const std::string& host) {
    tls_failures_.remember(host, now_ms(), ctx_.cfg().tls_failure_memory_s);
}

void ReadyQueues::prepare(Delivery& d, std::function<void(bool, OutTxn)> cb) {
    load_transaction(ctx_.bodies, ctx_.cfg(), d, std::move(cb));
}

void ReadyQueues::sent(std::unique_ptr<Delivery> d, const TxnOutcome& out, const ReadyQueue& rq,
                       const ConnInfo& info) {
    outcome_.transaction(std::move(d), out, rq.peer(&info));
}

void ReadyQueues::not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                           const ReadyQueue& rq) {
    outcome_.not_sent(std::move(d), why, kind, rq.peer());
}

}  // namespace kasi
