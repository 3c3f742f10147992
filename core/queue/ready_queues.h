// The ready queues of one delivery loop, one per (egress source, destination site) and
// kind of connection (route.h queue_key), made when a routed delivery first needs one.
// The router (router.h) places deliveries here; each queue's connections send them; the
// results go on to the outcome stage (outcome.h). This is every ready queue's owner
// (ReadyQueueOwner): it builds each transaction (txn_loader.h), caps the connections of
// all queues together (outbound.ini concurrency_max), and remembers failed STARTTLS per
// host (tls_memory.h).
//
// A queue's limits are the configuration's for its site, source and first domain
// (outbound.ini), then the queue_limits hook's answer if a plugin has one (the queue opens
// no connection until an asynchronous hook answers), then a temporary override from a
// policy (kasi.queue.set_limits) while it lasts, then what the automation rules have in
// force for the queue's (source, provider) (core/shaping/shaping_engine.h: a cut rate or
// connection cap, a suspension; the queue's limits then name the rule). They are worked
// out again at a reload and whenever the rules' effect on the pair changes.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "core/queue/delivery_context.h"
#include "core/queue/ready_queue.h"
#include "core/queue/tls_memory.h"
#include "core/shaping/shaping_engine.h"

namespace kasi {

class Outcome;

class ReadyQueues : public ReadyQueueOwner, public ShapingTarget {
  public:
    ReadyQueues(DeliveryContext& ctx, Outcome& outcome) : ctx_(ctx), outcome_(outcome) {}
    ~ReadyQueues() { clear(); }
    ReadyQueues(const ReadyQueues&) = delete;
    ReadyQueues& operator=(const ReadyQueues&) = delete;

    // Puts a routed delivery in the queue of `route` from egress source `src` (null: the
    // route's own), as one transaction per max_recipients recipients (one per recipient
    // for a message with a VERP return path).
    void place(std::unique_ptr<Delivery> d, const Route& route, const EgressSource* src);

    using Map = std::map<std::string, std::unique_ptr<ReadyQueue>>;
    const Map& all() const { return ready_; }
    ReadyQueue* find(const std::string& key);

    // Overrides some limits of queue `key` for `seconds`; false if there is no such queue.
    bool set_temporary_limits(const std::string& key, const LimitOverride& o, int64_t seconds);
    // The overrides whose time is up end (the sweep, every second).
    void end_temporary_limits(int64_t now_ms);
    // The automation rules' engine the queues apply (null: none); the outcome stage feeds it.
    void set_shaping(ShapingEngine* e) { shaping_ = e; }
    // The provider of a route's destination (the classifier's table, by its first MX host;
    // "other" when it names none), as outcomes are counted.
    std::string provider_of(const Route& r) const;
    void refresh_all_limits();  // a reload
    void forget_tls_failures(int64_t now_ms) { tls_failures_.forget_expired(now_ms); }
    void close_all();  // shutdown: QUIT idle connections, abort the others
    void clear() { ready_.clear(); }
    int connections() const { return conns_; }

    // ReadyQueueOwner
    uv_loop_t* loop() override { return ctx_.loop; }
    const ClientTimeouts& timeouts() const override { return ctx_.cfg().timeouts; }
    SSL_CTX* tls_ctx() const override { return ctx_.settings.tls_ctx; }
    bool may_connect() const override;
    void connection_opened() override { ++conns_; }
    void connection_closed() override { --conns_; }
    bool tls_failed_recently(const std::string& host) const override;
    void remember_tls_failure(const std::string& host) override;
    void prepare(Delivery& d, std::function<void(bool ok, OutTxn)> cb) override;
    void sent(std::unique_ptr<Delivery> d, const TxnOutcome& out, const ReadyQueue& rq,
              const ConnInfo& info) override;
    void not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                  const ReadyQueue& rq) override;
    void refused(const ReadyQueue& rq, const SmtpReply& why) override;

    // ShapingTarget
    void shaping_changed(const std::string& source, const std::string& provider) override;
    // The queues whose (source, provider) the rules changed get their limits again (the
    // sweep, every second).
    void apply_shaping_changes();

  private:
    ReadyQueue& create(const Route& r, const std::string& domain);
    void refresh_limits(ReadyQueue& rq);
    void ask_queue_limits(ReadyQueue& rq, const QueueLimits& configured);
    // `l` with the temporary override and the automation rules' effect on top.
    QueueLimits final_limits(const ReadyQueue& rq, QueueLimits l) const;
    const EgressSource* pool_for_shaping(const Route& route, const EgressSource* src);

    struct TempLimits {
        LimitOverride o;
        int64_t until_ms;
    };

    DeliveryContext& ctx_;
    Outcome& outcome_;
    Map ready_;
    std::unordered_map<std::string, TempLimits> temp_limits_;  // queue key -> override
    TlsFailureMemory tls_failures_;
    ShapingEngine* shaping_ = nullptr;
    std::set<std::pair<std::string, std::string>> shaping_pending_;  // (source, provider)
    uint64_t pool_ticket_ = 0;
    int conns_ = 0;
};

}  // namespace kasi
