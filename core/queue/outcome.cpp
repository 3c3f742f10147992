#include "core/queue/outcome.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/metrics/provider.h"
#include "core/queue/dsn.h"
#include "core/queue/dsn_writer.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t max_counted_pairs = 1000;  // (provider, source) pairs, then "other"

std::string reply_line(const SmtpReply& r) {
    return r.enhanced.empty() ? fmt::format("{} {}", r.code, r.text())
                              : fmt::format("{} {} {}", r.code, r.enhanced, r.text());
}

// What the deferred, bounce and delivered hooks are told about an attempt.
OutboundEvent make_event(const QueuedMessage& m, const std::vector<uint32_t>& idx,
                         const SmtpReply& r, const EventPeer& peer) {
    OutboundEvent ev;
    for (uint32_t i : idx) ev.rcpts.push_back(m.rcpts[i].address);
    ev.code = r.code;
    ev.enhanced = r.enhanced;
    ev.text = r.text();
    ev.host = peer.mx_host;
    ev.ip = peer.mx_ip;
    ev.port = 0;
    ev.tls = !peer.tls_version.empty();
    ev.queue = peer.ready_queue;
    return ev;
}

}  // namespace

Verdict verdict_for(const SmtpReply& r) {
    if (r.cls() == 2) return Verdict::delivered;
    if (r.cls() == 5) return Verdict::bounce;
    return Verdict::defer;
}

SmtpReply local_reply(int code, std::string enhanced, std::string text) {
    SmtpReply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.lines.push_back(std::move(text));
    return r;
}

// One attempt's recipients by verdict, each with the reply that decided it.
struct Outcome::Sorted {
    std::vector<uint32_t> changed;  // every recipient of the attempt (for the journal)
    std::vector<uint32_t> delivered, deferred, failed;
    std::vector<const SmtpReply*> delivered_replies;
    std::vector<SmtpReply> deferred_replies, failed_replies;
};

void Outcome::transaction(std::unique_ptr<Delivery> d, const TxnOutcome& out,
                          const EventPeer& peer) {
    apply(std::move(d), out.rcpt, OutcomeKind::reply, peer);
}

void Outcome::not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                       const EventPeer& peer) {
    apply(std::move(d), std::vector<SmtpReply>{why}, kind, peer);  // one reply for all
}

// One attempt: the steps the header lists, in order.
void Outcome::apply(std::unique_ptr<Delivery> d, const std::vector<SmtpReply>& replies,
                    OutcomeKind kind, const EventPeer& peer) {
    int64_t now = now_ms();
    auto& m = *d->msg;
    ++d->attempts;
    m.attempts = std::max(m.attempts, d->attempts);
    // 1. classify
    std::vector<Verdict> verdicts = classify(*d, replies, kind, peer);
    Sorted s = sort(*d, replies, verdicts);
    // 2. delivered
    delivered(*d, s, peer, now);
    // 3. failed
    if (!s.failed.empty()) fail_rcpts(*d, s.failed, s.failed_replies, "Bounce", peer);
    // 4. deferred: retried, or failed after all
    if (s.deferred.empty()) return settle(std::move(d), s);
    retry_or_give_up(std::move(d), std::move(s), peer, now);
}

// Step 1: what each recipient's reply means, in the order of d.rcpts (`replies` has one
// reply per recipient, or one for all). This is the one place a verdict is made: today by
// the reply's class alone (verdict_for); `kind` and `peer` (the MX host) are what a
// classifier needs besides the reply.
std::vector<Verdict> Outcome::classify(const Delivery& d, const std::vector<SmtpReply>& replies,
                                       OutcomeKind, const EventPeer&) const {
    std::vector<Verdict> v;
    v.reserve(d.rcpts.size());
    for (size_t k = 0; k < d.rcpts.size(); ++k)
        v.push_back(verdict_for(k < replies.size() ? replies[k] : replies.back()));
    return v;
}

