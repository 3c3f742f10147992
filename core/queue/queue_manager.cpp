#include "core/queue/queue_manager.h"

#include <mutex>

#include <algorithm>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/smtp/client/dot_stuff.h"
#include "core/util/clock.h"
#include "core/util/ids.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr int64_t route_ttl_ms = 60000;
constexpr int64_t route_error_ttl_ms = 10000;
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
      outcome_(ctx_, *this, dsn_) {
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
    auto it = ready_.find(key);
    return it == ready_.end() ? nullptr : it->second.get();
}

bool QueueManager::set_temporary_limits(const std::string& key, const LimitOverride& o,
                                        int64_t seconds) {
    auto it = ready_.find(key);
    if (it == ready_.end()) return false;
    temp_limits_[key] = TempLimits{o, now_ms() + seconds * 1000};
    log::info("queue: {}: limits overridden for {} s by {}", key, seconds, o.origin);
    refresh_limits(*it->second);
    return true;
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
    routes_.clear();  // new routing rules apply from the next lookup
    for (auto& [k, rq] : ready_) refresh_limits(*rq);  // and new limits at once
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
    if (!ctx_.hooks.has(Hook::send_email)) return choose_egress(std::move(d));
    // send_email (Haraka's semantics): DELAY puts the delivery back for that many seconds
    // without counting an attempt; every other code goes on.
    auto held = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& dref = **held;
    ctx_.hooks.run(
        Hook::send_email, dref.msg, dref.domain, [this, alive, held](Result r, OutboundAnswer&) {
            if (!alive.lock()) return;
            auto d = std::move(*held);
            if (r.code != Code::delay) return choose_egress(std::move(d));
            unsigned long long secs = 60;
            if (!r.msg.empty() && (!parse_u64(r.msg, secs) || secs == 0)) secs = 60;
            d->due_ms = now_ms() + int64_t(std::min<unsigned long long>(secs, 86400)) * 1000;
            schedule(std::move(d));
        });
}

void QueueManager::choose_egress(std::unique_ptr<Delivery> d) {
    // Reads the configuration when called: after an asynchronous get_egress a reload may
    // have replaced it.
    auto by_pool = [this](Delivery& d) {
        const EgressConfig& eg = ctx_.cfg().egress;
        if (eg.sources.empty()) {  // no egress.ini: the system's default address
            d.source = nullptr;
            return;
        }
        const std::string* pool = d.msg->note("pool");
        const EgressSource* s = eg.pick(pool ? *pool : "", egress_ticket_++);
        d.source = s ? ctx_.intern(s->name) : nullptr;
    };
    if (!ctx_.hooks.has(Hook::get_egress)) {
        by_pool(*d);
        return route_by_hooks(std::move(d));
    }
    // get_egress: OK with a source name sends from it; DENYSOFT defers (no source may take
    // the message now, say why); DENY bounces; anything else picks from the pools.
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& ref = **holder;
    ctx_.hooks.run(
        Hook::get_egress, ref.msg, ref.domain,
        [this, alive, holder, by_pool](Result r, OutboundAnswer& a) {
            if (!alive.lock()) return;
            auto d = std::move(*holder);
            const EgressConfig& eg = ctx_.cfg().egress;
            if (r.code == Code::ok && !a.source.empty()) {
                if (!eg.source(a.source)) {
                    log::error(
                        "queue: get_egress chose source '{}', which egress.ini does not "
                        "define",
                        a.source);
                    return outcome_.not_sent(
                        std::move(d),
                        local_reply(451, "4.3.5", "egress source " + a.source + " is not defined"),
                        OutcomeKind::local, EventPeer{});
                }
                d->source = ctx_.intern(a.source);
                return route_by_hooks(std::move(d));
            }
            if (r.code == Code::denysoft || r.code == Code::denysoftdisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(451, "4.4.5", r.msg.empty() ? "no egress source available" : r.msg),
                    OutcomeKind::local, EventPeer{});
            if (r.code == Code::deny || r.code == Code::denydisconnect) {
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(550, "5.7.1", r.msg.empty() ? "refused by egress policy" : r.msg),
                    OutcomeKind::local, EventPeer{});
            }
            by_pool(*d);
            route_by_hooks(std::move(d));
        });
}

