#include "core/queue/router.h"

#include <fmt/format.h>

#include "core/dns/resolver.h"
#include "core/log/log.h"
#include "core/queue/outcome.h"
#include "core/queue/ready_queues.h"
#include "core/queue/report_transport.h"
#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr int64_t route_ttl_ms = 60000;
constexpr int64_t route_error_ttl_ms = 10000;

}  // namespace

void Router::route(std::unique_ptr<Delivery> d) {
    if (d->msg->is_report) return reports_.take(std::move(d));
    if (ctx_.settings.suppressions && !d->msg->is_dsn) {
        d = drop_suppressed(std::move(d));
        if (!d) return;
    }
    if (ctx_.hooks.has(Hook::get_egress)) return ask_get_egress(std::move(d));
    pick_from_pool(*d);
    ask_get_mx(std::move(d));
}

// Recipients on the suppression list do not go out: they are finished here with a 550
// (the sender gets a DSN) and a Suppressed event. What is left goes on; null if nothing.
std::unique_ptr<Delivery> Router::drop_suppressed(std::unique_ptr<Delivery> d) {
    auto& svc = *ctx_.settings.suppressions;
    const QueuedMessage& m = *d->msg;
    std::string sending(address_domain(m.mail_from));
    std::vector<uint32_t> keep, stop;
    std::vector<SuppressionEntry> why;
    for (uint32_t i : d->rcpts) {
        auto e = svc.check(m.rcpts[i].address, m.tenant(), sending);
        if (!e) {
            keep.push_back(i);
            continue;
        }
        svc.stopped(m.id, m.rcpts[i].address, *e, "delivery");
        stop.push_back(i);
        why.push_back(*e);
    }
    if (stop.empty()) return d;
    auto stopped = std::make_unique<Delivery>(*d);
    stopped->rcpts = stop;
    d->rcpts = keep;
    if (!keep.empty()) ++d->msg->open_parts;
    EventPeer peer;
    peer.site = "suppressed";  // the outcome stage does not count it as a bounce again
    outcome_.not_sent(std::move(stopped),
                      local_reply(550, "5.7.1",
                                  fmt::format("recipient suppressed ({}, scope '{}')",
                                              reason_name(why.front().reason), why.front().scope)),
                      OutcomeKind::local, peer);
    return keep.empty() ? nullptr : std::move(d);
}

// The configuration is read when called: after an asynchronous get_egress a reload may
// have replaced it.
void Router::pick_from_pool(Delivery& d) {
    const EgressConfig& eg = ctx_.cfg().egress;
    if (eg.sources.empty()) {  // no egress.ini: the system's default address
        d.source = nullptr;
        return;
    }
    const std::string* pool = d.msg->note("pool");
    const EgressSource* s = eg.pick(pool ? *pool : "", egress_ticket_++);
    d.source = s ? ctx_.intern(s->name) : nullptr;
}

// get_egress: OK with a source name sends from it; DENYSOFT defers (no source may take the
// message now, say why); DENY bounces; anything else picks from the pools.
void Router::ask_get_egress(std::unique_ptr<Delivery> d) {
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& ref = **holder;
    ctx_.hooks.run(
        Hook::get_egress, ref.msg, ref.domain, [this, alive, holder](Result r, OutboundAnswer& a) {
            if (!alive.lock()) return;
            auto d = std::move(*holder);
            if (r.code == Code::ok && !a.source.empty()) {
                if (!ctx_.cfg().egress.source(a.source)) {
                    log::error(
                        "queue: get_egress chose source '{}', which egress.ini does not define",
                        a.source);
                    return outcome_.not_sent(
                        std::move(d),
                        local_reply(451, "4.3.5", "egress source " + a.source + " is not defined"),
                        OutcomeKind::local, EventPeer{});
                }
                d->source = ctx_.intern(a.source);
                return ask_get_mx(std::move(d));
            }
            if (r.code == Code::denysoft || r.code == Code::denysoftdisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(451, "4.4.5", r.msg.empty() ? "no egress source available" : r.msg),
                    OutcomeKind::local, EventPeer{});
            if (r.code == Code::deny || r.code == Code::denydisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(550, "5.7.1", r.msg.empty() ? "refused by egress policy" : r.msg),
                    OutcomeKind::local, EventPeer{});
            pick_from_pool(*d);
            ask_get_mx(std::move(d));
        });
}

