#include "core/dns/resolver.h"

#include <map>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/clock.h"
#include "core/util/uv_handle.h"
#include "core/util/uv_write.h"

namespace kasi {

namespace {

sockaddr_storage to_sockaddr(const DnsServer& s) {
    sockaddr_storage ss{};
    std::string ip = s.ip.str();
    if (s.ip.v6)
        uv_ip6_addr(ip.c_str(), s.port, reinterpret_cast<sockaddr_in6*>(&ss));
    else
        uv_ip4_addr(ip.c_str(), s.port, reinterpret_cast<sockaddr_in*>(&ss));
    return ss;
}

bool same_endpoint(const sockaddr* a, const DnsServer& s) {
    if (!a) return false;
    IpAddr ip = IpAddr::from_sockaddr(a);
    int port = a->sa_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(a)->sin6_port)
                                        : ntohs(reinterpret_cast<const sockaddr_in*>(a)->sin_port);
    return ip.unmapped() == s.ip.unmapped() && port == s.port;
}

struct UdpSend {
    uv_udp_send_t req;
    std::string data;
};

}  // namespace

struct Resolver::Impl : std::enable_shared_from_this<Resolver::Impl> {
    struct TcpAttempt {
        UvHandle<uv_tcp_t> tcp;
        std::string in;
        uint64_t gen = 0;
        Impl* owner = nullptr;
        uint16_t id = 0;
    };
    struct Query {
        std::string name;
        DnsType type;
        uint16_t id = 0;
        int tries = 0;         // tries started
        size_t server = 0;     // server of the current try
        bool use_tcp = false;  // an answer came truncated: TCP from now on
        std::vector<Callback> callbacks;
        UvHandle<uv_timer_t> timer;
        std::unique_ptr<TcpAttempt> tcp;
        std::string wire;
        Impl* owner = nullptr;
    };

    uv_loop_t* loop;
    DnsConfig cfg;
    DnsCache cache;
    DnsStats stats;
    UvHandle<uv_udp_t> udp4, udp6;
    bool udp4_open = false, udp6_open = false;
    std::map<uint16_t, std::unique_ptr<Query>> pending;
    std::map<std::string, uint16_t> inflight;  // "type/name" -> id
    std::mt19937 rng{std::random_device{}()};
    std::string recv_buf = std::string(65536, '\0');
    uint64_t tcp_gen = 0;

    Impl(uv_loop_t* l, DnsConfig c)
        : loop(l), cfg(std::move(c)), cache(cfg.cache_entries, cfg.max_ttl, cfg.negative_ttl) {}

    static std::string key(const std::string& name, DnsType t) {
        return std::to_string(uint16_t(t)) + "/" + name;
    }

    uv_udp_t* udp_for(bool v6) {
        bool& open = v6 ? udp6_open : udp4_open;
        UvHandle<uv_udp_t>& h = v6 ? udp6 : udp4;
        if (!open) {
            uv_udp_init(loop, h.get());
            h->data = this;
            sockaddr_storage any{};
            if (v6)
                uv_ip6_addr("::", 0, reinterpret_cast<sockaddr_in6*>(&any));
            else
                uv_ip4_addr("0.0.0.0", 0, reinterpret_cast<sockaddr_in*>(&any));
            if (int rc = uv_udp_bind(h.get(), reinterpret_cast<sockaddr*>(&any), 0); rc != 0) {
                log::error("dns: cannot bind a UDP socket: {}", uv_strerror(rc));
                return nullptr;
            }
            uv_udp_recv_start(
                h.get(),
                [](uv_handle_t* hh, size_t, uv_buf_t* b) {
                    auto* self = static_cast<Impl*>(hh->data);
                    b->base = self->recv_buf.data();
                    b->len = self->recv_buf.size();
                },
                [](uv_udp_t* u, ssize_t n, const uv_buf_t* b, const sockaddr* from, unsigned) {
                    if (n <= 0) return;
                    static_cast<Impl*>(u->data)->on_udp(std::string(b->base, size_t(n)), from);
                });
            // An idle socket does not keep the loop alive; a pending query's timer does.
            uv_unref(h.handle());
            open = true;
        }
        return h.get();
    }

