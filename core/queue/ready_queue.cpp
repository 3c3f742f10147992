#include "core/queue/ready_queue.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/clock.h"

namespace kasi {

ReadyQueue::ReadyQueue(ReadyQueueOwner& owner, std::string key, Route route, QueueLimits limits)
    : owner_(owner), key_(std::move(key)), route_(std::move(route)), limits_(std::move(limits)) {
    uv_timer_init(owner_.loop(), rate_timer_.get());
    rate_timer_->data = this;
    tokens_ = std::max(1.0, limits_.max_message_rate);
    tokens_at_ms_ = now_ms();
}

void ReadyQueue::set_limits(QueueLimits l) {
    bool rate_changed = l.max_message_rate != limits_.max_message_rate;
    limits_ = std::move(l);
    if (rate_changed) {
        tokens_ = std::min(tokens_, std::max(1.0, limits_.max_message_rate));
        tokens_at_ms_ = now_ms();
    }
    pump();
}

ReadyQueue::~ReadyQueue() {
    *alive_ = false;
    for (auto& c : conns_) {
        if (c.client) c.client->abort("shutting down");
    }
}

void ReadyQueue::push(std::unique_ptr<Delivery> d) {
    d->ready_since_ms = now_ms();
    if (d->ready_since_ms < down_until_ms_)
        return owner_.not_sent(std::move(d), down_reply_, down_kind_, *this);
    q_.push_back(std::move(d));
    pump();
}

bool ReadyQueue::take_token() {
    if (limits_.max_message_rate <= 0) return true;
    int64_t now = now_ms();
    double burst = std::max(1.0, limits_.max_message_rate);
    tokens_ =
        std::min(burst, tokens_ + double(now - tokens_at_ms_) * limits_.max_message_rate / 1000.0);
    tokens_at_ms_ = now;
    if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return true;
    }
    if (!rate_timer_armed_) {
        rate_timer_armed_ = true;
        auto wait = uint64_t(std::ceil((1.0 - tokens_) * 1000.0 / limits_.max_message_rate));
        uv_timer_start(
            rate_timer_.get(),
            [](uv_timer_t* t) {
                auto* rq = static_cast<ReadyQueue*>(t->data);
                if (!rq) return;
                rq->rate_timer_armed_ = false;
                rq->pump();
            },
            std::max<uint64_t>(wait, 1), 0);
    }
    return false;
}

// Runs pump() on the next loop turn (the rate timer doubles as the trigger).
void ReadyQueue::kick() {
    if (rate_timer_armed_) return;
    rate_timer_armed_ = true;
    uv_timer_start(
        rate_timer_.get(),
        [](uv_timer_t* t) {
            auto* rq = static_cast<ReadyQueue*>(t->data);
            if (!rq) return;
            rq->rate_timer_armed_ = false;
            rq->pump();
        },
        0, 0);
}

void ReadyQueue::pump() {
    if (!suspended_.empty()) return;
    for (auto& c : conns_) {
        if (q_.empty()) break;
        if (c.ready && !c.inflight && !c.loading && c.client && c.client->idle()) assign(&c);
    }
    int64_t now = now_ms();
    while (!q_.empty() && conns_.size() < max_conns(now) && owner_.may_connect() &&
           connecting_ < q_.size())
        open_connection();
}

void ReadyQueue::open_connection() {
    ClientOptions o;
    o.endpoints = route_.endpoints;
    o.helo = route_.helo;
    o.bind = route_.bind;
    o.lmtp = route_.lmtp;
    o.auth_user = route_.auth_user;
    o.auth_pass = route_.auth_pass;
    o.auth_allow_cleartext = route_.auth_allow_cleartext;
    o.timeouts = owner_.timeouts();
    o.tls_ctx = owner_.tls_ctx();
    o.tls = route_.tls;
    if (o.tls == TlsMode::opportunistic) {
        bool remembered = false;
        for (const auto& e : o.endpoints)
            remembered |= owner_.tls_failed_recently(e.mx_host.empty() ? e.ip.str() : e.mx_host);
        if (remembered) o.tls = TlsMode::off;
    }
    conns_.emplace_back();
    Conn* c = &conns_.back();
    uv_timer_init(owner_.loop(), c->idle_timer.get());
    c->idle_timer->data = c;
    ++connecting_;
    owner_.connection_opened();
    std::weak_ptr<bool> alive = alive_;
    SmtpClient::Handlers h;
    h.ready = [this, c, alive] {
        if (alive.lock()) on_ready(c);
    };
    h.done = [this, c, alive](TxnOutcome out) {
        if (alive.lock()) on_done(c, std::move(out));
    };
    h.closed = [this, c, alive](const std::string& why, bool before_ready, bool tls_failed) {
        if (alive.lock()) on_closed(c, why, before_ready, tls_failed);
    };
    c->client = std::make_shared<SmtpClient>(owner_.loop(), std::move(o), std::move(h));
    c->client->start();
}

ReadyQueue::ConnIt ReadyQueue::find(Conn* c) {
    for (auto it = conns_.begin(); it != conns_.end(); ++it)
        if (&*it == c) return it;
    return conns_.end();
}

void ReadyQueue::on_ready(Conn* c) {
    --connecting_;
    c->ready = true;
    last_error_.clear();
    down_until_ms_ = 0;
    if (q_.empty()) return go_idle(c);
    assign(c);
}

void ReadyQueue::go_idle(Conn* c) {
    uv_timer_start(
        c->idle_timer.get(),
        [](uv_timer_t* t) {
            auto* conn = static_cast<Conn*>(t->data);
            if (conn && conn->client && conn->client->idle() && !conn->inflight)
                conn->client->quit();
        },
        uint64_t(std::max(0, limits_.idle_timeout_ms)), 0);
}

