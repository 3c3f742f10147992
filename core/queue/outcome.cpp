#include "core/queue/outcome.h"

#include "core/reputation/reputation_service.h"
#include "core/shaping/shaping_engine.h"
#include "core/suppression/suppression_service.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/queue/dsn.h"
#include "core/queue/dsn_writer.h"
#include "core/queue/verdict.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t max_counted_keys = 2000;   // (provider, source, class, reason), then "other"
constexpr size_t max_recent_queues = 1000;  // queues with recent errors kept
constexpr size_t recent_per_queue = 5;
const std::string default_source = "default";  // an attempt without a named egress source

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

SmtpReply local_reply(int code, std::string enhanced, std::string text) {
    SmtpReply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.lines.push_back(std::move(text));
    return r;
}

// One attempt's recipients by verdict, each with the reply that decided it and what it
// meant.
struct Outcome::Sorted {
    std::vector<uint32_t> changed;  // every recipient of the attempt (for the journal)
    std::vector<uint32_t> delivered, deferred, failed;
    std::vector<const SmtpReply*> delivered_replies;
    std::vector<SmtpReply> deferred_replies, failed_replies;
    std::vector<Classification> delivered_cls, deferred_cls, failed_cls;
    int64_t retry_s = 0;  // the longest delay a classify_response hook gave (0: none)
};

void Outcome::transaction(std::unique_ptr<Delivery> d, const TxnOutcome& out,
                          const EventPeer& peer) {
    apply(std::move(d), out.rcpt, OutcomeKind::reply, out.command, peer);
}

void Outcome::not_sent(std::unique_ptr<Delivery> d, const SmtpReply& why, OutcomeKind kind,
                       const EventPeer& peer) {
    apply(std::move(d), std::vector<SmtpReply>{why}, kind, {}, peer);  // one reply for all
}

// One attempt: step 1 here (and the hook when a plugin has it), the others in decide().
void Outcome::apply(std::unique_ptr<Delivery> d, const std::vector<SmtpReply>& replies,
                    OutcomeKind kind, const std::vector<std::string_view>& commands,
                    const EventPeer& peer) {
    auto& m = *d->msg;
    ++d->attempts;
    m.attempts = std::max(m.attempts, d->attempts);
    // 1. classify (verdict.h: the one place a verdict is made)
    std::vector<Judgement> js = judge(ctx_.cfg().classifier.get(), d->rcpts.size(), replies, kind,
                                      commands, peer.mx_host, d->domain);
    bool failures = std::any_of(js.begin(), js.end(),
                                [](const Judgement& j) { return j.verdict != Verdict::delivered; });
    if (failures && ctx_.hooks.has(Hook::classify_response))
        return ask_classify_hook(std::move(d), replies, std::move(js), peer);
    decide(std::move(d), replies, js, peer);
}

// The classify_response hook, once for each recipient that did not get a 2xx; the
// attempt goes on (decide()) when every answer is in.
void Outcome::ask_classify_hook(std::unique_ptr<Delivery> d, std::vector<SmtpReply> replies,
                                std::vector<Judgement> js, const EventPeer& peer) {
    struct Pending {
        std::unique_ptr<Delivery> d;
        std::vector<SmtpReply> replies;
        std::vector<Judgement> js;
        EventPeer peer;
        size_t waiting = 1;  // one for the loop below, so an answer given at once cannot end it
    };
    auto p = std::make_shared<Pending>();
    p->d = std::move(d);
    p->replies = std::move(replies);
    p->js = std::move(js);
    p->peer = peer;
    std::weak_ptr<bool> alive = ctx_.alive;
    auto answered = [this, alive, p] {
        if (--p->waiting > 0 || !alive.lock()) return;
        decide(std::move(p->d), p->replies, p->js, p->peer);
    };
    const Delivery& dv = *p->d;
    for (size_t k = 0; k < dv.rcpts.size(); ++k) {
        const Judgement& j = p->js[k];
        if (j.verdict == Verdict::delivered) continue;
        const SmtpReply& r = k < p->replies.size() ? p->replies[k] : p->replies.back();
        ResponseEvent ev;
        ev.rcpt = dv.msg->rcpts[dv.rcpts[k]].address;
        ev.domain = dv.domain;
        ev.kind = j.kind;
        ev.code = r.code;
        ev.enhanced = r.enhanced;
        ev.text = r.text();
        ev.command = j.command;
        ev.host = peer.mx_host;
        ev.ip = peer.mx_ip;
        ev.classification = j.cls;
        ev.verdict = j.verdict;
        ++p->waiting;
        ctx_.hooks.run_response(
            dv.msg, std::move(ev), [this, alive, p, k, answered](Result r, OutboundAnswer& a) {
                if (!alive.lock()) return;
                apply_response_answer(p->js[k], r, a.response, ctx_.cfg().classifier.get(),
                                      p->d->msg->id);
                answered();
            });
    }
    answered();
}