    void start(const std::string& name, DnsType type, Callback cb) {
        ++stats.queries;
        int64_t now = now_ms();
        if (auto hit = cache.get(name, type, now)) {
            ++stats.cache_hits;
            cb(*hit);
            return;
        }
        std::string k = key(name, type);
        if (auto it = inflight.find(k); it != inflight.end()) {
            pending[it->second]->callbacks.push_back(std::move(cb));
            return;
        }
        if (cfg.servers.empty()) {
            DnsResponse r;
            r.status = DnsStatus::error;
            cb(r);
            return;
        }
        auto q = std::make_unique<Query>();
        q->name = name;
        q->type = type;
        do {
            q->id = uint16_t(rng());
        } while (pending.count(q->id));
        q->server = size_t(rng()) % cfg.servers.size();
        q->callbacks.push_back(std::move(cb));
        q->wire = dns_build_query(name, type, q->id, cfg.edns_udp_size);
        if (q->wire.empty()) {
            DnsResponse r;
            r.status = DnsStatus::error;
            q->callbacks.front()(r);
            return;
        }
        uv_timer_init(loop, q->timer.get());
        q->owner = this;
        q->timer->data = q.get();  // the timer is closed with its query
        Query* raw = q.get();
        pending[q->id] = std::move(q);
        inflight[k] = raw->id;
        next_try(raw, /*first=*/true);
    }

    void next_try(Query* q, bool first) {
        int max_tries = cfg.attempts * int(cfg.servers.size());
        if (q->tries >= max_tries) {
            DnsResponse r;
            r.status = DnsStatus::timeout;
            ++stats.timeouts;
            finish(q->id, r);
            return;
        }
        if (!first) q->server = (q->server + 1) % cfg.servers.size();
        ++q->tries;
        q->tcp.reset();
        uv_timer_start(
            q->timer.get(),
            [](uv_timer_t* t) {
                auto* qq = static_cast<Query*>(t->data);
                if (!qq) return;
                log::debug("dns: try {} for {} {} timed out", qq->tries, qq->name,
                           dns_type_name(qq->type));
                qq->owner->next_try(qq, false);
            },
            cfg.timeout_ms, 0);
        if (q->use_tcp)
            start_tcp(q);
        else
            send_udp(q);
    }

    void send_udp(Query* q) {
        const DnsServer& s = cfg.servers[q->server];
        uv_udp_t* u = udp_for(s.ip.v6);
        if (!u) return;  // the timer moves on
        auto req = std::make_unique<UdpSend>();
        req->data = q->wire;
        uv_buf_t b = uv_buf_init(req->data.data(), unsigned(req->data.size()));
        sockaddr_storage ss = to_sockaddr(s);
        req->req.data = req.get();
        if (uv_udp_send(&req->req, u, &b, 1, reinterpret_cast<sockaddr*>(&ss),
                        [](uv_udp_send_t* r, int) {
                            std::unique_ptr<UdpSend> own(static_cast<UdpSend*>(r->data));
                        }) == 0) {
            req.release();
            ++stats.udp_sent;
        }
    }

    void on_udp(const std::string& pkt, const sockaddr* from) {
        if (pkt.size() < 12) {
            ++stats.ignored_packets;
            return;
        }
        uint16_t id = uint16_t(uint8_t(pkt[0]) << 8 | uint8_t(pkt[1]));
        auto it = pending.find(id);
        if (it == pending.end() || it->second->use_tcp ||
            !same_endpoint(from, cfg.servers[it->second->server])) {
            ++stats.ignored_packets;
            return;
        }
        Query* q = it->second.get();
        auto r = dns_parse_response(pkt, id, q->name, q->type);
        if (!r) {
            ++stats.ignored_packets;
            log::debug("dns: ignored a packet that does not answer {} {}", q->name,
                       dns_type_name(q->type));
            return;
        }
        r->server = cfg.servers[q->server].str();
        if (r->truncated) {
            ++stats.tcp_fallbacks;
            q->use_tcp = true;
            start_tcp(q);
            return;
        }
        answered(q, *r);
    }

    // A server answered: a failure status (a malformed answer too) moves on to the next
    // try while tries remain.
    void answered(Query* q, const DnsResponse& r) {
        if (r.status == DnsStatus::malformed) {
            ++stats.malformed;
            log::warn("dns: malformed answer from {} for {}/{}: {}", r.server, q->name,
                      dns_type_name(q->type), r.detail);
        }
        bool failed = r.status == DnsStatus::servfail || r.status == DnsStatus::refused ||
                      r.status == DnsStatus::error || r.status == DnsStatus::malformed;
        if (failed && q->tries < cfg.attempts * int(cfg.servers.size())) {
            next_try(q, false);
            return;
        }
        finish(q->id, r);
    }

