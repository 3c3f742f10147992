// A ready queue: deliveries that are due and routed (router.h), waiting for a connection to
// one destination site from one egress source, with the pool of SMTP connections serving
// it. Its limits (connections, messages per connection, message rate, recipients per
// transaction, idle time) are a QueueLimits value, so who set them can be shown.
//
// A delivery leaves the queue one way: its owner turns it into a transaction (prepare),
// a connection sends it, and the result goes to the owner (sent, or not_sent when no
// transaction could run), which hands it to the outcome stage (outcome.h). The queue knows
// its owner only through ReadyQueueOwner below.
//
// A connection that opens takes the oldest delivery; when it finishes, the next one, until
// max_messages_per_connection, then QUIT; with nothing to do it idles for idle_timeout.
// If a connection cannot be opened at all while no other connection of the queue works,
// the deliveries waiting here are deferred (the destination is unreachable), and so is
// anything that arrives in the next 10 s, so a dead site costs neither connection attempts
// nor memory beyond the scheduled queue's metadata.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/classify/classification.h"
#include "core/queue/delivery_queue.h"
#include "core/queue/events.h"
#include "core/queue/queue_limits.h"
#include "core/queue/queued_message.h"
#include "core/queue/route.h"
#include "core/smtp/client/smtp_client.h"
#include "core/util/uv_handle.h"

namespace kasi {

class ReadyQueue;

// What a ready queue needs from whoever owns it (ready_queues.h): the settings a connection
// starts from, the cap on connections of all queues together, the memory of failed
// STARTTLS, and where a delivery goes before (prepare) and after (sent, not_sent) its
// transaction.
class ReadyQueueOwner {
  public:
    virtual uv_loop_t* loop() = 0;
    virtual const ClientTimeouts& timeouts() const = 0;
    virtual SSL_CTX* tls_ctx() const = 0;  // the outbound TLS client context
    virtual bool may_connect() const = 0;
    virtual void connection_opened() = 0;
    virtual void connection_closed() = 0;
    virtual bool tls_failed_recently(const std::string& host) const = 0;
    virtual void remember_tls_failure(const std::string& host) = 0;
    // The transaction for `d` (its body read from the spool); cb(false, {}) if unreadable.
    virtual void prepare(Delivery& d, std::function<void(bool ok, OutTxn)> cb) = 0;
    // A transaction ran on a connection described by `info`.
    virtual void sent(std::unique_ptr<Delivery> d, const TxnOutcome& out, const ReadyQueue& rq,
                      const ConnInfo& info) = 0;
    // No transaction could run: every recipient gets `why`.
    virtual void not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                          const ReadyQueue& rq) = 0;
    // A connection was refused before any transaction (a 4xx/5xx greeting or EHLO reply)
    // while the queue goes on (the deliveries stay): for the automation rules.
    virtual void refused(const ReadyQueue& rq, const SmtpReply& why) = 0;

  protected:
    ~ReadyQueueOwner() = default;
};

class ReadyQueue {
  public:
    ReadyQueue(ReadyQueueOwner& owner, std::string key, Route route, QueueLimits limits);
    ~ReadyQueue();
    ReadyQueue(const ReadyQueue&) = delete;
    ReadyQueue& operator=(const ReadyQueue&) = delete;

    void push(std::unique_ptr<Delivery> d);
    void pump();
    void close_all();  // QUIT idle connections, abort the others (shutdown)
    // Takes out deliveries that waited past their message's expiry (for the sweeper).
    std::vector<std::unique_ptr<Delivery>> take_expired(int64_t now, int64_t max_age_ms);
    // Takes out the waiting deliveries `pred` selects (an operator's delete or bounce).
    std::vector<std::unique_ptr<Delivery>> take_if(
        const std::function<bool(const Delivery&)>& pred);
    // A suspended queue opens no connections; what waits stays until it is resumed.
    void suspend(std::string reason) { suspended_ = std::move(reason); }
    void resume() {
        suspended_.clear();
        down_until_ms_ = 0;
        pump();
    }
    void clear_backoff() { down_until_ms_ = 0; }
    bool backing_off(int64_t now_ms) const { return down_until_ms_ > now_ms; }
    const std::string& suspended() const { return suspended_; }

    const std::string& key() const { return key_; }
    const Route& route() const { return route_; }
    const QueueLimits& limits() const { return limits_; }
    // New limits apply at once (a lower connection cap lets busy connections finish).
    void set_limits(QueueLimits l);
    // The domain the queue was created for: limits are looked up again with it at reload.
    const std::string& first_domain() const { return first_domain_; }
    void set_first_domain(std::string d) { first_domain_ = std::move(d); }
    size_t waiting() const { return q_.size(); }
    size_t connections() const { return conns_.size(); }
    size_t in_flight() const {
        size_t n = 0;
        for (const auto& c : conns_) n += c.inflight != nullptr;
        return n;
    }
    const std::string& last_error() const { return last_error_; }
    bool idle() const { return q_.empty() && conns_.empty(); }
    // Where an attempt from this queue went, for events (`info`: the connection, if any).
    EventPeer peer(const ConnInfo* info = nullptr) const;

  private:
    struct Conn {
        std::shared_ptr<SmtpClient> client;
        std::unique_ptr<Delivery> inflight;
        int sent = 0;
        bool ready = false;
        bool loading = false;   // body being read for `inflight`
        bool quitting = false;  // closed to honour lowered limits
        UvHandle<uv_timer_t> idle_timer;
    };
    using ConnIt = std::list<Conn>::iterator;

    void open_connection();
    void kick();
    void on_ready(Conn* c);
    void assign(Conn* c);
    void on_done(Conn* c, TxnOutcome out);
    void on_closed(Conn* c, const std::string& why, bool before_ready, bool tls_failed);
    void go_idle(Conn* c);
    bool take_token();
    ConnIt find(Conn* c);

    ReadyQueueOwner& owner_;
    std::string key_;
    Route route_;
    QueueLimits limits_;
    std::string first_domain_;
    DeliveryQueue q_;  // by engagement priority (delivery_queue.h)
    std::list<Conn> conns_;
    size_t connecting_ = 0;
    std::string last_error_;
    std::string suspended_;  // the operator's reason; empty = running
    // After a site could not be reached at all, deliveries arriving within the next
    // site_backoff_ms are deferred at once with the same error instead of each trying to
    // connect again (Postfix's dead-destination rule).
    int64_t down_until_ms_ = 0;
    // A connection refused while others work (the site's cap for us): no more connections
    // than those that work until refused_until_ms_ (refusal_hold_ms, doubling while it
    // goes on), instead of reconnecting at once and for ever.
    size_t refused_cap_ = 0;
    int64_t refused_until_ms_ = 0, refusal_hold_ms_ = 0;
    size_t max_conns(int64_t now) const;
    SmtpReply down_reply_;
    OutcomeKind down_kind_ = OutcomeKind::connect;
    static constexpr int64_t site_backoff_ms = 10000;
    // message rate: a token bucket
    double tokens_ = 0;
    int64_t tokens_at_ms_ = 0;
    UvHandle<uv_timer_t> rate_timer_;
    bool rate_timer_armed_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kasi