// Steps 2 to 4, once every recipient has its judgement.
void Outcome::decide(std::unique_ptr<Delivery> d, const std::vector<SmtpReply>& replies,
                     const std::vector<Judgement>& js, const EventPeer& peer) {
    int64_t now = now_ms();
    Sorted s = sort(*d, replies, js);
    // 2. delivered
    delivered(*d, s, peer, now);
    // 3. bounce
    if (!s.failed.empty()) fail_rcpts(*d, s.failed, s.failed_replies, s.failed_cls, "Bounce", peer);
    // 4. defer: retried, or failed after all
    if (s.deferred.empty()) return settle(std::move(d), s);
    retry_or_give_up(std::move(d), std::move(s), peer, now);
}

// Records each recipient's last reply and groups the recipients by verdict.
Outcome::Sorted Outcome::sort(Delivery& d, const std::vector<SmtpReply>& replies,
                              const std::vector<Judgement>& js) {
    Sorted s;
    for (size_t k = 0; k < d.rcpts.size(); ++k) {
        uint32_t i = d.rcpts[k];
        const SmtpReply& r = k < replies.size() ? replies[k] : replies.back();
        d.msg->rcpts[i].last_reply = ctx_.intern(reply_line(r));
        s.changed.push_back(i);
        switch (js[k].verdict) {
            case Verdict::delivered:
                s.delivered.push_back(i);
                s.delivered_replies.push_back(&r);
                s.delivered_cls.push_back(js[k].cls);
                break;
            case Verdict::bounce:
                s.failed.push_back(i);
                s.failed_replies.push_back(r);
                s.failed_cls.push_back(js[k].cls);
                break;
            case Verdict::defer:
                s.deferred.push_back(i);
                s.deferred_replies.push_back(r);
                s.deferred_cls.push_back(js[k].cls);
                s.retry_s = std::max(s.retry_s, js[k].retry_s);
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
        count(m, peer, s.delivered_cls[k], delivered_n);
        ctx_.events.recipient("Delivery", m, i, queue, peer, *s.delivered_replies[k],
                              s.delivered_cls[k], d.attempts, now);
    }
    if (!ctx_.hooks.has(Hook::delivered)) return;
    OutboundEvent ev = make_event(m, s.delivered, *s.delivered_replies.front(), peer);
    ev.delay_s = (now - m.received_ms) / 1000;
    ev.classification = s.delivered_cls.front();
    ctx_.hooks.run(
        Hook::delivered, d.msg, d.domain, [](Result, OutboundAnswer&) {}, std::move(ev));
}

// Nothing deferred: the attempt's record, and the end of this part of the message. A
// message with no failed recipient at all leaves the queue here; otherwise the last part
// goes through finish() (the bounce hook, the DSN).
void Outcome::settle(std::unique_ptr<Delivery> d, const Sorted& s) {
    auto m = d->msg;
    // Recipients that failed in an earlier attempt still want their DSN (finish()).
    bool failures = std::any_of(m->rcpts.begin(), m->rcpts.end(), [](const QueuedRcpt& r) {
        return r.status == RcptStatus::failed && !r.deleted;
    });
    bool last = m->open_parts == 1 && !failures;
    ctx_.journal.record(*m, true, s.changed, last, 0);
    if (!last) return part_done(m);
    m->open_parts = 0;  // the message is done, its record said so: it leaves the queue
    ctx_.release(*m);
}

// Step 4: deferred recipients are retried, unless the retries ran out or the next one
// would come after max_age. A classify_response hook's delay replaces the schedule's.
void Outcome::retry_or_give_up(std::unique_ptr<Delivery> d, Sorted s, const EventPeer& peer,
                               int64_t now) {
    auto m = d->msg;
    const auto& iv = ctx_.cfg().temp_fail_intervals_s;
    bool too_many = size_t(d->attempts) > iv.size();
    int64_t next = too_many    ? 0
                   : s.retry_s ? now + s.retry_s * 1000
                               : now + int64_t(iv[size_t(d->attempts) - 1]) * 1000;
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
        std::vector<Classification> cls = s.deferred_cls;
        if (too_old)
            for (auto& c : cls) c = local_class(rs.front(), *d, peer);
        fail_rcpts(*d, s.deferred, rs, cls, too_old ? "Expiration" : "Bounce", peer);
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
    ev.classification = s.deferred_cls.front();
    ev.per_rcpt = s.deferred_cls;
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
                std::vector<Classification> cls(s.deferred.size(),
                                                local_class(rs.front(), *d, peer));
                fail_rcpts(*d, s.deferred, rs, cls, "Bounce", peer);
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
        count(*m, peer, s.deferred_cls[k], deferred_n, &s.deferred_replies[k]);
        ctx_.events.recipient("TransientFailure", *m, s.deferred[k], queue, peer,
                              s.deferred_replies[k], s.deferred_cls[k], d->attempts, now, next);
    }
    remember(queue, Verdict::defer, s.deferred_cls.front(), s.deferred_replies.front(), now);
    const auto& cfg = ctx_.cfg();
    if (cfg.delay_warning_ms && !m->warned && !m->is_dsn && !m->mail_from.empty() &&
        now - m->received_ms >= cfg.delay_warning_ms)
        dsn_.delay_warning(m, s.deferred);
    ctx_.journal.record(*m, true, s.changed, false, next);
    d->rcpts = s.deferred;
    d->due_ms = next;
    d->ready_since_ms = 0;
    const Classification& c = s.deferred_cls.front();
    retry_.retry(std::move(d), fmt::format("{} ({}, {})", reply_line(s.deferred_replies.front()),
                                           c.reason, c.cls));
}