// Records each recipient's last reply and groups the recipients by verdict.
Outcome::Sorted Outcome::sort(Delivery& d, const std::vector<SmtpReply>& replies,
                              const std::vector<Verdict>& verdicts) {
    Sorted s;
    for (size_t k = 0; k < d.rcpts.size(); ++k) {
        uint32_t i = d.rcpts[k];
        const SmtpReply& r = k < replies.size() ? replies[k] : replies.back();
        d.msg->rcpts[i].last_reply = ctx_.intern(reply_line(r));
        s.changed.push_back(i);
        switch (verdicts[k]) {
            case Verdict::delivered:
                s.delivered.push_back(i);
                s.delivered_replies.push_back(&r);
                break;
            case Verdict::bounce:
                s.failed.push_back(i);
                s.failed_replies.push_back(r);
                break;
            case Verdict::defer:
                s.deferred.push_back(i);
                s.deferred_replies.push_back(r);
                break;
        }
    }
    return s;
}

// Step 2: delivered recipients; the delivered hook runs every plugin, answers ignored.
void Outcome::delivered(const Delivery& d, const Sorted& s, const EventPeer& peer, int64_t now) {
    auto& m = *d.msg;
    if (s.delivered.empty()) return;
    std::string queue = scheduled_queue(m, d.domain);
    for (size_t k = 0; k < s.delivered.size(); ++k) {
        uint32_t i = s.delivered[k];
        m.rcpts[i].status = RcptStatus::delivered;
        ++ctx_.stats.delivered;
        count(peer, d.domain, delivered_n);
        ctx_.events.recipient("Delivery", m, i, queue, peer, *s.delivered_replies[k], d.attempts,
                              now);
    }
    if (!ctx_.hooks.has(Hook::delivered)) return;
    OutboundEvent ev = make_event(m, s.delivered, *s.delivered_replies.front(), peer);
    ev.delay_s = (now - m.received_ms) / 1000;
    ctx_.hooks.run(
        Hook::delivered, d.msg, d.domain, [](Result, OutboundAnswer&) {}, std::move(ev));
}

// Nothing deferred: the attempt's record, and the end of this part of the message.
void Outcome::settle(std::unique_ptr<Delivery> d, const Sorted& s) {
    auto m = d->msg;
    bool last = m->open_parts == 1 && s.failed.empty();
    ctx_.journal.record(*m, true, s.changed, last, 0);
    if (!last) return part_done(m);
    m->open_parts = 0;  // the message is done, its record said so: it leaves the queue
    ctx_.release(*m);
}

// Step 4: deferred recipients are retried, unless the retries ran out or the next one
// would come after max_age.
void Outcome::retry_or_give_up(std::unique_ptr<Delivery> d, Sorted s, const EventPeer& peer,
                               int64_t now) {
    auto m = d->msg;
    const auto& iv = ctx_.cfg().temp_fail_intervals_s;
    bool too_many = size_t(d->attempts) > iv.size();
    int64_t next = too_many ? 0 : now + int64_t(iv[size_t(d->attempts) - 1]) * 1000;
    bool too_old = !too_many && next - m->received_ms >= ctx_.cfg().max_age_ms;
    if (too_many || too_old) {
        std::vector<SmtpReply> rs;
        for (auto& r : s.deferred_replies) {
            SmtpReply f = r;
            f.enhanced = too_old ? "4.4.7" : final_status(r.code, r.enhanced);
            f.lines.insert(f.lines.begin(),
                           too_old ? "delivery time expired:" : "Too many failures:");
            rs.push_back(std::move(f));
        }
        fail_rcpts(*d, s.deferred, rs, too_old ? "Expiration" : "Bounce", peer);
        ctx_.journal.record(*m, true, s.changed, false, 0);
        return part_done(m);
    }
    if (!ctx_.hooks.has(Hook::deferred)) return requeue(std::move(d), s, peer, next);
    ask_deferred_hook(std::move(d), std::move(s), peer, now, next);
}

