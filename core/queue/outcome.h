// The outcome stage: where each recipient's verdict is made. It takes one attempt's result
// (a transaction's replies from the ready queue, or a failure that came before any reply:
// connection, DNS, TLS, a policy's refusal, expiry, an operator) and, per recipient:
//
//   1. classify     each reply or failure -> a Classification (reason, class, hard, scope,
//                   provider: the rules of core/classify/classifier.h) and a Verdict
//                   (delivered | defer | bounce: 2xx, 5xx, anything else defers)
//                                                                     judge(), verdict.h
//      the hook     classify_response may change both for a recipient that did not get a
//                   2xx (never a failure into a delivery)              ask_classify_hook()
//   2. delivered    recorded; event Delivery; the delivered hook
//   3. bounce       recorded; event Bounce (or Expiration)
//   4. defer        retried after temp_fail_intervals[attempt-1] (or the hook's delay; the
//                   deferred hook may change when, or drop them), or failed once the
//                   intervals or max_age run out; event TransientFailure; a delay warning
//                   when it is time
//
// Every change goes to the journal. When the last part of a message is done and some
// recipients failed, the bounce hook runs, then the DSN writer (dsn_writer.h) sends the
// DSN; otherwise the message leaves the queue here. Deferred recipients go back to the
// scheduler through RetrySink, the only way this stage reaches back up the pipeline.
// Outcomes are counted per (provider, egress source, class, reason) for the metrics
// (queue_metrics.cpp), and the last classified errors of each queue are kept for the
// queue summary (kasictl queue).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/classify/classification.h"
#include "core/queue/delivery_context.h"
#include "core/queue/verdict.h"
#include "core/smtp/client/smtp_client.h"

namespace kasi {

class DsnWriter;
class ShapingEngine;

// Where deferred recipients go for a later attempt (their due time is set). Declared here,
// implemented by the scheduler. `why` is the reply line that deferred them (the summary
// shows it per scheduled queue).
class RetrySink {
  public:
    virtual void retry(std::unique_ptr<Delivery> d, const std::string& why) = 0;

  protected:
    ~RetrySink() = default;
};

// A recent classified error of a queue (the queue summary).
struct RecentError {
    int64_t time_ms = 0;
    Verdict verdict = Verdict::defer;
    std::string reason, cls, reply;
    uint64_t count = 0;  // how often this (verdict, reason, class) came, while it was recent
};

// A reply Kasi makes up itself (no server said it): a routing error, a policy's refusal.
SmtpReply local_reply(int code, std::string enhanced, std::string text);

class Outcome {
  public:
    Outcome(DeliveryContext& ctx, RetrySink& retry, DsnWriter& dsn)
        : ctx_(ctx), retry_(retry), dsn_(dsn) {}

    // A transaction ran: one reply per recipient of `d` (and the command each answered).
    void transaction(std::unique_ptr<Delivery> d, const TxnOutcome& out, const EventPeer& peer);
    // No transaction ran (the site could not be reached, no route, a policy refused):
    // every recipient gets `why`; `kind` says what failed.
    void not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                  const EventPeer& peer);
    // The message waited past max_age: its recipients expire (no attempt is counted).
    void expire(std::unique_ptr<Delivery> d, const EventPeer& peer);
    // An operator removed these recipients: bounced (a DSN follows) or deleted (none).
    void drop(std::unique_ptr<Delivery> d, bool bounce);
    // One part of a message ends without an attempt (it was cancelled, or every recipient
    // already had its outcome before a restart); the last part ends the message.
    void part_done(const std::shared_ptr<QueuedMessage>& m);

    // Recipients per (provider, egress source, class, reason), counted by outcome; bounded.
    enum Counter { delivered_n, deferred_n, bounced_n, expired_n };
    struct CountKey {
        std::string provider, source, cls, reason;
        auto operator<=>(const CountKey&) const = default;
    };
    using Counts = std::map<CountKey, std::array<uint64_t, 4>>;
    const Counts& counts() const { return counts_; }
    // The last few distinct classified errors of each scheduled queue, newest first.
    using Recent = std::map<std::string, std::deque<RecentError>>;
    const Recent& recent_errors() const { return recent_; }
    // The automation rules' engine every outcome feeds (null: none).
    void set_shaping(ShapingEngine* e) { shaping_ = e; }

  private:
    struct Sorted;
    // The steps of one attempt, in order.
    void apply(std::unique_ptr<Delivery> d, const std::vector<SmtpReply>& replies, OutcomeKind kind,
               const std::vector<std::string_view>& commands, const EventPeer& peer);
    void ask_classify_hook(std::unique_ptr<Delivery> d, std::vector<SmtpReply> replies,
                           std::vector<Judgement> js, const EventPeer& peer);
    void decide(std::unique_ptr<Delivery> d, const std::vector<SmtpReply>& replies,
                const std::vector<Judgement>& js, const EventPeer& peer);
    Sorted sort(Delivery& d, const std::vector<SmtpReply>& replies,
                const std::vector<Judgement>& js);
    void delivered(const Delivery& d, const Sorted& s, const EventPeer& peer, int64_t now);
    void settle(std::unique_ptr<Delivery> d, const Sorted& s);
    void retry_or_give_up(std::unique_ptr<Delivery> d, Sorted s, const EventPeer& peer,
                          int64_t now);
    void ask_deferred_hook(std::unique_ptr<Delivery> d, Sorted s, const EventPeer& peer,
                           int64_t now, int64_t next);
    void requeue(std::unique_ptr<Delivery> d, const Sorted& s, const EventPeer& peer, int64_t next);

    void fail_rcpts(Delivery& d, const std::vector<uint32_t>& idx,
                    const std::vector<SmtpReply>& replies, const std::vector<Classification>& cls,
                    const char* type, const EventPeer& peer);
    // A failure Kasi decides itself (expiry, an operator, a hook's drop): the rules read it
    // as an outcome of kind local.
    Classification local_class(const SmtpReply& r, const Delivery& d, const EventPeer& peer) const;
    // The end of a message: the bounce hook and a DSN when recipients failed.
    void finish(const std::shared_ptr<QueuedMessage>& m);
    void send_dsn(const std::shared_ptr<QueuedMessage>& m);
    void finish_without_dsn(const std::shared_ptr<QueuedMessage>& m);
    // The metrics' counts, and the reputation matrix (outcomes a provider gave).
    void count(const QueuedMessage& m, const EventPeer& peer, const Classification& cls, Counter c,
               const SmtpReply* reply = nullptr);
    static TenantBreaker::Outcome breaker_outcome(const Classification& c, Counter n);
    void feed_shaping(std::string_view source, std::string_view domain, std::string_view provider,
                      const Classification& c, Counter n, const SmtpReply* reply);
    void remember(const std::string& queue, Verdict v, const Classification& c, const SmtpReply& r,
                  int64_t now);

    DeliveryContext& ctx_;
    RetrySink& retry_;
    DsnWriter& dsn_;
    Counts counts_;
    Recent recent_;
    ShapingEngine* shaping_ = nullptr;
};

}  // namespace kasi
