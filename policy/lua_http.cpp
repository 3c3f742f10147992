#include "policy/lua_http.h"

#include <http_parser.h>

#include <fmt/format.h>

#include <openssl/x509v3.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "core/tls/tls_conn.h"
#include "core/util/ip.h"
#include "core/util/strings.h"
#include "core/util/uv_handle.h"

namespace kasi {

bool http_split_url(const std::string& url, bool& https, std::string& host, uint16_t& port,
                    std::string& target, std::string& err) {
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        https = false;
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        https = true;
        rest = url.substr(8);
    } else {
        err = "the URL must start with http:// or https://";
        return false;
    }
    size_t slash = rest.find_first_of("/?");
    std::string authority = rest.substr(0, slash);
    target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (target[0] == '?') target = "/" + target;
    port = https ? 443 : 80;
    if (!authority.empty() && authority[0] == '[') {  // [v6]:port
        size_t close = authority.find(']');
        if (close == std::string::npos) {
            err = "bad IPv6 literal in the URL";
            return false;
        }
        host = authority.substr(1, close - 1);
        authority = authority.substr(close + 1);
        if (!authority.empty() && authority[0] != ':') {
            err = "bad URL authority";
            return false;
        }
    } else {
        size_t colon = authority.rfind(':');
        host = authority.substr(0, colon);
        authority = colon == std::string::npos ? "" : authority.substr(colon);
    }
    if (!authority.empty()) {
        unsigned long long p = 0;
        if (!parse_u64(authority.substr(1), p) || p == 0 || p > 65535) {
            err = "bad port in the URL";
            return false;
        }
        port = uint16_t(p);
    }
    if (host.empty() || host.find('@') != std::string::npos) {
        err = "the URL has no host (or has credentials, which are not supported)";
        return false;
    }
    for (char c : target)
        if (c == ' ' || c == '\r' || c == '\n') {
            err = "the URL path contains spaces or line breaks";
            return false;
        }
    return true;
}

namespace {

struct HttpOp;

// The requests in flight on each loop, so that those still pending when the loop stops
// can be ended (http_close_loop) instead of leaking. Each loop's thread touches its own.
std::mutex live_mu;
std::map<uv_loop_t*, std::set<HttpOp*>>& live_ops() {
    static std::map<uv_loop_t*, std::set<HttpOp*>> m;
    return m;
}

// One request from resolution to the last byte. Owns itself: released when both its
// handles are closed after finish().
struct HttpOp {
    uv_loop_t* loop;
    SSL_CTX* tls_ctx;
    HttpClientRequest req;
    std::function<void(HttpClientResponse)> done;
    bool https = false;
    std::string host, target;
    uint16_t port = 0;
    uv_getaddrinfo_t gai{};
    UvHandle<uv_tcp_t> tcp;
    UvHandle<uv_timer_t> timer;
    std::unique_ptr<TlsConn> tls;
    http_parser parser{};
    http_parser_settings settings{};
    HttpClientResponse resp;
    std::string field;  // header name being read
    bool in_value = false;
    bool complete = false;
    bool too_big = false;
    bool finished = false;
    bool resolving = false;
    int open_handles = 0;
    char buf[16384];

