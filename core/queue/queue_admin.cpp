#include "core/queue/queue_admin.h"

#include <fmt/format.h>

#include "core/queue/outcome.h"
#include "core/queue/ready_queues.h"
#include "core/queue/router.h"
#include "core/queue/scheduler.h"
#include "core/util/clock.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

std::string QueueAdmin::control(const std::string& line) {
    std::vector<std::string> w;
    for (const auto& t : split_list(line, " \t")) w.push_back(t);
    if (w.empty()) return "error: empty command";
    const std::string& cmd = w[0];
    std::string arg = w.size() > 1 ? w[1] : "";
    std::string rest;
    for (size_t i = 2; i < w.size(); ++i) rest += (rest.empty() ? "" : " ") + w[i];
    if (cmd == "flush") return flush(to_lower(arg));
    if (cmd == "suspend" || cmd == "resume") return suspend_or_resume(cmd, arg, rest);
    if (cmd == "delete" || cmd == "bounce") return drop(cmd, arg);
    if (cmd == "tenant") return tenant(arg, rest);
    return "error: unknown command '" + cmd +
           "' (flush, suspend, resume, delete, bounce, tenant, reopen-logs)";
}

std::string QueueAdmin::tenant(const std::string& arg, const std::string& rest) {
    int64_t now = now_ms();
    auto sp = rest.find(' ');
    std::string name = rest.substr(0, sp),
                reason = sp == std::string::npos ? "" : rest.substr(sp + 1);
    if (arg == "pause" && !name.empty()) return ctx_.breaker.pause(name, reason, now);
    if (arg == "resume" && !name.empty() && reason.empty())
        return ctx_.breaker.resume(name, now);  // what it held goes within 30 s
    if (arg == "list" && (rest.empty() || rest == "all"))
        return "ok " + ctx_.breaker.json(now, rest == "all");
    return "error: tenant pause TENANT [REASON] | resume TENANT | list [all]";
}

// Every scheduled delivery (to `domain`) is due now; its cached route and any dead-site
// backoff are dropped.
std::string QueueAdmin::flush(const std::string& domain) {
    size_t n = scheduler_.make_due(domain);
    if (domain.empty())
        router_.forget_routes();
    else
        router_.forget_route(domain);
    for (auto& [k, rq] : ready_.all()) rq->clear_backoff();
    return fmt::format("ok: {} deliveries due now", n);
}

std::string QueueAdmin::suspend_or_resume(const std::string& cmd, const std::string& arg,
                                          const std::string& reason) {
    if (arg.empty()) return "error: " + cmd + " needs a domain or rq:<ready queue>";
    std::string why = reason.empty() ? "suspended by the operator" : reason;
    if (arg.rfind("rq:", 0) == 0) {
        ReadyQueue* rq = ready_.find(arg.substr(3));
        if (!rq) return "error: no ready queue " + arg.substr(3);
        if (cmd == "suspend")
            rq->suspend(why);
        else
            rq->resume();
        return "ok: " + cmd + "ed " + arg;
    }
    std::string dom = to_lower(arg);
    if (cmd == "suspend") {
        scheduler_.suspend(dom, why);
        return "ok: suspended " + dom;
    }
    auto n = scheduler_.resume(dom);
    if (!n) return "error: " + dom + " is not suspended";
    return fmt::format("ok: resumed {} ({} deliveries released)", dom, *n);
}

// delete ID|@DOMAIN, bounce ID|@DOMAIN: what waits (scheduled, held or in a ready queue)
// is taken out and failed; deliveries in flight finish first.
std::string QueueAdmin::drop(const std::string& cmd, const std::string& arg) {
    if (arg.empty()) return "error: " + cmd + " needs a message id or @domain";
    std::string dom = arg[0] == '@' ? to_lower(arg.substr(1)) : "";
    auto pred = [&](const Delivery& d) { return dom.empty() ? d.msg->id == arg : d.domain == dom; };
    auto taken = scheduler_.take_if(pred);
    for (auto& [k, rq] : ready_.all())
        for (auto& d : rq->take_if(pred)) taken.push_back(std::move(d));
    bool bounce = cmd == "bounce";
    for (auto& d : taken) outcome_.drop(std::move(d), bounce);
    return fmt::format("ok: {} {} deliveries (in flight ones finish first)",
                       bounce ? "bounced" : "deleted", taken.size());
}

QueueStats QueueAdmin::stats() const {
    QueueStats s = ctx_.stats;
    s.connections = uint64_t(ready_.connections());
    s.ready = s.in_flight = 0;
    for (const auto& [k, rq] : ready_.all()) {
        s.ready += rq->waiting();
        s.in_flight += rq->in_flight();
    }
    return s;
}

std::string QueueAdmin::summary_json() const {
    JsonObject o;
    auto s = stats();
    o.num("time_ms", now_ms());
    o.num("messages", int64_t(s.messages)).num("scheduled", int64_t(s.scheduled));
    o.num("routing", int64_t(s.routing)).num("ready", int64_t(s.ready));
    o.num("in_flight", int64_t(s.in_flight)).num("connections", int64_t(s.connections));
    o.num("delivered", int64_t(s.delivered)).num("deferred", int64_t(s.deferred));
    o.num("bounced", int64_t(s.bounced)).num("expired", int64_t(s.expired));
    o.num("dsns", int64_t(s.dsns)).boolean("disabled", ctx_.cfg().disabled);
    o.raw("scheduled_queues", scheduled_json());
    o.raw("suspended_domains", suspended_json());
    o.raw("ready_queues", ready_json());
    o.raw("recent_errors", errors_json());
    return o.done();
}

std::string QueueAdmin::scheduled_json() const {
    std::string out = "[";
    const auto& reasons = scheduler_.last_deferrals();
    for (const auto& [key, n] : scheduler_.queue_sizes()) {
        JsonObject q;
        q.str("queue", key).num("deliveries", int64_t(n));
        if (auto r = reasons.find(key); r != reasons.end()) q.str("last_deferral", r->second);
        out += (out.size() > 1 ? "," : "") + q.done();
    }
    return out + "]";
}

// The last classified errors of each queue (scheduled queue: the recipient domain, or
// the tenant's queue), newest first: what an operator reads to see why a queue is stuck.
std::string QueueAdmin::errors_json() const {
    std::string out = "[";
    for (const auto& [key, list] : outcome_.recent_errors()) {
        std::string errs = "[";
        for (const auto& e : list) {
            JsonObject j;
            j.num("time_ms", e.time_ms).str("verdict", verdict_name(e.verdict));
            j.str("reason", e.reason).str("class", e.cls).num("count", int64_t(e.count));
            j.str("reply", e.reply);
            errs += (errs.size() > 1 ? "," : "") + j.done();
        }
        JsonObject q;
        q.str("queue", key).raw("errors", errs + "]");
        out += (out.size() > 1 ? "," : "") + q.done();
    }
    return out + "]";
}

std::string QueueAdmin::suspended_json() const {
    std::string out = "[";
    for (const auto& [dom, s] : scheduler_.suspended()) {
        JsonObject q;
        q.str("domain", dom).str("reason", s.reason).num("held", int64_t(s.held.size()));
        out += (out.size() > 1 ? "," : "") + q.done();
    }
    return out + "]";
}

std::string QueueAdmin::ready_json() const {
    std::string out = "[";
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
        out += (out.size() > 1 ? "," : "") + q.done();
    }
    return out + "]";
}

}  // namespace kasi
