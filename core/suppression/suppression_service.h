// The suppression list at work: the embedded store (suppression_store.h) and the policy of
// suppression.ini (suppression_policy.h), with everything Kasi does with them.
//
//   who adds                       how                             durable before
//   a report (async bounce,        report transport: plan, the     the report leaves the
//   complaint, opt-out)            inbound_report hook, add()      spool
//   a hard bounce while delivering the outcome stage: add_later()  shortly after (the
//   (and soft bounces, counted)                                    service's own thread)
//   kasictl / the admin API        add(), remove()                 the reply
//
//   who checks                     with which scopes
//   the SMTP session, at RCPT      global, domain:<MAIL FROM domain>    (RecipientGate)
//   the router, before delivery    global, tenant:<T>, domain:<sending domain>
//
// A refusal writes a `Suppressed` event (through the sink given at start). Soft bounces are
// counted per address (soft_bounce_counts.h), saved every few seconds and at stop. Lookups are O(1)
// and take a shared lock only; adds share fdatasyncs (group commit).
//
// With suppression.ini [postgres] dsn, the list is shared between nodes: every change of
// the store passes through the outbox first and the replica thread pushes and pulls
// (suppression_replica.h); everything above works as without it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/classify/classification.h"
#include "core/smtp/server/session.h"
#include "core/suppression/soft_bounce_counts.h"
#include "core/suppression/suppression_policy.h"
#include "core/suppression/suppression_replica.h"
#include "core/suppression/suppression_store.h"

namespace kasi {

struct ReportOutcome;
class SuppressionOutbox;

class SuppressionService final : public RecipientGate {
  public:
    using EventSink = std::function<void(std::string json)>;

    // Null with `err` when the store cannot be opened.
    static std::unique_ptr<SuppressionService> open(std::shared_ptr<const SuppressionPolicy> p,
                                                    EventSink events, std::string& err);
    ~SuppressionService();

    void set_policy(std::shared_ptr<const SuppressionPolicy> p);
    std::shared_ptr<const SuppressionPolicy> policy() const;
    SuppressionStore& store() { return *store_; }

    // RecipientGate: at RCPT.
    std::string refusal(std::string_view rcpt, std::string_view sender_domain,
                        std::string_view client_ip) override;
    // Before delivery: the entry that stops `rcpt` of a message, if any.
    std::optional<SuppressionEntry> check(std::string_view rcpt, const std::string& tenant,
                                          const std::string& sending_domain) const;
    // The Suppressed event of a recipient stopped before delivery.
    void stopped(const std::string& message_id, const std::string& rcpt, const SuppressionEntry& e,
                 const char* where);

    // What the policy adds for each match of a report (complaints, hard bounces, soft ones
    // over the threshold): one slot per match of `out`, empty for none. Counts the soft
    // bounces (any thread). Nothing is added yet: the inbound_report hook may change the
    // plan, then add() makes it durable.
    std::vector<std::optional<SuppressionEntry>> plan_for_report(const ReportOutcome& out,
                                                                 const std::string& report_id);
    // Adds entries durably (blocks on fdatasync: call it off the loops), logging each with
    // `why`; false with `err` if the store refused.
    bool add(const std::vector<SuppressionEntry>& entries, const std::string& why,
             std::string& err);
    // An entry for `rcpt` as the policy makes them (normalized address, event cut to 64
    // bytes, the policy's lifetime for `r` when `ttl_s` is not given).
    SuppressionEntry entry(const std::string& rcpt, const std::string& scope, SuppressionReason r,
                           const std::string& event, int64_t now,
                           std::optional<int64_t> ttl_s = std::nullopt) const;
    // A bounce while delivering (any thread): added by the service's thread.
    void bounced(const std::string& rcpt, const Classification& c, const std::string& tenant,
                 const std::string& sending_domain, const std::string& message_id);
    // A one-click unsubscribe, added durably before it returns (call it off the loops);
    // true also when the policy does not suppress unsubscribes.
    bool unsubscribe_now(const std::string& rcpt, const std::string& tenant,
                         const std::string& event, std::string& err);

    uint64_t refusals() const { return refusals_.load(); }
    uint64_t count(SuppressionReason r) const { return store_->count(r); }
    // Sharing through PostgreSQL: its state, or none when [postgres] is not configured.
    std::optional<SuppressionReplicaStatus> sharing() const;

  private:
    SuppressionService() = default;
    std::optional<SuppressionEntry> soft_bounce(const std::string& rcpt, const std::string& scope,
                                                const std::string& event, int64_t now);
    void add_later(std::vector<SuppressionEntry> e);
    void save_soft_counts();
    void run();
    bool share(const SuppressionPolicy& p, std::string& err);

    std::unique_ptr<SuppressionOutbox> outbox_;  // before store_: the store's hook writes it
    std::unique_ptr<SuppressionStore> store_;
    EventSink events_;
    mutable std::mutex mu_;  // policy_, queue_
    std::shared_ptr<const SuppressionPolicy> policy_;
    SoftBounceCounts soft_;
    std::string soft_path_;  // where soft_ is saved
    static constexpr int soft_save_interval_s = 5;
    std::deque<std::vector<SuppressionEntry>> queue_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
    std::atomic<uint64_t> refusals_{0};
    std::unique_ptr<SuppressionReplica> replica_;  // last: stopped first
};

}  // namespace kasi