// deferred (Haraka's semantics): CONT retries as planned; DENYSOFT with a number of seconds
// retries after that long instead; any other answer drops the recipients without a DSN
// (the plugin took care of them).
void Outcome::ask_deferred_hook(std::unique_ptr<Delivery> d, Sorted s, const EventPeer& peer,
                                int64_t now, int64_t next) {
    OutboundEvent ev = make_event(*d->msg, s.deferred, s.deferred_replies.front(), peer);
    ev.delay_s = (next - now) / 1000;
    auto holder = std::make_shared<std::unique_ptr<Delivery>>(std::move(d));
    std::weak_ptr<bool> alive = ctx_.alive;
    const Delivery& ref = **holder;
    auto sorted = std::make_shared<Sorted>(std::move(s));
    ctx_.hooks.run(
        Hook::deferred, ref.msg, ref.domain,
        [this, alive, holder, sorted, peer, next](Result r, OutboundAnswer&) mutable {
            if (!alive.lock()) return;
            auto d = std::move(*holder);
            const Sorted& s = *sorted;
            if (r.code == Code::denysoft) {
                unsigned long long secs = 0;
                if (parse_u64(r.msg, secs) && secs <= 365ull * 86400)
                    next = now_ms() + int64_t(secs) * 1000;
                else
                    log::warn(
                        "queue: {}: deferred hook answered DENYSOFT '{}', not a number "
                        "of seconds; the planned retry stands",
                        d->msg->id, r.msg);
            } else if (r.code != Code::cont) {
                auto m = d->msg;
                log::info("queue: {}: dropped by the deferred hook ({})", m->id,
                          r.msg.empty() ? "no reason given" : r.msg);
                std::vector<SmtpReply> rs(s.deferred.size(),
                                          local_reply(550, "5.0.0",
                                                      "dropped by a deferred hook" +
                                                          (r.msg.empty() ? "" : ": " + r.msg)));
                fail_rcpts(*d, s.deferred, rs, "Bounce", peer);
                for (uint32_t i : s.deferred) m->rcpts[i].deleted = true;
                ctx_.journal.record(*m, true, s.changed, false, 0);
                return part_done(m);
            }
            requeue(std::move(d), s, peer, next);
        },
        std::move(ev));
}

// The deferred recipients go back to the scheduler, due at `next`.
void Outcome::requeue(std::unique_ptr<Delivery> d, const Sorted& s, const EventPeer& peer,
                      int64_t next) {
    auto m = d->msg;
    int64_t now = now_ms();
    std::string queue = scheduled_queue(*m, d->domain);
    for (size_t k = 0; k < s.deferred.size(); ++k) {
        m->rcpts[s.deferred[k]].status = RcptStatus::deferred;
        ++ctx_.stats.deferred;
        count(peer, d->domain, deferred_n);
        ctx_.events.recipient("TransientFailure", *m, s.deferred[k], queue, peer,
                              s.deferred_replies[k], d->attempts, now, next);
    }
    const auto& cfg = ctx_.cfg();
    if (cfg.delay_warning_ms && !m->warned && !m->is_dsn && !m->mail_from.empty() &&
        now - m->received_ms >= cfg.delay_warning_ms)
        dsn_.delay_warning(m, s.deferred);
    ctx_.journal.record(*m, true, s.changed, false, next);
    d->rcpts = s.deferred;
    d->due_ms = next;
    d->ready_since_ms = 0;
    retry_.retry(std::move(d), reply_line(s.deferred_replies.front()));
}

void Outcome::fail_rcpts(Delivery& d, const std::vector<uint32_t>& idx,
                         const std::vector<SmtpReply>& replies, const char* type,
                         const EventPeer& peer) {
    auto& m = *d.msg;
    int64_t now = now_ms();
    std::string queue = scheduled_queue(m, d.domain);
    bool expired = std::string_view(type) == "Expiration";
    for (size_t k = 0; k < idx.size(); ++k) {
        auto& st = m.rcpts[idx[k]];
        st.status = RcptStatus::failed;
        st.last_reply = ctx_.intern(reply_line(replies[k]));
        if (!peer.mx_host.empty()) m.more().failed_mta.emplace_back(idx[k], peer.mx_host);
        ++(expired ? ctx_.stats.expired : ctx_.stats.bounced);
        count(peer, d.domain, expired ? expired_n : bounced_n);
        ctx_.events.recipient(type, m, idx[k], queue, peer, replies[k], d.attempts, now);
    }
}