    void start() {
        std::string err;
        if (!http_split_url(req.url, https, host, port, target, err)) return finish(err);
        if (https && !tls_ctx) return finish("https is not available (no TLS context)");
        uv_timer_init(loop, timer.get());
        ++open_handles;
        timer->data = this;
        uv_timer_start(
            timer.get(), [](uv_timer_t* t) { static_cast<HttpOp*>(t->data)->finish("timeout"); },
            uint64_t(req.timeout_ms), 0);
        if (IpAddr::parse(host)) {
            sockaddr_storage ss{};
            if (host.find(':') != std::string::npos)
                uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss));
            else
                uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss));
            return connect(reinterpret_cast<sockaddr*>(&ss));
        }
        gai.data = this;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        resolving = true;
        int rc = uv_getaddrinfo(
            loop, &gai,
            [](uv_getaddrinfo_t* g, int status, addrinfo* res) {
                auto* op = static_cast<HttpOp*>(g->data);
                op->resolving = false;
                if (op->finished) {
                    uv_freeaddrinfo(res);
                    return op->maybe_free();
                }
                if (status != 0 || !res) {
                    uv_freeaddrinfo(res);
                    return op->finish(
                        fmt::format("cannot resolve {}: {}", op->host, uv_strerror(status)));
                }
                sockaddr_storage ss{};
                std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
                if (ss.ss_family == AF_INET6)
                    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(op->port);
                else
                    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(op->port);
                uv_freeaddrinfo(res);
                op->connect(reinterpret_cast<sockaddr*>(&ss));
            },
            host.c_str(), nullptr, &hints);
        if (rc != 0) {
            resolving = false;
            finish(fmt::format("cannot resolve {}: {}", host, uv_strerror(rc)));
        }
    }

    void connect(const sockaddr* sa) {
        uv_tcp_init(loop, tcp.get());
        ++open_handles;
        tcp->data = this;
        auto* req = new uv_connect_t;
        req->data = this;
        int rc = uv_tcp_connect(req, tcp.get(), sa, [](uv_connect_t* r, int status) {
            auto* op = static_cast<HttpOp*>(r->data);
            delete r;
            if (status == UV_ECANCELED || op->finished) return;
            if (status != 0) return op->finish(fmt::format("connect: {}", uv_strerror(status)));
            op->connected();
        });
        if (rc != 0) {
            delete req;
            finish(fmt::format("connect: {}", uv_strerror(rc)));
        }
    }

    std::string request_text() const {
        std::string out = fmt::format("{} {} HTTP/1.1\r\n", req.method, target);
        bool has_host = false, has_ua = false;
        for (const auto& [k, v] : req.headers) {
            has_host |= iequals(k, "host");
            has_ua |= iequals(k, "user-agent");
        }
        bool v6 = host.find(':') != std::string::npos;
        bool default_port = port == (https ? 443 : 80);
        if (!has_host)
            out += fmt::format("Host: {}{}{}{}\r\n", v6 ? "[" : "", host, v6 ? "]" : "",
                               default_port ? "" : ":" + std::to_string(port));
        if (!has_ua) out += "User-Agent: Kasi/" KASI_VERSION "\r\n";
        for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
        if (!req.body.empty() || req.method == "POST" || req.method == "PUT")
            out += fmt::format("Content-Length: {}\r\n", req.body.size());
        out += "Connection: close\r\n\r\n";
        return out + req.body;
    }

    void connected() {
        http_parser_init(&parser, HTTP_RESPONSE);
        parser.data = this;
        http_parser_settings_init(&settings);
        settings.on_header_field = [](http_parser* p, const char* at, size_t n) {
            auto* op = static_cast<HttpOp*>(p->data);
            if (op->in_value) op->field.clear();  // a new header begins
            op->in_value = false;
            op->field.append(at, n);
            return 0;
        };
        settings.on_header_value = [](http_parser* p, const char* at, size_t n) {
            auto* op = static_cast<HttpOp*>(p->data);
            if (!op->in_value) {
                if (op->resp.headers.size() >= 200) return 1;
                op->resp.headers.emplace_back(to_lower(op->field), "");
                op->in_value = true;
            }
            op->resp.headers.back().second.append(at, n);
            return 0;
        };
        settings.on_body = [](http_parser* p, const char* at, size_t n) {
            auto* op = static_cast<HttpOp*>(p->data);
            if (op->resp.body.size() + n > op->req.max_response_bytes) {
                op->too_big = true;
                return 1;
            }
            op->resp.body.append(at, n);
            return 0;
        };
        settings.on_message_complete = [](http_parser* p) {
            auto* op = static_cast<HttpOp*>(p->data);
            op->complete = true;
            op->resp.status = int(p->status_code);
            return 0;
        };
        std::string text = request_text();
        if (https) {
            tls = std::make_unique<TlsConn>(tls_ctx, TlsConn::Role::client,
                                            IpAddr::parse(host) ? std::string() : host);
            SSL_set_verify(tls->ssl(), SSL_VERIFY_PEER, nullptr);
            if (IpAddr::parse(host))
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls->ssl()), host.c_str());
            else
                SSL_set1_host(tls->ssl(), host.c_str());
            tls->write(text);
            send(tls->take_output());
        } else {
            send(std::move(text));
        }
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(tcp.get()),
            [](uv_handle_t* h, size_t, uv_buf_t* b) {
                auto* op = static_cast<HttpOp*>(h->data);
                *b = uv_buf_init(op->buf, sizeof op->buf);
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
                auto* op = static_cast<HttpOp*>(s->data);
                if (op->finished) return;
                if (n < 0) return op->eof(n == UV_EOF ? "" : uv_strerror(int(n)));
                op->received(b->base, size_t(n));
            });
    }

    void send(std::string data) {
        if (data.empty()) return;
        struct W {
            uv_write_t req;
            std::string data;
        };
        auto* w = new W{{}, std::move(data)};
        uv_buf_t b = uv_buf_init(w->data.data(), unsigned(w->data.size()));
        if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp.get()), &b, 1,
                     [](uv_write_t* r, int) { delete reinterpret_cast<W*>(r); }) != 0)
            delete w;
    }

    void received(const char* data, size_t n) {
        std::string plain;
        if (tls) {
            if (!tls->feed(data, n, plain)) return finish("TLS: " + tls->error());
            send(tls->take_output());
        } else {
            plain.assign(data, n);
        }
        if (plain.empty()) return;
        size_t used = http_parser_execute(&parser, &settings, plain.data(), plain.size());
        if (parser.http_errno != HPE_OK || used != plain.size())
            return finish(too_big
                              ? fmt::format("response larger than {} bytes", req.max_response_bytes)
                              : fmt::format("bad HTTP response: {}",
                                            http_errno_description(http_errno(parser.http_errno))));
        if (complete) finish("");
    }

    void eof(const std::string& why) {
        if (!why.empty()) return finish("read: " + why);
        http_parser_execute(&parser, &settings, nullptr, 0);  // end of a close-delimited body
        if (complete) return finish("");
        finish("the server closed the connection before the whole response");
    }

    void finish(const std::string& error) {
        if (finished) return;
        finished = true;
        HttpClientResponse r = std::move(resp);
        if (!error.empty()) {
            r = HttpClientResponse{};
            r.error = error;
        }
        auto fn = std::move(done);
        done = nullptr;
        if (resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&gai));
        close_handles();
        if (fn) fn(std::move(r));
    }

    void close_handles() {
        auto one_closed = [this] {
            --open_handles;
            maybe_free();
        };
        if (timer.initialized()) timer.close(one_closed);
        if (tcp.initialized()) tcp.close(one_closed);
        maybe_free();
    }

    void maybe_free() {
        if (!finished || open_handles != 0 || resolving) return;
        {
            std::lock_guard<std::mutex> lock(live_mu);
            auto it = live_ops().find(loop);
            if (it != live_ops().end()) {
                it->second.erase(this);
                if (it->second.empty()) live_ops().erase(it);
            }
        }
        delete this;
    }
};

}  // namespace

void http_request(uv_loop_t* loop, SSL_CTX* tls, HttpClientRequest req,
                  std::function<void(HttpClientResponse)> done) {
    auto* op = new HttpOp{loop, tls, std::move(req), std::move(done)};
    {
        std::lock_guard<std::mutex> lock(live_mu);
        live_ops()[loop].insert(op);
    }
    op->start();
}

void http_close_loop(uv_loop_t* loop) {
    std::vector<HttpOp*> ops;
    {
        std::lock_guard<std::mutex> lock(live_mu);
        auto it = live_ops().find(loop);
        if (it == live_ops().end()) return;
        ops.assign(it->second.begin(), it->second.end());
    }
    for (HttpOp* op : ops) {
        op->done = nullptr;                   // nobody is waiting any more: no policy code runs now
        op->finish("kasi is shutting down");  // closes its handles; freed once closed
    }
}

}  // namespace kasi
