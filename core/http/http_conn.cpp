#include "core/http/http_conn.h"

#include "core/log/log.h"
#include "core/tls/tls_context.h"
#include "core/util/uv_write.h"

namespace kasi {

namespace {

constexpr size_t read_chunk = 64 * 1024;
constexpr size_t max_write_backlog = 1 << 20;  // unsent answers before reading pauses

}  // namespace

HttpConn::HttpConn(HttpConnHost& host, bool tls) : host_(host), cfg_(host.http_config()) {
    uv_tcp_init(host_.loop(), tcp_.get());
    tcp_->data = this;
    if (tls && cfg_->tls)
        tls_ = std::make_unique<TlsConn>(cfg_->tls->default_ctx(), TlsConn::Role::server);
    parser_.set_limits(cfg_->max_header_bytes, cfg_->max_body_bytes, cfg_->max_batch_bytes);
}

HttpConn::~HttpConn() = default;

void HttpConn::start() {
    sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        peer_ = IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    uv_tcp_nodelay(tcp_.get(), 1);
    uv_timer_init(host_.loop(), timer_.get());
    timer_->data = this;
    arm_timer(false);
    start_reading();
}

void HttpConn::start_reading() {
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_.get()),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* c = static_cast<HttpConn*>(h->data);
            c->read_buf_.resize(read_chunk);
            buf->base = c->read_buf_.data();
            buf->len = c->read_buf_.size();
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
            static_cast<HttpConn*>(st->data)->on_read(n, buf);
        });
}

bool HttpConn::backlogged() const {
    return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(tcp_.get())) >
           max_write_backlog;
}

void HttpConn::arm_timer(bool request_started) {
    if (!timer_.initialized()) return;
    uint64_t ms = uint64_t(request_started ? cfg_->request_timeout_s : cfg_->idle_timeout_s) * 1000;
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
            auto* c = static_cast<HttpConn*>(t->data);
            if (c->busy_) return;  // the answer is on its way (the spool, the delivery loop)
            if (c->parser_.in_progress())
                c->answer(HttpResponse::error(408, "", "the request took too long to arrive"),
                          false);
            else
                c->close();
        },
        ms, 0);
}

void HttpConn::on_read(ssize_t n, const uv_buf_t* buf) {
    if (closed_) return;
    if (n < 0) {
        close();
        return;
    }
    if (n == 0) return;
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
    if (tls_) {
        bool ok = tls_->feed(buf->base, size_t(n), in_);
        std::string out = tls_->take_output();
        if (!out.empty()) send_raw(std::move(out));
        if (!ok) {
            log::info("http: TLS from {} failed: {}", peer_.str(), tls_->error());
            close();
            return;
        }
    } else {
        in_.append(buf->base, size_t(n));
    }
    process();
}

void HttpConn::process() {
    if (processing_) return;  // an answer given synchronously: the loop below goes on
    processing_ = true;
    while (!busy_ && !closing_ && !closed_ && in_pos_ < in_.size()) {
        if (backlogged()) {  // pipelined requests from a client that does not read
            uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
            waiting_drain_ = true;
            break;
        }
        bool was_started = parser_.in_progress();
        size_t used = 0;
        auto st = parser_.feed(in_.data() + in_pos_, in_.size() - in_pos_, used);
        in_pos_ += used;
        if (st == RequestParser::State::error) {
            processing_ = false;
            answer(HttpResponse::error(parser_.error_status(), "", parser_.error_text()), false);
            return;
        }
        if (st == RequestParser::State::more) {
            if (!was_started && parser_.in_progress()) arm_timer(true);
            if (parser_.take_continue()) write("HTTP/1.1 100 Continue\r\n\r\n");
            break;
        }
        HttpRequest req = parser_.take();
        parser_.reset();
        busy_ = true;
        head_ = req.method == "HEAD";
        bool keep = req.keep_alive && !shutting_down_;
        uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
        std::weak_ptr<HttpConn> weak = weak_from_this();
        host_.handle(*this, std::move(req), [weak, keep](HttpResponse r) {
            if (auto c = weak.lock()) c->answer(std::move(r), keep);
        });
    }
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
    processing_ = false;
}

void HttpConn::answer(HttpResponse r, bool keep_alive) {
    if (closed_) return;
    if (shutting_down_) keep_alive = false;
    write(serialize_response(r, keep_alive, head_));
    busy_ = false;
    head_ = false;
    if (!keep_alive) {
        closing_ = true;
        if (writes_pending_ == 0) close();
        return;
    }
    arm_timer(false);
    if (backlogged()) {
        waiting_drain_ = true;  // the client does not read its answers: wait for it
        return;
    }
    start_reading();
    process();  // a pipelined request may already be here
}

void HttpConn::write(std::string data) {
    if (closed_ || data.empty()) return;
    if (tls_) {
        if (!tls_->write(data)) {
            close();
            return;
        }
        data = tls_->take_output();
        if (data.empty()) return;  // held until the handshake completes
    }
    send_raw(std::move(data));
}

void HttpConn::send_raw(std::string data) {
    if (closed_ || data.empty()) return;
    ++writes_pending_;
    // a write that cannot even be queued answers at once with the error: close
    write_owned(reinterpret_cast<uv_stream_t*>(tcp_.get()), std::move(data),
                [self = shared_from_this()](int status) {
                    auto& c = *self;
                    --c.writes_pending_;
                    if (status < 0 || (c.closing_ && c.writes_pending_ == 0)) {
                        c.close();
                    } else if (c.waiting_drain_ && !c.busy_ && !c.backlogged()) {
                        c.waiting_drain_ = false;
                        c.start_reading();
                        c.process();
                    }
                });
}

void HttpConn::shutdown_notice() {
    shutting_down_ = true;
    if (idle()) close();
}

void HttpConn::close() {
    if (closed_) return;
    closed_ = true;
    if (tls_ && writes_pending_ == 0) {
        tls_->shutdown();
        std::string out = tls_->take_output();
        if (!out.empty()) {
            uv_buf_t b = uv_buf_init(out.data(), unsigned(out.size()));
            uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_.get()), &b, 1);
        }
    }
    timer_.close();
    tcp_.close();
    host_.http_closed(this);
}

}  // namespace kasi
