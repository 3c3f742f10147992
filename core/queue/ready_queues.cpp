#include "core/queue/ready_queues.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/classify/classifier.h"
#include "core/log/log.h"
#include "core/queue/outcome.h"
#include "core/queue/txn_loader.h"
#include "core/queue/verdict.h"
#include "core/util/clock.h"

namespace kasi {

void ReadyQueues::place(std::unique_ptr<Delivery> d, const Route& route, const EgressSource* src) {
    if (shaping_ && shaping_->actions()) src = pool_for_shaping(route, src);
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
    rq.set_limits(final_limits(rq, std::move(lim)));
}

QueueLimits ReadyQueues::final_limits(const ReadyQueue& rq, QueueLimits l) const {
    if (auto t = temp_limits_.find(rq.key()); t != temp_limits_.end())
        apply_override(l, t->second.o);
    if (!shaping_ || !shaping_->actions()) return l;
    auto e = shaping_->effect(rq.route().source, provider_of(rq.route()));
    if (!e) return l;
    if (e->rate > 0)
        l.max_message_rate =
            l.max_message_rate > 0 ? std::min(l.max_message_rate, e->rate) : e->rate;
    if (e->conn_factor < 1)
        l.max_connections = std::max(1, int(double(l.max_connections) * e->conn_factor));
    if (e->connections) l.max_connections = std::min(l.max_connections, e->connections);
    if (e->messages_per_connection)
        l.max_messages_per_connection =
            std::min(l.max_messages_per_connection, e->messages_per_connection);
    if (e->suspended_until_ms > now_ms()) l.max_connections = 0;  // held, not lost
    l.origin += "; " + e->why;
    return l;
}

std::string ReadyQueues::provider_of(const Route& r) const {
    const auto& cls = ctx_.cfg().classifier;
    if (!cls || r.mx_hosts.empty()) return "other";
    std::string_view p = cls->providers().provider_of(r.mx_hosts.front());
    return p.empty() ? "other" : std::string(p);
}

// An action that moves the pair's new traffic to another pool: a source of that pool.
const EgressSource* ReadyQueues::pool_for_shaping(const Route& route, const EgressSource* src) {
    const std::string& name = src ? src->name : route.source;
    auto e = shaping_->effect(name, provider_of(route));
    if (!e || e->pool.empty()) return src;
    const EgressSource* alt = ctx_.cfg().egress.pick(e->pool, pool_ticket_++);
    return alt ? alt : src;
}

// Told in the middle of an outcome (a queue's callback may be below on the stack): the
// queues are refreshed at the next sweep, within a second.
void ReadyQueues::shaping_changed(const std::string& source, const std::string& provider) {
    shaping_pending_.emplace(source, provider);
}

void ReadyQueues::apply_shaping_changes() {
    if (shaping_pending_.empty()) return;
    auto pending = std::move(shaping_pending_);
    shaping_pending_.clear();
    for (auto& [k, rq] : ready_)
        if (pending.count({rq->route().source, provider_of(rq->route())})) {
            refresh_limits(*rq);
            rq->pump();
        }
}

// A refusal before any transaction (a connection cap, a blocked IP at the greeting) is an
// outcome for the automation rules, though no recipient gets it.
void ReadyQueues::refused(const ReadyQueue& rq, const SmtpReply& why) {
    if (!shaping_ || !shaping_->active()) return;
    std::string_view mx =
        rq.route().mx_hosts.empty() ? std::string_view() : std::string_view(rq.route().mx_hosts[0]);
    Classification c = judge(ctx_.cfg().classifier.get(), 1, {why}, OutcomeKind::reply, {}, mx,
                             rq.first_domain())[0]
                           .cls;
    std::string line = fmt::format("{} {} {}", why.code, why.enhanced, why.text());
    std::string provider = provider_of(rq.route());
    ShapingInput in;
    in.kind = ShapingInput::Kind::connection;
    in.source = rq.route().source;
    in.provider = provider;
    in.cls = c.cls;
    in.reply = line;
    shaping_->observe(in, now_ms());
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
            q->set_limits(final_limits(*q, std::move(l)));
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