void QueueManager::apply_source(Route& r, const Delivery& d, bool hop_bind, bool hop_helo) const {
    if (!d.source) return;
    const EgressSource* s = ctx_.cfg().egress.source(*d.source);
    if (!s) return;
    r.source = s->name;
    if (!hop_bind && s->address) r.bind = *s->address;
    if (!hop_helo && !s->ehlo.empty()) r.helo = s->ehlo;
}

void QueueManager::route_by_hooks(std::unique_ptr<Delivery> d) {
    if (!ctx_.hooks.has(Hook::get_mx)) return route_by_dns(std::move(d));
    // get_mx (Haraka's semantics): OK with next hops routes there, in the order given;
    // DENY bounces, DENYSOFT defers, anything else falls through to DNS.
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
            if (r.code == Code::deny || r.code == Code::denydisconnect) {
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(550, "5.1.2", r.msg.empty() ? "No MX for " + domain : r.msg),
                    OutcomeKind::local, EventPeer{});
            }
            if (r.code == Code::denysoft || r.code == Code::denysoftdisconnect)
                return outcome_.not_sent(
                    std::move(d),
                    local_reply(450, "4.1.2",
                                r.msg.empty() ? "Temporary MX lookup error for " + domain : r.msg),
                    OutcomeKind::local, EventPeer{});
            route_by_dns(std::move(d));
        });
}

void QueueManager::route_to_hops(std::unique_ptr<Delivery> d, std::vector<NextHop> hops) {
    std::vector<MxHost> hosts;
    for (const auto& h : hops) hosts.push_back(MxHost{h.host, h.priority, {}, false});
    MxOptions opt;
    opt.prefer = ctx_.cfg().inet_prefer;
    opt.local_mx_ok = true;  // an explicit next hop on this machine is a choice, not a loop
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    resolve_hosts(*ctx_.resolver, std::move(hosts), opt,
                  [this, alive, holder, hops = std::move(hops)](MxResult r) {
                      if (!alive.lock()) return;
                      auto d = std::move(*holder);
                      if (r.kind != MxResult::Kind::ok)
                          return outcome_.not_sent(std::move(d),
                                                   local_reply(451, "4.4.3", r.message),
                                                   OutcomeKind::dns, EventPeer{});
                      Route route;
                      const NextHop& first = hops[r.hosts.front().tag];
                      route.helo = first.bind_helo.empty() ? ctx_.settings.me : first.bind_helo;
                      if (!first.bind.empty()) route.bind = IpAddr::parse(first.bind);
                      apply_source(route, *d, !first.bind.empty(), !first.bind_helo.empty());
                      route.lmtp = first.lmtp;
                      route.auth_user = first.auth_user;
                      route.auth_pass = first.auth_pass;
                      route.auth_allow_cleartext = first.auth_allow_cleartext;
                      for (const auto& h : r.hosts) {
                          const NextHop& hop = hops[h.tag];
                          std::string name =
                              fmt::format("{}{}:{}", hop.lmtp ? "lmtp:" : "", hop.host, hop.port);
                          route.mx_hosts.push_back(name);
                          route.site += (route.site.empty() ? "" : ",") + name;
                          for (const auto& a : h.addrs)
                              route.endpoints.push_back(Endpoint{
                                  a, hop.port, IpAddr::parse(hop.host) ? std::string() : hop.host});
                      }
                      route.tls = ctx_.cfg().enable_tls ? TlsMode::opportunistic : TlsMode::off;
                      for (const auto& p : ctx_.cfg().no_tls_hosts)
                          for (const auto& h : hops)
                              if (host_pattern_match(p, h.host)) route.tls = TlsMode::off;
                      for (const auto& p : ctx_.cfg().force_tls_hosts)
                          for (const auto& h : hops)
                              if (host_pattern_match(p, h.host)) route.tls = TlsMode::required;
                      RouteEntry e;
                      e.ok = true;
                      e.route = std::make_shared<const Route>(std::move(route));
                      place(std::move(d), e, true);
                  });
}

