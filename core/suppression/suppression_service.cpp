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
    std::vector<std::string> scopes;
    if (!sender_domain.empty()) scopes.push_back("domain:" + to_lower(sender_domain));
    auto e = store_->check(rcpt, scopes, now_s());
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
    std::vector<std::string> scopes;
    if (!tenant.empty()) scopes.push_back("tenant:" + tenant);
    if (!sending_domain.empty()) scopes.push_back("domain:" + to_lower(sending_domain));
    return store_->check(rcpt, scopes, now_s());
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
                                           int64_t now) const {
    SuppressionEntry e;
    e.address = normalize_address(rcpt);
    e.scope = scope;
    e.reason = r;
    e.event = event.substr(0, 64);
    e.created = now;
    int64_t ttl = policy()->ttl_for(r);
    e.expires = ttl ? now + ttl : 0;
    return e;
}

// The soft bounce that reaches the threshold within the window becomes an entry.
std::optional<SuppressionEntry> SuppressionService::soft_bounce(const std::string& rcpt,
                                                                const std::string& scope,
                                                                const std::string& event,
                                                                int64_t now) {
    auto p = policy();
    if (p->soft_bounce_threshold <= 0) return std::nullopt;
    std::lock_guard lk(mu_);
    auto& times = soft_[normalize_address(rcpt)];
    times.push_back(now);
    while (!times.empty() && times.front() < now - p->soft_bounce_window_s) times.pop_front();
    if (int(times.size()) < p->soft_bounce_threshold) {
        if (soft_.size() > 1000000) soft_.clear();  // bounded: forget rather than grow
        return std::nullopt;
    }
    soft_.erase(normalize_address(rcpt));
    SuppressionEntry e;
    e.address = normalize_address(rcpt);
    e.scope = scope;
    e.reason = SuppressionReason::soft_bounce;
    e.event = event.substr(0, 64);
    e.created = now;
    e.expires = p->soft_bounce_ttl_s ? now + p->soft_bounce_ttl_s : 0;
    return e;
}

bool SuppressionService::add_for_report(const ReportOutcome& out, const std::string& report_id,
                                        std::string& err) {
    auto p = policy();
    int64_t now = now_s();
    std::vector<SuppressionEntry> add;
    for (const auto& m : out.matches) {
        if (m.recipient.empty() || m.recipient.find('@') == std::string::npos) continue;
        std::string scope = p->scope_for(m.tenant, m.sending_domain);
        if (out.kind == ReportOutcome::Kind::complaint) {
            if (m.feedback_type == "not-spam") continue;
            bool opt_out = m.feedback_type == "opt-out" || m.feedback_type == "unsubscribe";
            if (opt_out ? p->unsubscribe : p->complaint)
                add.push_back(
                    entry(m.recipient, scope,
                          opt_out ? SuppressionReason::unsubscribe : SuppressionReason::complaint,
                          report_id, now));
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
                add.push_back(
                    entry(m.recipient, scope, SuppressionReason::hard_bounce, report_id, now));
        } else if (auto e = soft_bounce(m.recipient, scope, report_id, now)) {
            add.push_back(*e);
        }
    }
    if (add.empty()) return true;
    if (!store_->add(add, err)) return false;
    for (const auto& e : add)
        log::notice("suppression: {} added ({}, scope '{}', report {})", e.address,
                    reason_name(e.reason), e.scope, report_id);
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
        cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
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
