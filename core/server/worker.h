// A worker: one thread, one libuv loop, its share of the connections. It accepts on its
// copies of the listening sockets, owns its sessions, and is reached from other threads
// only through its LoopInbox.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/dns/resolver.h"
#include "core/http/http_conn.h"
#include "core/server/conn_limits.h"
#include "core/server/loop_inbox.h"
#include "core/server/server_config.h"
#include "core/smtp/server/session.h"
#include "core/spool/intake.h"

namespace kasi {

class SuppressionService;

class Outbound;

class Worker : public SessionHost, public HttpConnHost {
  public:
    struct Listen {
        int fd;  // owned by the worker (a dup)
        bool implicit_tls;
        bool http = false;  // the HTTP API (http.ini), not SMTP
    };

    // `spool` and `outbound` serve the admin API; messages go in through `intake`.
    Worker(int index, std::shared_ptr<const ServerConfig> cfg, Spool& spool, Intake& intake,
           ConnLimits& limits, Outbound* outbound, SuppressionService* suppressions = nullptr);
    ~Worker() override;

    void start(std::vector<Listen> listens);
    void join();
    // Thread-safe requests:
    void set_config(std::shared_ptr<const ServerConfig> cfg);
    void begin_shutdown();  // stop accepting; idle sessions get 421; others finish
    void force_close();     // close whatever is left, then stop the loop
    int session_count() const { return sessions_count_.load(); }

    // SessionHost
    uv_loop_t* loop() override { return &loop_; }
    Intake& intake() override { return intake_; }
    Resolver* resolver() override { return resolver_.get(); }
    std::weak_ptr<Resolver> resolver_ref() override { return resolver_; }
    LoopInbox& inbox() override { return *inbox_; }
    RecipientGate* recipient_gate() override;
    void session_closed(Session* s) override;
    bool accepting() override { return !shutting_down_; }
    void local_session_started(const std::shared_ptr<Session>& s) override;
    void local_session_closed(Session* s) override;

    // HttpConnHost
    std::shared_ptr<const HttpConfig> http_config() override;
    void handle(HttpConn& conn, HttpRequest req, HttpRespond respond) override;
    void http_closed(HttpConn* c) override;

  private:
    void run(std::vector<Listen> listens);
    void on_connection(uv_stream_t* server, bool implicit_tls);
    void on_http_connection(uv_stream_t* server, bool tls);
    void maybe_stop();

    int index_;
    std::shared_ptr<const ServerConfig> cfg_;
    Spool& spool_;
    Intake& intake_;
    ConnLimits& limits_;
    Outbound* outbound_;
    SuppressionService* suppressions_;
    std::shared_ptr<Resolver> resolver_;  // this loop's; created on the loop thread
    uv_loop_t loop_{};
    std::unique_ptr<LoopInbox> inbox_;
    std::thread thread_;
    std::vector<std::unique_ptr<UvHandle<uv_tcp_t>>> listeners_;
    struct ListenerKind {
        Worker* worker;
        bool tls, http;
    };
    std::vector<std::unique_ptr<ListenerKind>> listener_kinds_;
    std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;
    std::unordered_map<HttpConn*, std::shared_ptr<HttpConn>> http_conns_;
    std::unordered_map<Session*, std::shared_ptr<Session>> local_sessions_;  // the API's
    std::shared_ptr<const HttpConfig> http_cfg_;  // the last one seen (the listeners' config)
    std::atomic<int> sessions_count_{0};
    bool shutting_down_ = false;
    bool stopping_ = false;
    std::atomic<bool> ready_{false};
};

}  // namespace kasi