void ReadyQueue::assign(Conn* c) {
    if (q_.empty()) return go_idle(c);
    if (!take_token()) return go_idle(c);
    uv_timer_stop(c->idle_timer.get());
    c->inflight = q_.take();
    c->loading = true;
    std::weak_ptr<bool> alive = alive_;
    std::weak_ptr<SmtpClient> wclient = c->client;
    owner_.prepare(*c->inflight, [this, c, alive, wclient](bool ok, OutTxn txn) {
        if (!alive.lock()) return;
        auto client = wclient.lock();
        if (find(c) == conns_.end() || !client || c->client != client) return;
        c->loading = false;
        if (!ok) {  // unreadable body: retried later, the connection stays usable
            SmtpReply r;
            r.code = 451;
            r.enhanced = "4.3.0";
            r.lines.push_back("cannot read the message from the spool");
            owner_.not_sent(std::move(c->inflight), r, OutcomeKind::local, *this);
            // Not assign(c) here: this may run inside assign() itself (a read that fails at
            // once), and a long queue of unreadable messages must not recurse.
            go_idle(c);
            return kick();
        }
        if (!client->idle()) {  // closed while the body was read: back to the queue
            q_.push_front(std::move(c->inflight));
            return;
        }
        client->send(std::move(txn));
    });
}

void ReadyQueue::on_done(Conn* c, TxnOutcome out) {
    if (!c->inflight) return;
    auto d = std::move(c->inflight);
    ++c->sent;
    owner_.sent(std::move(d), out, *this, c->client->info());
    if (out.connection_lost) return;  // on_closed follows
    if (c->sent >= limits_.max_messages_per_connection) {
        c->client->quit();
        pump();  // another connection takes over
        return;
    }
    int open = 0;
    for (const auto& o : conns_) open += !o.quitting;
    if (open > limits_.max_connections) {  // the limits were lowered
        c->quitting = true;
        c->client->quit();
        return;
    }
    assign(c);
}

void ReadyQueue::on_closed(Conn* c, const std::string& why, bool before_ready, bool tls_failed) {
    auto it = find(c);
    if (it == conns_.end()) return;
    if (!c->ready) --connecting_;
    owner_.connection_closed();
    std::unique_ptr<Delivery> back = std::move(c->inflight);  // closed while loading
    auto client = std::move(c->client);
    conns_.erase(it);  // the client object lives on in `client` until we return
    if (back) q_.push_front(std::move(back));
    if (!why.empty()) {
        last_error_ = why;
        log::info("outbound: {}: {}", key_, why);
    }
    if (tls_failed && route_.tls == TlsMode::opportunistic) {
        const auto& ep = client->info().endpoint;
        owner_.remember_tls_failure(ep.mx_host.empty() ? ep.ip.str() : ep.mx_host);
        pump();  // the next connection goes without STARTTLS
        return;
    }
    if (before_ready && client->info().refused_by)
        owner_.refused(*this, *client->info().refused_by);
    if (before_ready) {
        size_t working = 0;
        for (auto& o : conns_) working += o.ready;
        if (working > 0) {  // refused while others work: the site's cap for this source
            int64_t now = now_ms();
            refusal_hold_ms_ = now < refused_until_ms_ + refusal_hold_ms_
                                   ? std::min<int64_t>(refusal_hold_ms_ * 2, 600'000)
                                   : 10'000;
            refused_cap_ = working;
            refused_until_ms_ = now + refusal_hold_ms_;
        }
    }
    if (before_ready) {
        bool others = false;
        for (auto& o : conns_) others |= o.ready;
        if (!others && connecting_ > 0) return;  // wait for the attempts under way
        if (!others) {
            // Nothing reaches the site: what waits here is deferred, not retried in a loop.
            SmtpReply r;
            r.code = 421;
            r.enhanced = !client->info().refusal.empty()                 ? client->info().refusal
                         : tls_failed || route_.tls == TlsMode::required ? "4.7.5"
                                                                         : "4.4.1";
            r.lines.push_back(why);
            down_until_ms_ = now_ms() + site_backoff_ms;
            down_reply_ = r;
            down_kind_ = !client->info().refusal.empty() ? OutcomeKind::local
                         : r.enhanced == "4.7.5"         ? OutcomeKind::tls
                                                         : OutcomeKind::connect;
            auto waiting = q_.take_all();
            for (auto& d : waiting) owner_.not_sent(std::move(d), r, down_kind_, *this);
            return;
        }
    }
    pump();
}

EventPeer ReadyQueue::peer(const ConnInfo* info) const {
    EventPeer p;
    p.ready_queue = key_;
    p.source = route_.source;
    p.site = route_.site;
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

void ReadyQueue::close_all() {
    for (auto& c : conns_) {
        if (!c.client) continue;
        if (c.client->idle() && !c.inflight)
            c.client->quit();
        else
            c.client->abort("shutting down");
    }
}

std::vector<std::unique_ptr<Delivery>> ReadyQueue::take_if(
    const std::function<bool(const Delivery&)>& pred) {
    return q_.take_if(pred);
}

std::vector<std::unique_ptr<Delivery>> ReadyQueue::take_expired(int64_t now, int64_t max_age) {
    return q_.take_if([now, max_age](const Delivery& d) {
        return now - d.msg->received_ms >= max_age || d.msg->cancelled;
    });
}

size_t ReadyQueue::max_conns(int64_t now) const {
    size_t cap = size_t(std::max(0, limits_.max_connections));
    return now < refused_until_ms_ ? std::min(cap, refused_cap_) : cap;
}

}  // namespace kasi