void QueueManager::route_by_dns(std::unique_ptr<Delivery> d) {
    int64_t now = now_ms();
    auto it = routes_.find(d->domain);
    if (it != routes_.end() && it->second.expires_ms > now) return place(std::move(d), it->second);
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
        if (alive.lock()) routed(domain, std::move(r));
    });
}

namespace {
// "source->site", plus the TLS mode when it is not opportunistic, and the credentials' user
// and whether they may go in clear: a ready queue delivers with its first route's settings,
// so routes that differ in these must not share one (the password is not in the key: the
// key is shown by kasictl queue).
std::string queue_key(const Route& r, const std::string& source) {
    std::string key = source + "->" + r.site;
    if (r.tls == TlsMode::required) key += " (tls required)";
    if (r.tls == TlsMode::off) key += " (no tls)";
    if (!r.auth_user.empty())
        key += fmt::format(" (auth {}{})", r.auth_user,
                           r.auth_allow_cleartext ? ", cleartext allowed" : "");
    return key;
}
}  // namespace

ReadyQueue& QueueManager::ready_queue_for(const Route& r, const std::string& domain) {
    std::string key = queue_key(r, r.source);
    auto it = ready_.find(key);
    if (it != ready_.end()) return *it->second;
    QueueLimits lim = ctx_.cfg().limits_for(domain, r.mx_hosts, r.source);
    auto rq = std::make_unique<ReadyQueue>(*this, key, r, lim);
    rq->set_first_domain(domain);
    auto& ref = *rq;
    ready_.emplace(key, std::move(rq));
    refresh_limits(ref);
    return ref;
}

void QueueManager::refresh_limits(ReadyQueue& rq) {
    const Route& r = rq.route();
    QueueLimits lim = ctx_.cfg().limits_for(rq.first_domain(), r.mx_hosts, r.source);
    const LimitOverride* temp = nullptr;
    if (auto t = temp_limits_.find(rq.key()); t != temp_limits_.end()) temp = &t->second.o;
    if (!ctx_.hooks.has(Hook::queue_limits)) {
        if (temp) apply_override(lim, *temp);
        return rq.set_limits(lim);
    }
    auto info = std::make_shared<QueueInfo>();
    info->key = rq.key();
    info->source = r.source;
    info->site = r.site;
    info->domain = rq.first_domain();
    info->mx_hosts = r.mx_hosts;
    info->limits = lim;
    auto answered = std::make_shared<bool>(false);
    std::weak_ptr<bool> alive = ctx_.alive;
    std::string key = rq.key();
    ctx_.hooks.run(
        Hook::queue_limits, nullptr, rq.first_domain(),
        [this, alive, key, info, answered](Result res, OutboundAnswer& a) {
            *answered = true;
            if (!alive.lock()) return;
            auto it = ready_.find(key);
            if (it == ready_.end()) return;
            QueueLimits l = info->limits;
            if (res.code == Code::ok && a.limits) apply_override(l, *a.limits);
            if (auto t = temp_limits_.find(key); t != temp_limits_.end())
                apply_override(l, t->second.o);
            it->second->set_limits(std::move(l));
        },
        {}, info);
    if (!*answered) {  // hold the queue until the policy has answered
        QueueLimits hold = lim;
        hold.max_connections = 0;
        hold.origin = "waiting for the queue_limits hook";
        rq.set_limits(hold);
    }
}