    void start_tcp(Query* q) {
        auto att = std::make_unique<TcpAttempt>();
        att->gen = ++tcp_gen;
        att->owner = this;
        att->id = q->id;
        uv_tcp_init(loop, att->tcp.get());
        att->tcp->data = att.get();  // closed with the attempt
        struct Connect {
            uv_connect_t req;
            std::weak_ptr<Impl> impl;
            uint16_t id;
            uint64_t gen;
        };
        auto c = std::make_unique<Connect>();
        c->impl = weak_from_this();
        c->id = q->id;
        c->gen = att->gen;
        c->req.data = c.get();
        sockaddr_storage ss = to_sockaddr(cfg.servers[q->server]);
        q->tcp = std::move(att);
        if (uv_tcp_connect(&c->req, q->tcp->tcp.get(), reinterpret_cast<sockaddr*>(&ss),
                           [](uv_connect_t* r, int status) {
                               std::unique_ptr<Connect> own(static_cast<Connect*>(r->data));
                               auto impl = own->impl.lock();
                               if (!impl || status == UV_ECANCELED) return;
                               impl->tcp_connected(own->id, own->gen, status);
                           }) == 0)
            c.release();
    }

    Query* find_tcp(uint16_t id, uint64_t gen) {
        auto it = pending.find(id);
        if (it == pending.end() || !it->second->tcp || it->second->tcp->gen != gen) return nullptr;
        return it->second.get();
    }

    void tcp_connected(uint16_t id, uint64_t gen, int status) {
        Query* q = find_tcp(id, gen);
        if (!q) return;
        if (status != 0) {
            log::debug("dns: TCP to {} failed: {}", cfg.servers[q->server].str(),
                       uv_strerror(status));
            q->tcp.reset();  // the timer moves on to the next try
            return;
        }
        std::string framed;  // RFC 1035 §4.2.2: a two-octet length, then the message
        framed.push_back(char(q->wire.size() >> 8));
        framed.push_back(char(q->wire.size() & 0xff));
        framed += q->wire;
        auto* stream = reinterpret_cast<uv_stream_t*>(q->tcp->tcp.get());
        write_owned(stream, std::move(framed));
        uv_read_start(
            stream,
            [](uv_handle_t* h, size_t, uv_buf_t* b) {
                auto* att = static_cast<TcpAttempt*>(h->data);
                att->owner->tcp_buf_.resize(65536);
                b->base = att->owner->tcp_buf_.data();
                b->len = att->owner->tcp_buf_.size();
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
                auto* att = static_cast<TcpAttempt*>(s->data);
                if (att) att->owner->tcp_read(att, n, b);
            });
    }

    std::string tcp_buf_;

    void tcp_read(TcpAttempt* att, ssize_t n, const uv_buf_t* b) {
        Query* q = find_tcp(att->id, att->gen);
        if (!q) return;
        if (n < 0) {
            q->tcp.reset();  // closed early: the timer moves on
            return;
        }
        att->in.append(b->base, size_t(n));
        if (att->in.size() < 2) return;
        size_t len = size_t(uint8_t(att->in[0])) << 8 | uint8_t(att->in[1]);
        if (att->in.size() < 2 + len) return;
        std::string pkt = att->in.substr(2, len);
        uint16_t id = att->id;
        q->tcp.reset();  // att is gone from here on
        auto r = dns_parse_response(pkt, id, q->name, q->type);
        if (!r) {
            ++stats.ignored_packets;
            return;  // the timer moves on
        }
        r->truncated = false;
        r->server = cfg.servers[q->server].str();
        answered(q, *r);
    }

    void finish(uint16_t id, const DnsResponse& r) {
        auto it = pending.find(id);
        if (it == pending.end()) return;
        std::unique_ptr<Query> q = std::move(it->second);
        pending.erase(it);
        inflight.erase(key(q->name, q->type));
        uv_timer_stop(q->timer.get());
        cache.put(q->name, q->type, r, now_ms());
        auto cbs = std::move(q->callbacks);
        q.reset();
        for (auto& cb : cbs) cb(r);
    }
};

Resolver::Resolver(uv_loop_t* loop, DnsConfig cfg)
    : impl_(std::make_shared<Impl>(loop, std::move(cfg))) {}

Resolver::~Resolver() = default;

void Resolver::query(const std::string& name, DnsType type, Callback cb) {
    impl_->start(dns_normalize_name(name), type, std::move(cb));
}

const DnsStats& Resolver::stats() const {
    return impl_->stats;
}

const DnsConfig& Resolver::config() const {
    return impl_->cfg;
}

DnsCache& Resolver::cache() {
    return impl_->cache;
}

}  // namespace kasi