// get_mx (Haraka's semantics): OK with next hops routes there, in the order given; DENY
// bounces, DENYSOFT defers, anything else falls through to DNS.
void Router::ask_get_mx(std::unique_ptr<Delivery> d) {
    if (!ctx_.hooks.has(Hook::get_mx)) return route_by_dns(std::move(d));
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& ref = **holder;
    ctx_.hooks.run(
        Hook::get_mx, ref.msg, ref.domain, [this, alive, holder](Result r, OutboundAnswer& a) {
            if (!alive.lock()) return;
            auto d = std::move(*holder);
            const std::string domain = d->domain;
            if (r.code == Code::ok && !a.mx.empty())
                return route_to_hops(std::move(d), std::move(a.mx));
            if (r.code == Code::ok)
                log::warn("queue: get_mx answered OK without a next hop for {}", domain);
            if (r.code == Code::deny || r.code == Code::denydisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(550, "5.1.2", r.msg.empty() ? "No MX for " + domain : r.msg),
                    OutcomeKind::local, EventPeer{});
            if (r.code == Code::denysoft || r.code == Code::denysoftdisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(450, "4.1.2",
                                r.msg.empty() ? "Temporary MX lookup error for " + domain : r.msg),
                    OutcomeKind::local, EventPeer{});
            route_by_dns(std::move(d));
        });
}

void Router::route_to_hops(std::unique_ptr<Delivery> d, std::vector<NextHop> hops) {
    std::vector<MxHost> hosts;
    for (const auto& h : hops) hosts.push_back(MxHost{h.host, h.priority, {}, false});
    MxOptions opt;
    opt.prefer = ctx_.cfg().inet_prefer;
    opt.local_mx_ok = true;  // an explicit next hop on this machine is a choice, not a loop
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    resolve_hosts(
        *ctx_.resolver, std::move(hosts), opt,
        [this, alive, holder, hops = std::move(hops)](MxResult r) {
            if (!alive.lock()) return;
            auto d = std::move(*holder);
            if (r.kind != MxResult::Kind::ok)
                return outcome_.not_sent(std::move(d), local_reply(451, "4.4.3", r.message),
                                         OutcomeKind::dns, EventPeer{});
            const EgressSource* src = d->source ? ctx_.cfg().egress.source(*d->source) : nullptr;
            RouteEntry e;
            e.ok = true;
            e.route = std::make_shared<const Route>(
                route_for_hops(hops, r, src, ctx_.cfg(), ctx_.settings.me));
            place(std::move(d), e, true);
        });
}

// One MX lookup per domain at a time: deliveries that arrive meanwhile wait for it.
void Router::route_by_dns(std::unique_ptr<Delivery> d) {
    auto it = routes_.find(d->domain);
    if (it != routes_.end() && it->second.expires_ms > now_ms())
        return place(std::move(d), it->second);
    auto& waiting = resolving_[d->domain];
    std::string domain = d->domain;
    waiting.push_back(std::move(d));
    ++ctx_.stats.routing;
    if (waiting.size() > 1) return;
    MxOptions opt;
    opt.prefer = ctx_.cfg().inet_prefer;
    opt.local_mx_ok = ctx_.cfg().local_mx_ok;
    std::weak_ptr<bool> alive = ctx_.alive;
    resolve_mx(*ctx_.resolver, domain, opt, [this, alive, domain](MxResult r) {
        if (alive.lock()) mx_answered(domain, std::move(r));
    });
}

void Router::mx_answered(const std::string& domain, MxResult r) {
    int64_t now = now_ms();
    RouteEntry e;
    if (r.kind == MxResult::Kind::ok) {
        e.ok = true;
        e.route =
            std::make_shared<const Route>(route_for_mx(domain, r, ctx_.cfg(), ctx_.settings.me));
        e.expires_ms = now + route_ttl_ms;
    } else {
        bool permanent = r.kind == MxResult::Kind::permanent;
        e.error = local_reply(permanent ? (r.enhanced == "5.1.10" ? 556 : 550) : 451, r.enhanced,
                              r.message);
        e.expires_ms = now + (permanent ? route_ttl_ms : route_error_ttl_ms);
    }
    routes_[domain] = e;
    auto node = resolving_.extract(domain);
    if (node.empty()) return;
    ctx_.stats.routing -= node.mapped().size();
    for (auto& d : node.mapped()) place(std::move(d), e);
}

void Router::place(std::unique_ptr<Delivery> d, const RouteEntry& e, bool sourced) {
    if (!e.ok) return outcome_.not_sent(std::move(d), e.error, OutcomeKind::dns, EventPeer{});
    const EgressSource* src =
        !sourced && d->source ? ctx_.cfg().egress.source(*d->source) : nullptr;
    ready_.place(std::move(d), *e.route, src);
}

}  // namespace kasi