void Outcome::expire(std::unique_ptr<Delivery> d, const EventPeer& peer) {
    auto m = d->msg;
    std::vector<SmtpReply> rs;
    for (uint32_t i : d->rcpts) {
        const std::string& last = m->rcpts[i].reply();
        rs.push_back(local_reply(
            451, "4.4.7",
            last.empty() ? "delivery time expired" : "delivery time expired; last error: " + last));
    }
    fail_rcpts(*d, d->rcpts, rs, "Expiration", peer);
    ctx_.journal.record(*m, true, d->rcpts, false, 0);
    part_done(m);
}

void Outcome::drop(std::unique_ptr<Delivery> d, bool bounce) {
    auto m = d->msg;
    std::vector<SmtpReply> rs(
        d->rcpts.size(),
        local_reply(550, "5.0.0",
                    bounce ? "bounced by the administrator" : "deleted by the administrator"));
    fail_rcpts(*d, d->rcpts, rs, "Bounce", EventPeer{});
    if (!bounce)
        for (uint32_t i : d->rcpts) m->rcpts[i].deleted = true;
    ctx_.journal.record(*m, true, d->rcpts, false, 0);
    part_done(m);
}

void Outcome::part_done(const std::shared_ptr<QueuedMessage>& m) {
    if (--m->open_parts > 0) return;
    finish(m);
}

// bounce (Haraka's semantics): any answer but CONT means the plugin dealt with the
// failure, and no DSN is sent.
void Outcome::finish(const std::shared_ptr<QueuedMessage>& m) {
    std::vector<uint32_t> failed;
    for (uint32_t i = 0; i < m->rcpts.size(); ++i)
        if (m->rcpts[i].status == RcptStatus::failed && !m->rcpts[i].deleted) failed.push_back(i);
    if (failed.empty() || m->cancelled) return finish_without_dsn(m);
    if (!ctx_.hooks.has(Hook::bounce)) return send_dsn(m);
    const std::string& last = m->rcpts[failed.front()].reply();
    SmtpReply r = local_reply(last.size() >= 3 ? std::atoi(last.substr(0, 3).c_str()) : 550, "",
                              last.size() > 4 ? last.substr(4) : last);
    r.enhanced = std::string(leading_enhanced_code(last.size() > 4 ? last.substr(4) : ""));
    OutboundEvent ev = make_event(*m, failed, r, EventPeer{});
    ev.text = last;
    std::weak_ptr<bool> alive = ctx_.alive;
    ctx_.hooks.run(
        Hook::bounce, m, "",
        [this, alive, m](Result r, OutboundAnswer&) {
            if (!alive.lock()) return;
            if (r.code == Code::cont) return send_dsn(m);
            log::info("queue: {}: no DSN: the bounce hook answered {}{}", m->id, code_name(r.code),
                      r.msg.empty() ? "" : " (" + r.msg + ")");
            finish_without_dsn(m);
        },
        std::move(ev));
}

void Outcome::send_dsn(const std::shared_ptr<QueuedMessage>& m) {
    if (m->mail_from.empty() || m->is_dsn) {
        log::info("queue: {}: not sending a DSN for a message with a null sender", m->id);
        return finish_without_dsn(m);
    }
    dsn_.failure(m);  // the message leaves the queue once its DSN is durable
}

void Outcome::finish_without_dsn(const std::shared_ptr<QueuedMessage>& m) {
    ctx_.journal.done(*m);
    ctx_.release(*m);
}

void Outcome::count(const EventPeer& peer, const std::string& domain, Counter c) {
    std::pair<std::string, std::string> key{
        std::string(provider_of(peer.mx_host.empty() ? domain : peer.mx_host)),
        peer.source.empty() ? "default" : peer.source};
    auto it = counts_.find(key);
    if (it == counts_.end()) {
        if (counts_.size() >= max_counted_pairs) key = {"other", "other"};
        it = counts_.try_emplace(std::move(key)).first;
    }
    ++it->second[c];
}

}  // namespace kasi
