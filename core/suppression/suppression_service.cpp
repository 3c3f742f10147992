#include "core/suppression/suppression_service.h"

#include <fmt/format.h>

#include "core/feedback/report_reader.h"
#include "core/log/log.h"
#include "core/suppression/suppression_outbox.h"
#include "core/util/clock.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

int64_t now_s() {
    return now_ms() / 1000;
}

std::string date_of(int64_t s) {
    return rfc5322_date(s);
}

}  // namespace

std::unique_ptr<SuppressionService> SuppressionService::open(
    std::shared_ptr<const SuppressionPolicy> p, EventSink events, std::string& err) {
    std::unique_ptr<SuppressionService> s(new SuppressionService());
    s->store_ = SuppressionStore::open(p->dir, err);
    if (!s->store_) return nullptr;
    if (!p->pg_dsn.empty() && !s->share(*p, err)) return nullptr;
    s->soft_path_ = p->dir + "/soft-bounces.tsv";
    if (!s->soft_.load(s->soft_path_, err)) log::warn("suppression: soft bounce counts: {}", err);
    err.clear();
    s->policy_ = std::move(p);
    s->events_ = std::move(events);
    s->thread_ = std::thread([raw = s.get()] { raw->run(); });
    return s;
}

SuppressionService::~SuppressionService() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    save_soft_counts();
}

// The outbox in front of the store, and the thread that talks to PostgreSQL.
bool SuppressionService::share(const SuppressionPolicy& p, std::string& err) {
    outbox_ = SuppressionOutbox::open(p.dir, err);
    if (!outbox_) {
        err = "the PostgreSQL outbox: " + err;
        return false;
    }
    SuppressionReplicaOptions o;
    o.dsn = p.pg_dsn;
    o.poll_ms = p.pg_poll_ms;
    replica_ = std::make_unique<SuppressionReplica>(*store_, *outbox_, p.dir, o);
    store_->set_before_write([this](const std::vector<JournalRecord>& c, std::string& e) {
        if (!outbox_->append(c, e)) return false;
        replica_->wake();
        return true;
    });
    return true;
}

std::optional<SuppressionReplicaStatus> SuppressionService::sharing() const {
    if (!replica_) return std::nullopt;
    return replica_->status();
}

void SuppressionService::set_policy(std::shared_ptr<const SuppressionPolicy> p) {
    std::lock_guard lk(mu_);
    policy_ = std::move(p);
}

std::shared_ptr<const SuppressionPolicy> SuppressionService::policy() const {
    std::lock_guard lk(mu_);
    return policy_;
}

std::string SuppressionService::refusal(std::string_view rcpt, std::string_view sender_domain,
                                        std::string_view client_ip) {
    auto p = policy();
    if (!p->refuse_at_rcpt) return {};
    SuppressionScopeName domain("domain:", sender_domain, true);  // no heap: once per RCPT
    std::string_view scopes[1];
    size_t n = 0;
    if (!sender_domain.empty() && domain.fits()) scopes[n++] = domain.view();
    auto e = store_->check(rcpt, std::span<const std::string_view>(scopes, n), now_s());
    if (!e) return {};
    ++refusals_;
    JsonObject o;
    o.str("type", "Suppressed").num("time_ms", now_ms()).str("recipient", e->address);
    o.str("scope", e->scope).str("reason", reason_name(e->reason)).str("where", "rcpt");
    o.str("client_ip", client_ip).str("cause", e->event).num("since", e->created);
    if (events_) events_(o.done());
    return fmt::format("is suppressed ({} since {})", reason_name(e->reason), date_of(e->created));
}

std::optional<SuppressionEntry> SuppressionService::check(std::string_view rcpt,
                                                          const std::string& tenant,
                                                          const std::string& sending_domain) const {
    SuppressionScopeName t("tenant:", tenant, false), d("domain:", sending_domain, true);
    std::string_view scopes[2];
    size_t n = 0;
    if (!tenant.empty() && t.fits()) scopes[n++] = t.view();
    if (!sending_domain.empty() && d.fits()) scopes[n++] = d.view();
    return store_->check(rcpt, std::span<const std::string_view>(scopes, n), now_s());
}

void SuppressionService::stopped(const std::string& message_id, const std::string& rcpt,
                                 const SuppressionEntry& e, const char* where) {
    ++refusals_;
    JsonObject o;
    o.str("type", "Suppressed").num("time_ms", now_ms()).str("id", message_id);
    o.str("recipient", rcpt).str("scope", e.scope).str("reason", reason_name(e.reason));
    o.str("where", where).str("cause", e.event).num("since", e.created);
    if (events_) events_(o.done());
}

SuppressionEntry SuppressionService::entry(const std::string& rcpt, const std::string& scope,
                                           SuppressionReason r, const std::string& event,
                                           int64_t now, std::optional<int64_t> ttl_s) const {
    SuppressionEntry e;
    e.address = normalize_address(rcpt);
    e.scope = scope;
    e.reason = r;
    e.event = event.substr(0, 64);
    e.created = now;
    int64_t ttl = ttl_s ? *ttl_s : policy()->ttl_for(r);
    e.expires = ttl > 0 ? now + ttl : 0;
    return e;
}

