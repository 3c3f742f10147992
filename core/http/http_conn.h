// One HTTP/1.1 connection on a worker loop: reads (through TLS when the listener is
// listen_tls), parses one request at a time, hands it to the handler and writes the answer.
// Keep-alive and pipelining: requests that arrive while one is being answered wait in the
// buffer (reading pauses until the answer is written). Timeouts: idle_timeout between
// requests (the connection is closed), request_timeout from a request's first byte to its
// last (408, then closed). A parse error or an oversized request is answered (400, 413,
// 431, 505) and the connection closed, since the rest of the stream cannot be trusted.
//
// Lifetime: the worker owns connections through shared_ptr; an answer that comes later
// (the spool, the delivery loop) reaches the connection through a weak_ptr and is dropped
// if the client has gone.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "core/http/http_config.h"
#include "core/http/http_request.h"
#include "core/http/http_response.h"
#include "core/tls/tls_conn.h"
#include "core/util/ip.h"
#include "core/util/uv_handle.h"

namespace kasi {

class HttpConn;
struct ApiConnState;  // what the API keeps for the length of a connection (core/http/api.h)

// What the connection asks of its owner.
class HttpConnHost {
  public:
    virtual ~HttpConnHost() = default;
    virtual uv_loop_t* loop() = 0;
    virtual std::shared_ptr<const HttpConfig> http_config() = 0;
    // Answers `req` through `respond` (now or later, on this loop).
    virtual void handle(HttpConn& conn, HttpRequest req, HttpRespond respond) = 0;
    virtual void http_closed(HttpConn* c) = 0;
};

class HttpConn : public std::enable_shared_from_this<HttpConn> {
  public:
    HttpConn(HttpConnHost& host, bool tls);
    ~HttpConn();
    uv_tcp_t* tcp() { return tcp_.get(); }
    void start();  // after uv_accept into tcp()
    void close();
    // Graceful stop: close now if idle, else after the current answer.
    void shutdown_notice();
    bool idle() const { return !busy_ && !parser_.in_progress(); }

    const IpAddr& peer() const { return peer_; }
    bool tls() const { return tls_ != nullptr; }
    std::shared_ptr<ApiConnState>& api_state() { return api_state_; }

  private:
    void on_read(ssize_t n, const uv_buf_t* buf);
    void process();
    void answer(HttpResponse r, bool keep_alive);
    void write(std::string data);     // plaintext: through TLS when there is TLS
    void send_raw(std::string data);  // bytes as they go on the wire
    void arm_timer(bool request_started);
    void start_reading();
    bool backlogged() const;  // too many answers the client has not read yet

    HttpConnHost& host_;
    std::shared_ptr<const HttpConfig> cfg_;
    UvHandle<uv_tcp_t> tcp_;
    UvHandle<uv_timer_t> timer_;
    std::unique_ptr<TlsConn> tls_;
    IpAddr peer_;
    RequestParser parser_;
    std::string in_;
    size_t in_pos_ = 0;
    std::string read_buf_;
    bool busy_ = false;     // a request is being answered
    bool closing_ = false;  // close once the pending writes are done
    bool closed_ = false;
    bool shutting_down_ = false;
    bool head_ = false;           // the request being answered is a HEAD
    bool waiting_drain_ = false;  // reading paused until the client reads its answers
    bool processing_ = false;     // inside process(): pipelined requests answered at once
                                  // do not recurse
    size_t writes_pending_ = 0;
    std::shared_ptr<ApiConnState> api_state_;
};

}  // namespace kasi