void QueueManager::routed(const std::string& domain, MxResult r) {
    int64_t now = now_ms();
    RouteEntry e;
    if (r.kind == MxResult::Kind::ok) {
        Route route;
        route.helo = ctx_.settings.me;
        std::vector<std::string> names;
        for (const auto& h : r.hosts) {
            std::string name =
                h.name.empty() && !h.addrs.empty() ? "[" + h.addrs[0].str() + "]" : h.name;
            names.push_back(name);
            for (const auto& a : h.addrs)
                route.endpoints.push_back(Endpoint{a, uint16_t(ctx_.cfg().smtp_port), h.name});
        }
        route.mx_hosts = names;
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        for (const auto& n : names) route.site += (route.site.empty() ? "" : ",") + n;
        route.tls = ctx_.cfg().enable_tls ? TlsMode::opportunistic : TlsMode::off;
        auto listed = [&](const std::vector<std::string>& list) {
            for (const auto& p : list) {
                if (host_pattern_match(p, domain)) return true;
                for (const auto& h : route.mx_hosts)
                    if (host_pattern_match(p, h)) return true;
                for (const auto& ep : route.endpoints)
                    if (p == ep.ip.str()) return true;
            }
            return false;
        };
        if (listed(ctx_.cfg().no_tls_hosts)) route.tls = TlsMode::off;
        if (listed(ctx_.cfg().force_tls_hosts)) route.tls = TlsMode::required;
        e.ok = true;
        e.route = std::make_shared<const Route>(std::move(route));
        e.expires_ms = now + route_ttl_ms;
    } else {
        e.permanent = r.kind == MxResult::Kind::permanent;
        e.error = local_reply(e.permanent ? (r.enhanced == "5.1.10" ? 556 : 550) : 451, r.enhanced,
                              r.message);
        e.expires_ms = now + (e.permanent ? route_ttl_ms : route_error_ttl_ms);
    }
    routes_[domain] = e;
    auto node = resolving_.extract(domain);
    if (node.empty()) return;
    ctx_.stats.routing -= node.mapped().size();
    for (auto& d : node.mapped()) place(std::move(d), e);
}