// The soft bounce that reaches the threshold within the window becomes an entry.
std::optional<SuppressionEntry> SuppressionService::soft_bounce(const std::string& rcpt,
                                                                const std::string& scope,
                                                                const std::string& event,
                                                                int64_t now) {
    auto p = policy();
    if (!soft_.note(normalize_address(rcpt), now, p->soft_bounce_threshold,
                    p->soft_bounce_window_s))
        return std::nullopt;
    SuppressionEntry e;
    e.address = normalize_address(rcpt);
    e.scope = scope;
    e.reason = SuppressionReason::soft_bounce;
    e.event = event.substr(0, 64);
    e.created = now;
    e.expires = p->soft_bounce_ttl_s ? now + p->soft_bounce_ttl_s : 0;
    return e;
}

void SuppressionService::save_soft_counts() {
    std::string err;
    if (!soft_.save(soft_path_, now_s(), policy()->soft_bounce_window_s, err))
        log::warn("suppression: soft bounce counts not saved: {}", err);
}

std::vector<std::optional<SuppressionEntry>> SuppressionService::plan_for_report(
    const ReportOutcome& out, const std::string& report_id) {
    auto p = policy();
    int64_t now = now_s();
    std::vector<std::optional<SuppressionEntry>> plan(out.matches.size());
    for (size_t i = 0; i < out.matches.size(); ++i) {
        const auto& m = out.matches[i];
        if (m.recipient.empty() || m.recipient.find('@') == std::string::npos) continue;
        std::string scope = p->scope_for(m.tenant, m.sending_domain);
        if (out.kind == ReportOutcome::Kind::complaint) {
            if (m.feedback_type == "not-spam") continue;
            bool opt_out = m.feedback_type == "opt-out" || m.feedback_type == "unsubscribe";
            if (opt_out ? p->unsubscribe : p->complaint)
                plan[i] =
                    entry(m.recipient, scope,
                          opt_out ? SuppressionReason::unsubscribe : SuppressionReason::complaint,
                          report_id, now);
            continue;
        }
        if (out.kind != ReportOutcome::Kind::bounce) continue;
        const auto& c = m.bounce.classification;
        if (m.bounce.action == "delivered" || m.bounce.action == "relayed" ||
            m.bounce.action == "expanded")
            continue;
        if (c.scope != Scope::recipient) continue;  // about the sender or the message: not them
        if (c.hard && m.bounce.action != "delayed") {
            if (p->hard_bounce)
                plan[i] = entry(m.recipient, scope, SuppressionReason::hard_bounce, report_id, now);
        } else {
            plan[i] = soft_bounce(m.recipient, scope, report_id, now);
        }
    }
    return plan;
}

bool SuppressionService::add(const std::vector<SuppressionEntry>& entries, const std::string& why,
                             std::string& err) {
    if (entries.empty()) return true;
    if (!store_->add(entries, err)) return false;
    for (const auto& e : entries)
        log::notice("suppression: {} added ({}, scope '{}', {})", e.address, reason_name(e.reason),
                    e.scope, why);
    return true;
}

void SuppressionService::bounced(const std::string& rcpt, const Classification& c,
                                 const std::string& tenant, const std::string& sending_domain,
                                 const std::string& message_id) {
    auto p = policy();
    if (c.scope != Scope::recipient) return;
    std::string scope = p->scope_for(tenant, sending_domain);
    int64_t now = now_s();
    if (c.hard) {
        if (p->hard_bounce)
            add_later({entry(rcpt, scope, SuppressionReason::hard_bounce, message_id, now)});
    } else if (auto e = soft_bounce(rcpt, scope, message_id, now)) {
        add_later({*e});
    }
}

bool SuppressionService::unsubscribe_now(const std::string& rcpt, const std::string& tenant,
                                         const std::string& event, std::string& err) {
    auto p = policy();
    if (!p->unsubscribe) return true;
    std::string scope = p->scope_for(tenant, "");
    return store_->add({entry(rcpt, scope, SuppressionReason::unsubscribe, event, now_s())}, err);
}

void SuppressionService::add_later(std::vector<SuppressionEntry> e) {
    {
        std::lock_guard lk(mu_);
        queue_.push_back(std::move(e));
    }
    cv_.notify_one();
}

void SuppressionService::run() {
    std::unique_lock lk(mu_);
    for (;;) {
        bool woken = cv_.wait_for(lk, std::chrono::seconds(soft_save_interval_s),
                                  [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        if (!woken) {
            lk.unlock();
            save_soft_counts();
            lk.lock();
            continue;
        }
        std::vector<SuppressionEntry> batch;
        while (!queue_.empty() && batch.size() < 4096) {
            for (auto& e : queue_.front()) batch.push_back(std::move(e));
            queue_.pop_front();
        }
        lk.unlock();
        std::string err;
        if (!store_->add(batch, err))
            log::error("suppression: {} entries not added: {}", batch.size(), err);
        else
            for (const auto& e : batch)
                log::notice("suppression: {} added ({}, scope '{}', {})", e.address,
                            reason_name(e.reason), e.scope, e.event);
        lk.lock();
    }
}

}  // namespace kasi
