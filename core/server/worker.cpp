#include "core/server/worker.h"

#include "core/suppression/suppression_service.h"

#include <pthread.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/server/extensions.h"

namespace kasi {

Worker::Worker(int index, std::shared_ptr<const ServerConfig> cfg, Spool& spool, Intake& intake,
               ConnLimits& limits, Outbound* outbound, SuppressionService* suppressions)
    : index_(index),
      cfg_(std::move(cfg)),
      spool_(spool),
      intake_(intake),
      limits_(limits),
      outbound_(outbound),
      suppressions_(suppressions) {
    uv_loop_init(&loop_);
    inbox_ = std::make_unique<LoopInbox>(&loop_);
}

RecipientGate* Worker::recipient_gate() {
    return suppressions_;
}

Worker::~Worker() {
    join();
    uv_loop_close(&loop_);
}

void Worker::start(std::vector<Listen> listens) {
    thread_ = std::thread([this, l = std::move(listens)]() mutable {
        pthread_setname_np(pthread_self(), fmt::format("kasi-smtp-{}", index_).c_str());
        run(std::move(l));
    });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run(std::vector<Listen> listens) {
    resolver_ = std::make_shared<Resolver>(&loop_, cfg_->outbound->dns);
    for (const auto& l : listens) {
        auto h = std::make_unique<UvHandle<uv_tcp_t>>();
        uv_tcp_init(&loop_, h->get());
        if (int rc = uv_tcp_open(h->get(), l.fd); rc != 0) {
            log::error("worker {}: uv_tcp_open: {}", index_, uv_strerror(rc));
            ::close(l.fd);
            continue;
        }
        listener_kinds_.push_back(
            std::make_unique<ListenerKind>(ListenerKind{this, l.implicit_tls, l.http}));
        (*h)->data = listener_kinds_.back().get();
        auto cb = [](uv_stream_t* s, int st) {
            if (st != 0) return;
            auto* k = static_cast<ListenerKind*>(s->data);
            if (k->http)
                k->worker->on_http_connection(s, k->tls);
            else
                k->worker->on_connection(s, k->tls);
        };
        if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(h->get()), 1024, cb); rc != 0)
            log::error("worker {}: listen: {}", index_, uv_strerror(rc));
        listeners_.push_back(std::move(h));
    }
    ready_ = true;
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Run the close callbacks of what was closed above, without waiting for timers that
    // plugins may still have pending (an early_talker pause, say).
    resolver_.reset();
    extensions().close_loop(&loop_);  // e.g. the policy's kasi.sleep timers, kasi.redis links
    for (int i = 0; i < 4; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

void Worker::on_connection(uv_stream_t* server, bool implicit_tls) {
    if (shutting_down_) return;
    auto s = std::make_shared<Session>(*this, session_config(cfg_), implicit_tls);
    uv_tcp_init(&loop_, s->tcp());
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(s->tcp())) != 0) return;  // lost race
    sockaddr_storage ss;
    int len = sizeof ss;
    std::string ip = "?";
    if (uv_tcp_getpeername(s->tcp(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        ip = IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).str();
    const auto& st = cfg_->settings;
    auto verdict = limits_.acquire(ip, st.max_connections, st.max_connections_per_ip);
    auto& cm = CoreMetrics::global();
    if (verdict != ConnLimits::Verdict::ok) {
        cm.smtp_refused.fetch_add(1, std::memory_order_relaxed);
        std::string msg = verdict == ConnLimits::Verdict::total
                              ? "421 4.7.0 Too many connections, try again later\r\n"
                              : "421 4.7.0 Too many connections from your address\r\n";
        uv_buf_t b = uv_buf_init(msg.data(), unsigned(msg.size()));
        uv_try_write(reinterpret_cast<uv_stream_t*>(s->tcp()), &b, 1);
        log::notice("refused connection from {}: {}", ip,
                    verdict == ConnLimits::Verdict::total ? "max_connections reached"
                                                          : "max_connections_per_ip reached");
        return;  // the session's destructor closes the socket
    }
    sessions_[s.get()] = s;
    sessions_count_++;
    cm.smtp_connections.fetch_add(1, std::memory_order_relaxed);
    cm.smtp_open.fetch_add(1, std::memory_order_relaxed);
    s->start(s->tcp());
}

void Worker::session_closed(Session* s) {
    auto it = sessions_.find(s);
    if (it == sessions_.end()) return;
    limits_.release(s->remote_ip().str());
    auto keep = std::move(it->second);
    sessions_.erase(it);
    sessions_count_--;
    CoreMetrics::global().smtp_open.fetch_sub(1, std::memory_order_relaxed);
    maybe_stop();
}

void Worker::on_http_connection(uv_stream_t* server, bool tls) {
    if (shutting_down_ || !http_config()) return;
    auto c = std::make_shared<HttpConn>(*this, tls);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(c->tcp())) != 0) return;  // lost race
    auto& cm = CoreMetrics::global();
    if (cm.http_open.load(std::memory_order_relaxed) >= http_config()->max_connections) {
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Content-Length: 73\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
            "{\"error\":{\"status\":503,\"message\":\"too many API connections, try again\"}}\n";
        uv_buf_t b = uv_buf_init(const_cast<char*>(busy), sizeof busy - 1);
        if (!tls) uv_try_write(reinterpret_cast<uv_stream_t*>(c->tcp()), &b, 1);
        cm.count_http(HttpRoute::other, 503);
        log::notice("http: refused a connection: max_connections ({}) reached",
                    http_config()->max_connections);
        c->close();
        return;
    }
    http_conns_[c.get()] = c;
    sessions_count_++;  // the shutdown waits for requests in flight too
    CoreMetrics::global().http_open.fetch_add(1, std::memory_order_relaxed);
    c->start();
}