void QueueManager::place(std::unique_ptr<Delivery> d, const RouteEntry& e, bool sourced) {
    if (!e.ok) {
        return outcome_.not_sent(std::move(d), e.error, OutcomeKind::dns, EventPeer{});
    }
    // The queue exists almost always: find it by key; copy the route only to create one.
    const EgressSource* src =
        !sourced && d->source ? ctx_.cfg().egress.source(*d->source) : nullptr;
    auto it = ready_.find(queue_key(*e.route, src ? src->name : e.route->source));
    ReadyQueue* found = it == ready_.end() ? nullptr : it->second.get();
    if (!found) {
        Route r = *e.route;
        if (!sourced) apply_source(r, *d, false, false);
        found = &ready_queue_for(r, d->domain);
    }
    ReadyQueue& rq = *found;
    // A VERP return path names one recipient: one transaction each.
    size_t max_rcpts = verp_domain(*d->msg) ? 1 : size_t(std::max(1, rq.limits().max_recipients));
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

const std::string* QueueManager::verp_domain(const QueuedMessage& m) const {
    if (!ctx_.cfg().verp || m.mail_from.empty() || m.is_dsn) return nullptr;
    return m.note("verp.domain");
}

void QueueManager::prepare(Delivery& d, std::function<void(bool, OutTxn)> cb) {
    auto m = d.msg;
    std::vector<std::string> rcpts;
    for (uint32_t i : d.rcpts) rcpts.push_back(m->rcpts[i].address);
    const std::string* rp = verp_domain(*m);
    int first = rp && d.rcpts.size() == 1 ? int(d.rcpts[0]) : -1;
    std::shared_ptr<const VerpConfig> verp = rp ? ctx_.cfg().verp : nullptr;
    ctx_.bodies.read(*m, [m, rcpts = std::move(rcpts), cb = std::move(cb), rp, first, verp](
                             int err, std::string body) mutable {
        if (err) {
            log::error("queue: {}: reading the message from the spool: {}", m->id,
                       std::strerror(err));
            return cb(false, OutTxn{});
        }
        OutTxn t;
        t.mail_from = m->mail_from;
        if (first >= 0 && verp)
            if (auto a = verp_encode(verp->secret(), verp->prefix(), *rp, m->id,
                                     m->rcpts[size_t(first)].address, first);
                !a.empty())
                t.mail_from = std::move(a);
        t.rcpts = std::move(rcpts);
        t.size = body.size();
        t.eightbit = has_8bit(body);
        auto wire = std::make_shared<std::string>();
        append_dot_stuffed(*wire, body);
        t.wire = std::move(wire);
        cb(true, std::move(t));
    });
}

EventPeer QueueManager::peer_of(const ReadyQueue* rq, const ConnInfo* info) const {
    EventPeer p;
    if (rq) {
        p.ready_queue = rq->key();
        p.source = rq->route().source;
        p.site = rq->route().site;
    }
    if (info && !(info->endpoint.ip == IpAddr{})) {
        p.mx_host = info->endpoint.mx_host;
        p.mx_ip = info->endpoint.ip.str();
        p.egress_ip = info->local_ip;
        p.tls_version = info->tls_version;
        p.tls_cipher = info->tls_cipher;
        p.tls_verified = info->tls_verified;
    }
    return p;
}

void QueueManager::outcome(std::unique_ptr<Delivery> d, const TxnOutcome& out, const ReadyQueue& rq,
                           const ConnInfo& info) {
    outcome_.transaction(std::move(d), out, peer_of(&rq, &info));
}

void QueueManager::defer_all(std::unique_ptr<Delivery> d, const SmtpReply& why,
                             const ReadyQueue* rq) {
    outcome_.not_sent(std::move(d), why, OutcomeKind::connect, peer_of(rq, nullptr));
}

void QueueManager::retry(std::unique_ptr<Delivery> d, const std::string& why) {
    sched_reasons_[scheduled_queue(*d->msg, d->domain)] = why;
    schedule(std::move(d));
}

void QueueManager::sweep() {
    ctx_.events.flush();
    int64_t now = now_ms();
    for (auto it = temp_limits_.begin(); it != temp_limits_.end();) {
        if (it->second.until_ms > now) {
            ++it;
            continue;
        }
        std::string key = it->first;
        it = temp_limits_.erase(it);
        log::info("queue: {}: temporary limits ended", key);
        if (auto rq = ready_.find(key); rq != ready_.end()) refresh_limits(*rq->second);
    }
    if (++sweep_tick_ % 10 != 0 || ctx_.shutting_down) return;
    for (auto& [key, rq] : ready_)
        for (auto& d : rq->take_expired(now, ctx_.cfg().max_age_ms)) {
            if (d->msg->cancelled) {
                outcome_.part_done(d->msg);
                continue;
            }
            outcome_.expire(std::move(d), peer_of(rq.get(), nullptr));
        }
    for (auto it = tls_failures_.begin(); it != tls_failures_.end();)
        it = it->second <= now ? tls_failures_.erase(it) : std::next(it);
}

bool QueueManager::may_connect() const {
    return !ctx_.shutting_down && conns_ < ctx_.cfg().concurrency_max;
}

bool QueueManager::tls_failed_recently(const std::string& host) const {
    auto it = tls_failures_.find(host);
    return it != tls_failures_.end() && it->second > now_ms();
}

void QueueManager::remember_tls_failure(const std::string& host) {
    if (ctx_.cfg().tls_failure_memory_s <= 0) return;
    tls_failures_[host] = now_ms() + int64_t(ctx_.cfg().tls_failure_memory_s) * 1000;
    log::info("outbound: STARTTLS with {} failed; plaintext for the next {} s", host,
              ctx_.cfg().tls_failure_memory_s);
}

void QueueManager::shutdown() {
    ctx_.shutting_down = true;
    uv_timer_stop(due_timer_.get());
    for (auto& [k, rq] : ready_) rq->close_all();
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
    for (auto& [k, rq] : ready_)
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
            routes_.clear();
        else
            routes_.erase(dom);
        for (auto& [k, rq] : ready_) rq->clear_backoff();
        arm_timer();
        return fmt::format("ok: {} deliveries due now", n);
    }
    if (cmd == "suspend" || cmd == "resume") {
        if (arg.empty()) return "error: " + cmd + " needs a domain or rq:<ready queue>";
        if (arg.rfind("rq:", 0) == 0) {
            auto it = ready_.find(arg.substr(3));
            if (it == ready_.end()) return "error: no ready queue " + arg.substr(3);
            if (cmd == "suspend")
                it->second->suspend(rest.empty() ? "suspended by the operator" : rest);
            else
                it->second->resume();
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
    s.connections = uint64_t(conns_);
    s.ready = s.in_flight = 0;
    for (const auto& [k, rq] : ready_) {
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
    for (const auto& [key, rq] : ready_) {
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
