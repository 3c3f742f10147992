#include "core/queue/queue_manager.h"

#include <mutex>

#include <algorithm>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/clock.h"
#include "core/util/ids.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t due_batch = 20000;  // deliveries moved per timer tick

bool heap_less(const auto& a, const auto& b) {  // min-heap on (due, seq)
    return a.due != b.due ? a.due > b.due : a.seq > b.seq;
}

std::string domain_of(const std::string& rcpt) {
    size_t at = rcpt.rfind('@');
    return to_lower(at == std::string::npos ? std::string() : rcpt.substr(at + 1));
}

}  // namespace

namespace {
std::mutex qm_registry_mu;
std::unordered_map<uv_loop_t*, QueueManager*>& qm_registry() {
    static std::unordered_map<uv_loop_t*, QueueManager*> m;
    return m;
}
}  // namespace

QueueManager::QueueManager(uv_loop_t* loop, Spool& spool, QueueSettings s,
                           std::function<void(std::function<void()>)> post)
    : ctx_(loop, spool, std::move(s)),
      dsn_(ctx_, spool, std::move(post), *this),
      outcome_(ctx_, *this, dsn_),
      ready_(ctx_, outcome_),
      router_(ctx_, ready_, outcome_) {
    uv_timer_init(ctx_.loop, due_timer_.get());
    due_timer_->data = this;
    uv_timer_init(ctx_.loop, sweep_timer_.get());
    sweep_timer_->data = this;
    uv_timer_start(
        sweep_timer_.get(), [](uv_timer_t* t) { static_cast<QueueManager*>(t->data)->sweep(); },
        1000, 1000);
    uv_unref(sweep_timer_.handle());
    std::lock_guard<std::mutex> lock(qm_registry_mu);
    qm_registry()[ctx_.loop] = this;
}

QueueManager* QueueManager::on_loop(uv_loop_t* loop) {
    std::lock_guard<std::mutex> lock(qm_registry_mu);
    auto it = qm_registry().find(loop);
    return it == qm_registry().end() ? nullptr : it->second;
}

const ReadyQueue* QueueManager::ready_queue(const std::string& key) const {
    auto it = ready_.all().find(key);
    return it == ready_.all().end() ? nullptr : it->second.get();
}

bool QueueManager::set_temporary_limits(const std::string& key, const LimitOverride& o,
                                        int64_t seconds) {
    return ready_.set_temporary_limits(key, o, seconds);
}

QueueManager::~QueueManager() {
    {
        std::lock_guard<std::mutex> lock(qm_registry_mu);
        qm_registry().erase(ctx_.loop);
    }
    *ctx_.alive = false;
    ctx_.hooks.cancel_all();
    ready_.clear();
    ctx_.events.flush();
}

void QueueManager::set_settings(QueueSettings s) {
    ctx_.set_settings(std::move(s));
    router_.forget_routes();      // new routing rules apply from the next lookup
    ready_.refresh_all_limits();  // and new limits at once
    arm_timer();
}

bool QueueManager::open_events(std::string& err) {
    return ctx_.events.open(ctx_.cfg().events_file, err);
}