std::shared_ptr<const HttpConfig> Worker::http_config() {
    if (cfg_->http) http_cfg_ = cfg_->http;
    return http_cfg_;
}

namespace {

HttpRoute route_of(const std::string& path) {
    if (path == "/api/v1/send") return HttpRoute::send;
    if (path == "/api/v1/send/batch") return HttpRoute::batch;
    if (path == "/health") return HttpRoute::health;
    if (path == "/metrics") return HttpRoute::metrics;
    if (path.starts_with("/api/v1/admin/")) return HttpRoute::admin;
    if (path.starts_with("/unsubscribe/")) return HttpRoute::unsubscribe;
    return HttpRoute::other;
}

}  // namespace

void Worker::handle(HttpConn& conn, HttpRequest req, HttpRespond respond) {
    ApiEnv env;
    env.loop = &loop_;
    env.inbox = inbox_.get();
    env.cfg = cfg_;
    env.http = http_config();
    env.spool = &spool_;
    env.outbound = outbound_;
    env.suppressions = suppressions_;
    env.sessions = this;
    if (!conn.api_state()) conn.api_state() = std::make_shared<ApiConnState>();
    env.conn_state = conn.api_state();
    env.peer = conn.peer();
    env.tls = conn.tls();
    HttpRoute route = route_of(req.path);
    route_request(std::move(env), std::move(req),
                  [route, respond = std::move(respond)](HttpResponse r) {
                      CoreMetrics::global().count_http(route, r.status);
                      respond(std::move(r));
                  });
}

void Worker::http_closed(HttpConn* c) {
    auto it = http_conns_.find(c);
    if (it == http_conns_.end()) return;
    CoreMetrics::global().http_open.fetch_sub(1, std::memory_order_relaxed);
    // Freed on the next turn of the loop: the connection is still on the call stack.
    inbox_->post([keep = std::move(it->second)] {});
    http_conns_.erase(it);
    sessions_count_--;
    maybe_stop();
}

void Worker::local_session_started(const std::shared_ptr<Session>& s) {
    local_sessions_.emplace(s.get(), s);
    sessions_count_++;  // the shutdown waits for the API's messages in flight
}

void Worker::local_session_closed(Session* s) {
    if (local_sessions_.erase(s)) sessions_count_--;
    maybe_stop();
}

void Worker::set_config(std::shared_ptr<const ServerConfig> cfg) {
    inbox_->post([this, cfg = std::move(cfg)] { cfg_ = cfg; });
}

void Worker::begin_shutdown() {
    inbox_->post([this] {
        shutting_down_ = true;
        for (auto& l : listeners_) l->close();
        listeners_.clear();
        std::vector<std::shared_ptr<Session>> all;
        for (auto& [_, s] : sessions_) all.push_back(s);
        for (auto& s : all) s->shutdown_notice();
        std::vector<std::shared_ptr<HttpConn>> hc;
        for (auto& [_, c] : http_conns_) hc.push_back(c);
        for (auto& c : hc) c->shutdown_notice();
        std::vector<std::shared_ptr<Session>> local;
        for (auto& [_, s] : local_sessions_) local.push_back(s);
        for (auto& s : local) s->shutdown_notice();
    });
}

void Worker::force_close() {
    inbox_->post([this] {
        stopping_ = true;
        shutting_down_ = true;
        for (auto& l : listeners_) l->close();
        listeners_.clear();
        if (!sessions_.empty())
            log::warn("worker {}: closing {} connections still open at the shutdown deadline",
                      index_, sessions_.size());
        std::vector<std::shared_ptr<Session>> all;
        for (auto& [_, s] : sessions_) all.push_back(s);
        for (auto& s : all) s->force_close();
        std::vector<std::shared_ptr<HttpConn>> hc;
        for (auto& [_, c] : http_conns_) hc.push_back(c);
        for (auto& c : hc) c->close();
        std::vector<std::shared_ptr<Session>> local;
        for (auto& [_, s] : local_sessions_) local.push_back(s);
        for (auto& s : local) s->force_close();
        maybe_stop();
    });
}

void Worker::maybe_stop() {
    if (stopping_ && sessions_.empty() && http_conns_.empty() && local_sessions_.empty()) {
        inbox_->close();
        uv_stop(&loop_);
    }
}

}  // namespace kasi