void Outcome::fail_rcpts(Delivery& d, const std::vector<uint32_t>& idx,
                         const std::vector<SmtpReply>& replies,
                         const std::vector<Classification>& cls, const char* type,
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
        m.more().failed_class.emplace_back(idx[k], cls[k]);
        ++(expired ? ctx_.stats.expired : ctx_.stats.bounced);
        count(m, peer, cls[k], expired ? expired_n : bounced_n, &replies[k]);
        ctx_.events.recipient(type, m, idx[k], queue, peer, replies[k], cls[k], d.attempts, now);
        if (ctx_.settings.suppressions && !expired && !m.is_dsn && !m.is_report &&
            peer.site != "suppressed")
            ctx_.settings.suppressions->bounced(st.address, cls[k], m.tenant(),
                                                std::string(address_domain(m.mail_from)), m.id);
    }
    if (!idx.empty()) remember(queue, Verdict::bounce, cls.front(), replies.front(), now);
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
    std::vector<Classification> cls(rs.size(), local_class(rs.front(), *d, peer));
    fail_rcpts(*d, d->rcpts, rs, cls, "Expiration", peer);
    ctx_.journal.record(*m, true, d->rcpts, false, 0);
    part_done(m);
}

void Outcome::drop(std::unique_ptr<Delivery> d, bool bounce) {
    auto m = d->msg;
    std::vector<SmtpReply> rs(
        d->rcpts.size(),
        local_reply(550, "5.0.0",
                    bounce ? "bounced by the administrator" : "deleted by the administrator"));
    std::vector<Classification> cls(rs.size(), local_class(rs.front(), *d, EventPeer{}));
    fail_rcpts(*d, d->rcpts, rs, cls, "Bounce", EventPeer{});
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
    for (uint32_t i : failed) {
        if (!m->extra) break;
        for (const auto& [idx, c] : m->extra->failed_class)
            if (idx == i) {
                ev.per_rcpt.push_back(c);
                break;
            }
    }
    if (!ev.per_rcpt.empty() && ev.per_rcpt.size() == failed.size())
        ev.classification = ev.per_rcpt.front();
    else
        ev.per_rcpt.clear();
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

Classification Outcome::local_class(const SmtpReply& r, const Delivery& d,
                                    const EventPeer& peer) const {
    return classify_local(ctx_.cfg().classifier.get(), r, peer.mx_host, d.domain);
}

void Outcome::count(const QueuedMessage& m, const EventPeer& peer, const Classification& c,
                    Counter n, const SmtpReply* reply) {
    const std::string& source = peer.source.empty() ? default_source : peer.source;
    // What a provider answered about the senders' mail feeds the reputation matrix and the
    // automation rules; expiry, suppression, Kasi's own DSNs and the reports it reads do not.
    bool fed = n != expired_n && peer.site != "suppressed" && !m.is_dsn && !m.is_report;
    bool shape = fed && shaping_ && shaping_->active();
    if (fed && (ctx_.settings.reputation || shape)) {
        std::string domain = to_lower(address_domain(m.mail_from));
        std::string_view provider =
            c.provider.empty() ? std::string_view("other") : std::string_view(c.provider);
        if (ctx_.settings.reputation) {
            static const RepOutcome as[] = {RepOutcome::delivered, RepOutcome::deferred,
                                            RepOutcome::bounced};
            ctx_.settings.reputation->record({source, domain, provider, m.tenant()}, as[n], c.cls,
                                             now_ms() / 1000);
        }
        if (shape) feed_shaping(source, domain, provider, c, n, reply);
    }
    if (fed && !m.tenant().empty())
        ctx_.breaker.record(m.tenant(), breaker_outcome(c, n), now_ms());
    CountKey key{c.provider, source, c.cls, c.reason};
    auto it = counts_.find(key);
    if (it == counts_.end()) {
        if (counts_.size() >= max_counted_keys) key = {"other", "other", "other", "other"};
        it = counts_.try_emplace(std::move(key)).first;
    }
    ++it->second[n];
}

TenantBreaker::Outcome Outcome::breaker_outcome(const Classification& c, Counter n) {
    using B = TenantBreaker::Outcome;
    if (n == delivered_n) return B::delivered;
    if (c.cls == "reputation_block" || c.cls == "spam_block") return B::block;
    if (n == deferred_n) return B::deferred;
    return c.hard ? B::hard_bounce : B::soft_bounce;
}

void Outcome::feed_shaping(std::string_view source, std::string_view domain,
                           std::string_view provider, const Classification& c, Counter n,
                           const SmtpReply* reply) {
    using K = ShapingInput::Kind;
    ShapingInput in;
    in.kind = n == delivered_n ? K::delivered : n == deferred_n ? K::deferred : K::bounced;
    in.source = source;
    in.domain = domain;
    in.provider = provider;
    in.cls = c.cls;
    std::string line = reply && in.kind != K::delivered ? reply_line(*reply) : std::string();
    in.reply = line;
    shaping_->observe(in, now_ms());
}

// The queue summary's recent errors: per queue the last few distinct (verdict, reason,
// class), newest first, each with its last reply. Bounded in queues and per queue.
void Outcome::remember(const std::string& queue, Verdict v, const Classification& c,
                       const SmtpReply& r, int64_t now) {
    auto it = recent_.find(queue);
    if (it == recent_.end()) {
        if (recent_.size() >= max_recent_queues) {
            auto oldest = recent_.begin();
            for (auto q = recent_.begin(); q != recent_.end(); ++q)
                if (q->second.front().time_ms < oldest->second.front().time_ms) oldest = q;
            recent_.erase(oldest);
        }
        it = recent_.try_emplace(queue).first;
    }
    auto& list = it->second;
    uint64_t seen = 0;
    for (auto e = list.begin(); e != list.end(); ++e)
        if (e->verdict == v && e->reason == c.reason && e->cls == c.cls) {
            seen = e->count;
            list.erase(e);
            break;
        }
    list.push_front(RecentError{now, v, c.reason, c.cls, reply_line(r), seen + 1});
    if (list.size() > recent_per_queue) list.pop_back();
}

}  // namespace kasi