void QueueManager::load_recovered(QueueLoader& loader,
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

void QueueManager::enqueue(std::shared_ptr<QueuedMessage> m) {
    ctx_.bodies.message_queued(m->segment);
    ++ctx_.stats.messages;
    ctx_.events.reception(*m);
    std::vector<uint32_t> todo(m->rcpts.size());
    for (uint32_t i = 0; i < todo.size(); ++i) todo[i] = i;
    split(std::move(m), todo, 0, now_ms());
}

void QueueManager::split(std::shared_ptr<QueuedMessage> m, const std::vector<uint32_t>& todo,
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

void QueueManager::schedule(std::unique_ptr<Delivery> d) {
    if (d->due_ms <= now_ms() && !ctx_.cfg().disabled && !ctx_.shutting_down)
        return route(std::move(d));
    ++sched_counts_[scheduled_queue(*d->msg, d->domain)];
    ++ctx_.stats.scheduled;
    int64_t due = d->due_ms;
    heap_.push_back(HeapEntry{due, heap_seq_++, std::move(d)});
    std::push_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
    if (heap_.front().due == due) arm_timer();
}

void QueueManager::arm_timer() {
    if (heap_.empty() || ctx_.shutting_down) {
        uv_timer_stop(due_timer_.get());
        return;
    }
    int64_t wait = ctx_.cfg().disabled ? 1000 : std::max<int64_t>(0, heap_.front().due - now_ms());
    uv_timer_start(
        due_timer_.get(), [](uv_timer_t* t) { static_cast<QueueManager*>(t->data)->run_due(); },
        uint64_t(wait), 0);
}

void QueueManager::run_due() {
    if (ctx_.cfg().disabled || ctx_.shutting_down) return arm_timer();
    int64_t now = now_ms();
    size_t n = 0;
    while (!heap_.empty() && heap_.front().due <= now && n++ < due_batch) {
        std::pop_heap(heap_.begin(), heap_.end(), [](auto& a, auto& b) { return heap_less(a, b); });
        auto d = std::move(heap_.back().d);
        heap_.pop_back();
        auto key = scheduled_queue(*d->msg, d->domain);
        if (auto it = sched_counts_.find(key); it != sched_counts_.end() && --it->second == 0)
            forget_sched(it);
        --ctx_.stats.scheduled;
        route(std::move(d));
    }
    arm_timer();
}

void QueueManager::route(std::unique_ptr<Delivery> d) {
    int64_t now = now_ms();
    if (d->msg->cancelled) return outcome_.part_done(d->msg);
    if (now - d->msg->received_ms >= ctx_.cfg().max_age_ms)
        return outcome_.expire(std::move(d), EventPeer{});
    if (auto it = suspended_.find(d->domain); it != suspended_.end()) {
        it->second.held.push_back(std::move(d));  // until resumed (or expired by the sweep)
        return;
    }
    if (!ctx_.hooks.has(Hook::send_email)) return router_.route(std::move(d));
    // send_email (Haraka's semantics): DELAY puts the delivery back for that many seconds
    // without counting an attempt; every other code goes on.
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

void QueueManager::retry(std::unique_ptr<Delivery> d, const std::string& why) {
    sched_reasons_[scheduled_queue(*d->msg, d->domain)] = why;
    schedule(std::move(d));
}

void QueueManager::sweep() {
    ctx_.events.flush();
    int64_t now = now_ms();
    ready_.end_temporary_limits(now);
    if (++sweep_tick_ % 10 != 0 || ctx_.shutting_down) return;
    for (auto& [key, rq] : ready_.all())
        for (auto& d : rq->take_expired(now, ctx_.cfg().max_age_ms)) {
            if (d->msg->cancelled) {
                outcome_.part_done(d->msg);
                continue;
            }
            outcome_.expire(std::move(d), rq->peer());
        }
    ready_.forget_tls_failures(now);
}

void QueueManager::shutdown() {
    ctx_.shutting_down = true;
    uv_timer_stop(due_timer_.get());
    ready_.close_all();
    ctx_.events.flush();
}

size_t QueueManager::drop_matching(const std::function<bool(const Delivery&)>& pred, bool bounce) {
    std::vector<std::unique_ptr<Delivery>> taken;
    std::vector<HeapEntry> keep;
    for (auto& e : heap_) {
        if (pred(*e.d)) {
            auto key = scheduled_queue(*e.d->msg, e.d->domain);
            if (auto it = sched_counts_.find(key); it != sched_counts_.end() && --it->second == 0)
                forget_sched(it);
            --ctx_.stats.scheduled;
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
    for (auto& [k, rq] : ready_.all())
        for (auto& d : rq->take_if(pred)) taken.push_back(std::move(d));
    size_t n = taken.size();
    for (auto& d : taken) outcome_.drop(std::move(d), bounce);
    arm_timer();
    return n;
}

std::string QueueManager::control(const std::string& line) {
    std::vector<std::string> w;
    for (const auto& t : split_list(line, " \t")) w.push_back(t);
    if (w.empty()) return "error: empty command";
    const std::string& cmd = w[0];
    std::string arg = w.size() > 1 ? w[1] : "";
    std::string rest;
    for (size_t i = 2; i < w.size(); ++i) rest += (rest.empty() ? "" : " ") + w[i];
    if (cmd == "flush") {
        std::string dom = to_lower(arg);
        size_t n = 0;
        int64_t now = now_ms();
        for (auto& e : heap_)
            if (dom.empty() || e.d->domain == dom) {
                e.due = now;
                e.d->due_ms = now;
                ++n;
            }
        std::make_heap(heap_.begin(), heap_.end(),
                       [](auto& a, auto& b) { return heap_less(a, b); });
        if (dom.empty())
            router_.forget_routes();
        else
            router_.forget_route(dom);
        for (auto& [k, rq] : ready_.all()) rq->clear_backoff();
        arm_timer();
        return fmt::format("ok: {} deliveries due now", n);
    }
    if (cmd == "suspend" || cmd == "resume") {
        if (arg.empty()) return "error: " + cmd + " needs a domain or rq:<ready queue>";
        if (arg.rfind("rq:", 0) == 0) {
            ReadyQueue* rq = ready_.find(arg.substr(3));
            if (!rq) return "error: no ready queue " + arg.substr(3);
            if (cmd == "suspend")
                rq->suspend(rest.empty() ? "suspended by the operator" : rest);
            else
                rq->resume();
            return "ok: " + cmd + "ed " + arg;
        }
        std::string dom = to_lower(arg);
        if (cmd == "suspend") {
            suspended_[dom].reason = rest.empty() ? "suspended by the operator" : rest;
            return "ok: suspended " + dom;
        }
        auto node = suspended_.extract(dom);
        if (node.empty()) return "error: " + dom + " is not suspended";
        size_t n = node.mapped().held.size();
        for (auto& d : node.mapped().held) route(std::move(d));
        return fmt::format("ok: resumed {} ({} deliveries released)", dom, n);
    }
    if (cmd == "delete" || cmd == "bounce") {
        if (arg.empty()) return "error: " + cmd + " needs a message id or @domain";
        std::string dom = arg[0] == '@' ? to_lower(arg.substr(1)) : "";
        size_t n = drop_matching(
            [&](const Delivery& d) { return dom.empty() ? d.msg->id == arg : d.domain == dom; },
            cmd == "bounce");
        return fmt::format("ok: {} {} deliveries (in flight ones finish first)",
                           cmd == "delete" ? "deleted" : "bounced", n);
    }
    return "error: unknown command '" + cmd +
           "' (flush, suspend, resume, delete, bounce, reopen-logs)";
}

QueueStats QueueManager::stats() const {
    QueueStats s = ctx_.stats;
    s.connections = uint64_t(ready_.connections());
    s.ready = s.in_flight = 0;
    for (const auto& [k, rq] : ready_.all()) {
        s.ready += rq->waiting();
        s.in_flight += rq->in_flight();
    }
    return s;
}

std::string QueueManager::summary_json() const {
    JsonObject o;
    auto s = stats();
    o.num("time_ms", now_ms());
    o.num("messages", int64_t(s.messages)).num("scheduled", int64_t(s.scheduled));
    o.num("routing", int64_t(s.routing)).num("ready", int64_t(s.ready));
    o.num("in_flight", int64_t(s.in_flight)).num("connections", int64_t(s.connections));
    o.num("delivered", int64_t(s.delivered)).num("deferred", int64_t(s.deferred));
    o.num("bounced", int64_t(s.bounced)).num("expired", int64_t(s.expired));
    o.num("dsns", int64_t(s.dsns)).boolean("disabled", ctx_.cfg().disabled);
    std::string sched = "[";
    for (const auto& [key, n] : sched_counts_) {
        JsonObject q;
        q.str("queue", key).num("deliveries", int64_t(n));
        if (auto r = sched_reasons_.find(key); r != sched_reasons_.end())
            q.str("last_deferral", r->second);
        sched += (sched.size() > 1 ? "," : "") + q.done();
    }
    o.raw("scheduled_queues", sched + "]");
    std::string susp = "[";
    for (const auto& [dom, s] : suspended_) {
        JsonObject q;
        q.str("domain", dom).str("reason", s.reason).num("held", int64_t(s.held.size()));
        susp += (susp.size() > 1 ? "," : "") + q.done();
    }
    o.raw("suspended_domains", susp + "]");
    std::string ready = "[";
    for (const auto& [key, rq] : ready_.all()) {
        JsonObject q;
        const auto& l = rq->limits();
        q.str("queue", key).num("waiting", int64_t(rq->waiting()));
        q.num("connections", int64_t(rq->connections())).str("last_error", rq->last_error());
        if (!rq->suspended().empty()) q.str("suspended", rq->suspended());
        JsonObject lim;
        lim.num("max_connections", l.max_connections)
            .num("max_messages_per_connection", l.max_messages_per_connection)
            .real("max_message_rate", l.max_message_rate)
            .num("max_recipients", l.max_recipients)
            .str("set_by", l.origin);
        q.raw("limits", lim.done());
        ready += (ready.size() > 1 ? "," : "") + q.done();
    }
    o.raw("ready_queues", ready + "]");
    return o.done();
}

}  // namespace kasi
