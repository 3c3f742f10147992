#include "core/smtp/server/session.h"

#include <arpa/inet.h>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/server/loop_inbox.h"
#include "core/smtp/proxy_protocol.h"
#include "core/smtp/reply.h"
#include "core/tls/tls_context.h"
#include "core/util/clock.h"
#include "core/util/ids.h"
#include "core/util/uv_write.h"

namespace kasi {

namespace {

constexpr size_t read_chunk = 64 * 1024;

}  // namespace

Session::Session(SessionHost& host, SessionConfig cfg, bool implicit_tls)
    : host_(host),
      cfg_(std::move(cfg)),
      call_{Hook::connect_init, this},
      implicit_tls_(implicit_tls) {
    if (!cfg_.settings) cfg_.settings = std::make_shared<const SessionSettings>();
    uuid_ = new_uuid();
    start_ms_ = now_ms();
}

Session::~Session() = default;

void Session::start(uv_tcp_t*) {
    runner_ = std::make_shared<HookRunner>(host_.loop(), *this);
    runner_->set_resolver(host_.resolver_ref());
    tcp_->data = this;
    sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        remote_ip_ = IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
        remote_port_ =
            ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    len = sizeof ss;
    if (uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        local_ip_ = IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).str();
        local_port_ =
            ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    uv_tcp_nodelay(tcp_.get(), 1);
    uv_timer_init(host_.loop(), idle_timer_.get());
    idle_timer_->data = this;
    uv_timer_init(host_.loop(), pause_timer_.get());
    pause_timer_->data = this;
    touch();
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_.get()),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* s = static_cast<Session*>(h->data);
            s->read_buf_.resize(read_chunk);
            buf->base = s->read_buf_.data();
            buf->len = s->read_buf_.size();
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
            static_cast<Session*>(st->data)->on_read(n, buf);
        });
    log::debug("[{}] connect ip={} port={} local_ip={} local_port={}", uuid_, remote_ip_.str(),
               remote_port_, local_ip_, local_port_);
    const auto& st = settings();
    if (st.haproxy_enabled && st.haproxy_hosts.contains(remote_ip_)) {
        phase_ = Phase::proxy;  // the header comes first; connect_init runs after it
        touch();
        return;
    }
    run_hook(Hook::connect_init);
}

void Session::start_local(LocalClient client) {
    local_ = std::make_unique<LocalClient>(std::move(client));
    runner_ = std::make_shared<HookRunner>(host_.loop(), *this);
    runner_->set_resolver(host_.resolver_ref());
    remote_ip_ = local_->ip;
    remote_port_ = local_->port;
    relaying_ = true;  // the API authorised the client (token or trusted network)
    notes_ = local_->notes;
    uv_timer_init(host_.loop(), idle_timer_.get());
    idle_timer_->data = this;
    uv_timer_init(host_.loop(), pause_timer_.get());
    pause_timer_->data = this;
    touch();
    log::debug("[{}] local session for {} ({})", uuid_, remote_ip_.str(), local_->who);
    shutting_down_ = !host_.accepting();  // then every command but QUIT gets 421
    host_.local_session_started(shared_from_this());
    run_hook(Hook::connect_init);
}

void Session::feed_local(std::string_view bytes) {
    if (!local_ || closed_) return;
    in_.append(bytes);
    touch();
    if (processing_ || in_output_) {
        local_more_ = true;  // the running pass (or the one after the write) takes it
        return;
    }
    process_input();
}

void Session::preset_transaction(std::string uuid, std::map<std::string, std::string> notes) {
    preset_.emplace(std::move(uuid), std::move(notes));
}

void Session::touch() {
    if (closed_) return;
    bool handshaking = tls_conn_ && !tls_;
    uint64_t ms = handshaking && tls_handshake_timeout_ms_ ? tls_handshake_timeout_ms_
                  : phase_ == Phase::proxy ? uint64_t(settings().proxy_timeout_s) * 1000
                                           : uint64_t(settings().inactivity_timeout_s) * 1000;
    uv_timer_start(
        idle_timer_.get(),
        [](uv_timer_t* t) {
            auto* s = static_cast<Session*>(t->data);
            if (!s || s->closed_) return;
            if (s->phase_ == Phase::proxy) {
                s->reply(421, "PROXY timeout", "4.4.2");
                s->close();
                return;
            }
            if (s->tls_conn_ && !s->tls_) {  // nothing can be said outside the handshake
                log::info("[{}] TLS handshake timeout from {}", s->uuid_, s->remote_ip_.str());
                s->out_.clear();
                s->close(false);
                return;
            }
            s->reply(421, "timeout", "4.4.2");
            s->close();
        },
        ms, 0);
}

void Session::on_read(ssize_t n, const uv_buf_t* buf) {
    if (n < 0) {
        if (n != UV_EOF) log::debug("[{}] read error: {}", uuid_, uv_strerror(int(n)));
        uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
        // The client is gone: nothing more can be answered.
        out_.clear();
        close(false);
        return;
    }
    if (n == 0 || closed_) return;
    if (phase_ == Phase::proxy) {
        in_.append(buf->base, size_t(n));
        proxy_input();
        return;
    }
    touch();
    if (tls_conn_) {
        if (tls_input(buf->base, size_t(n))) process_input();
        return;
    }
    if (implicit_tls_) {  // the tls plugin starts TLS at connect_init; keep the ClientHello
        raw_pending_.append(buf->base, size_t(n));
        return;
    }
    if (in_pos_ == in_.size() && n >= 3 && buf->base[0] == 0x16 && buf->base[1] == 0x03) {
        // A TLS ClientHello on a clear-text port
        log::info("[{}] TLS attempted on the plain-text port {} by {}", uuid_, local_port_,
                  remote_ip_.str());
        reply(501, "SSL attempted over a non-SSL socket", "5.5.0");
        close();
        return;
    }
    if (phase_ == Phase::connecting) early_talker_ = true;
    in_.append(buf->base, size_t(n));
    process_input();
}

void Session::proxy_input() {
    ProxyHeader h;
    size_t used = 0;
    std::string err;
    switch (parse_proxy_header(in_, h, used, err)) {
        case ProxyParse::need_more:
            return;  // the proxy timeout still runs
        case ProxyParse::error:
            log::notice("[{}] bad PROXY header from {}: {}", uuid_, remote_ip_.str(), err);
            reply(421, "Invalid PROXY format", "5.5.2");
            close();
            return;
        case ProxyParse::ok:
            break;
    }
    proxy_ip_ = remote_ip_.str();
    if (h.has_addresses) {
        remote_ip_ = h.src;
        remote_port_ = h.src_port;
        local_ip_ = h.dst.str();
        local_port_ = h.dst_port;
    }
    log::info("[{}] PROXY v{} from {}: client {} port {}", uuid_, h.version, proxy_ip_,
              remote_ip_.str(), remote_port_);
    std::string rest = in_.substr(used);
    in_.clear();
    in_pos_ = 0;
    phase_ = Phase::connecting;
    touch();
    if (implicit_tls_) {
        raw_pending_ = std::move(rest);  // a ClientHello right behind the header
    } else if (!rest.empty()) {
        early_talker_ = true;
        in_ = std::move(rest);
    }
    run_hook(Hook::connect_init);
}

bool Session::tls_input(const char* data, size_t n) {
    std::string plain;
    bool ok = tls_conn_->feed(data, n, plain);
    write_raw(tls_conn_->take_output());
    if (!ok) {
        log::info("[{}] TLS error with {}: {}", uuid_, remote_ip_.str(), tls_conn_->error());
        out_.clear();
        close(false);
        return false;
    }
    if (!tls_ && tls_conn_->handshake_done()) {
        tls_ = true;
        tls_cipher_ = tls_conn_->cipher();
        tls_version_ = tls_conn_->version();
        std::string sni = tls_conn_->server_name();
        log::info("[{}] TLS established with {}: {} {}{}", uuid_, remote_ip_.str(), tls_version_,
                  tls_cipher_, sni.empty() ? "" : " sni=" + sni);
        touch();
        flush();  // a reply written during the handshake (the implicit-TLS banner)
    }
    if (tls_conn_->peer_closed()) {  // close_notify: the client is done
        out_.clear();
        close(false);
        return false;
    }
    if (plain.empty()) return false;
    if (phase_ == Phase::connecting) early_talker_ = true;
    in_.append(plain);
    return true;
}

bool Session::start_tls(std::shared_ptr<const TlsServerContext> ctx,
                        uint32_t handshake_timeout_ms) {
    if (tls_conn_ || closed_ || !ctx) return false;
    flush();               // the 220 goes out before the switch
    in_pos_ = in_.size();  // RFC 3207 §4.2: nothing pipelined after STARTTLS counts
    hello_host_.clear();
    esmtp_ = false;
    reset_transaction();
    caps_.clear();
    if (!auth_user_.empty()) {
        auth_user_.clear();
        relaying_ = relaying_before_auth_;
    }
    tls_ctx_ = std::move(ctx);
    tls_handshake_timeout_ms_ = handshake_timeout_ms;
    tls_conn_ = std::make_unique<TlsConn>(tls_ctx_->default_ctx(), TlsConn::Role::server);
    touch();
    if (!raw_pending_.empty()) {
        std::string early;
        early.swap(raw_pending_);
        tls_input(early.data(), early.size());
    }
    return true;
}

bool Session::take_line(std::string_view& line) {
    std::string_view avail(in_.data() + in_pos_, in_.size() - in_pos_);
    size_t nl = avail.find('\n');
    if (nl == std::string_view::npos) return false;
    line = avail.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    in_pos_ += nl + 1;
    return true;
}

void Session::process_input() {
    if (processing_ || closed_) return;
    auto keep = shared_from_this();
    // Local input may arrive while the replies are written (the API answers a reply with
    // its next commands): it is taken in another pass here rather than by recursion.
    do {
        local_more_ = false;
        processing_ = true;
        process_commands();
        processing_ = false;
        flush();
    } while (local_more_ && !closed_);
    if (disconnect_ && !busy_ && !paused_) close();
}

void Session::process_commands() {
    while (!busy_ && !paused_ && !closed_ && !disconnect_) {
        if (phase_ == Phase::data) {
            auto st = data_.feed(in_, in_pos_, txn_->body);
            if (st == DataReader::Status::more) break;
            if (st == DataReader::Status::bare_lf || st == DataReader::Status::bare_cr) {
                refuse_line_ends();
                break;
            }
            data_finished();
            continue;
        }
        if (phase_ == Phase::bdat) {
            size_t take = size_t(std::min<uint64_t>(bdat_left_, in_.size() - in_pos_));
            std::string_view chunk(in_.data() + in_pos_, take);
            bdat_lines_.feed(chunk);  // bare CR or LF anywhere in the message (memchr scans)
            if (!bdat_discard_ && txn_) {
                if (txn_->body.size() + take > settings().max_bytes) {
                    txn_->too_big = true;
                    txn_->body.clear();
                }
                if (!txn_->too_big) txn_->body.append(chunk);
            }
            in_pos_ += take;
            bdat_left_ -= take;
            if (bdat_left_ > 0) break;
            bdat_chunk_done();
            continue;
        }
        if (phase_ != Phase::command) break;
        std::string_view line;
        if (!take_line(line)) {
            if (in_.size() - in_pos_ > size_t(settings().max_line_length)) {
                reply(521, "Command line too long", "5.5.2");
                disconnect_after_reply();
            }
            break;
        }
        if (line.size() > size_t(settings().max_line_length)) {
            reply(521, "Command line too long", "5.5.2");
            disconnect_after_reply();
            break;
        }
        if (line_handler_) {
            auto h = std::move(line_handler_);
            line_handler_ = nullptr;
            h(line);
            continue;
        }
        dispatch(line);
    }
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ > 65536) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
}

void Session::reply(int code, std::string_view text, std::string_view enhanced) {
    if (closed_) return;
    bool enh = settings().enhanced_status_codes && code != 220 && code != 354 && code != 334 &&
               enhanced != "-";
    std::string_view e = enh ? (enhanced.empty() ? default_enhanced(code) : enhanced) : "";
    format_reply(out_, code, e, text);
    if (code >= 400) last_reject_ = fmt::format("{} {}", code, text.substr(0, text.find('\n')));
}

void Session::flush() {
    if (out_.empty() || closed_) return;
    if (local_) {
        std::string data;
        data.swap(out_);
        in_output_ = true;
        if (local_->output) local_->output(data);
        in_output_ = false;
        return;
    }
    if (!tcp_.get()) return;
    if (tls_conn_) {
        bool ok = tls_conn_->write(out_);
        out_.clear();
        write_raw(tls_conn_->take_output());
        if (!ok) close(false);
        return;
    }
    write_raw(out_);
    out_.clear();  // keeps its capacity for the next replies
}

// Writes now if the socket takes it all (the usual case); what is left is copied into a
// write request that libuv completes later, in order.
void Session::write_raw(std::string_view data) {
    if (data.empty() || !tcp_.get() || !tcp_.initialized()) return;
    int rc = write_now_or_queue(reinterpret_cast<uv_stream_t*>(tcp_.get()), data,
                                [keep = shared_from_this()](int) {});
    if (rc != 0 && !closed_) close(false);
}

void Session::set_auth_user(std::string user) {
    if (auth_user_.empty()) relaying_before_auth_ = relaying_;
    auth_user_ = std::move(user);
    relaying_ = true;
}

void Session::pause_then(uint64_t ms, std::function<void()> then) {
    paused_ = true;
    after_pause_ = std::move(then);
    uv_timer_start(
        pause_timer_.get(),
        [](uv_timer_t* t) {
            auto* s = static_cast<Session*>(t->data);
            if (!s || s->closed_ || s->phase_ == Phase::closing) return;
            auto keep = s->shared_from_this();
            s->paused_ = false;
            auto fn = std::move(s->after_pause_);
            s->after_pause_ = nullptr;
            if (fn) fn();
            if (!s->processing_) s->process_input();
        },
        ms, 0);
}

void Session::run_hook(Hook h, std::string_view arg, const Address* a) {
    busy_ = true;
    call_.hook = h;
    call_.arg = arg;
    call_.address = a;
    call_.denial = nullptr;
    call_.denied_by = {};
    call_.denied_hook = Hook::count_;
    runner_->run(cfg_.hooks, call_);
}

void Session::send_banner() {
    const auto& s = settings();
    phase_ = Phase::command;
    std::string tag = uuid_.substr(0, size_t(s.banner_chars));
    if (!s.greeting.empty()) {
        std::string text;
        for (size_t i = 0; i < s.greeting.size(); ++i) text += (i ? "\n" : "") + s.greeting[i];
        reply(220, text);
    } else {
        reply(220,
              fmt::format("{} ESMTP Kasi{} ready{}", s.me, s.show_version ? "/" KASI_VERSION : "",
                          tag.empty() ? "" : " (" + tag + ")"));
    }
}

void Session::reset_transaction() {
    if (txn_) {
        HookCall c{Hook::reset_transaction, this};
        for (const auto& reg : cfg_.hooks->at(Hook::reset_transaction)) reg.fn(c);
    }
    txn_.reset();
}

void Session::shutdown_notice() {
    shutting_down_ = true;
    if (closed_ || busy_ || phase_ != Phase::command || in_transaction()) return;
    reply(421, fmt::format("{} Service shutting down, try again later", settings().me), "4.3.2");
    flush();
    close();
}

void Session::force_close() {
    if (closed_ || phase_ == Phase::closing) return;
    out_.clear();
    close(false);
}

void Session::close(bool after_flush) {
    if (closed_ || phase_ == Phase::closing) return;
    if (after_flush) flush();
    if (closed_ || phase_ == Phase::closing) return;  // the flush failed and closed already
    phase_ = Phase::closing;
    runner_->cancel();
    busy_ = true;
    reset_transaction();
    log_disconnect();
    run_hook(Hook::disconnect);
}

// After the disconnect hook: say close_notify on TLS, let queued writes drain through
// uv_shutdown, then close the handle; on_closed() tells the worker.
void Session::finish_close() {
    closed_ = true;
    uv_timer_stop(idle_timer_.get());
    uv_timer_stop(pause_timer_.get());
    if (local_) {  // told on the next loop turn: the owner may drop the session then
        auto self = shared_from_this();
        host_.inbox().post([self] {
            auto closed = std::move(self->local_->closed);
            self->local_->output = nullptr;
            self->local_->closed = nullptr;
            if (closed) closed();
            self->host_.local_session_closed(self.get());
        });
        return;
    }
    if (tls_conn_ && tls_) {
        tls_conn_->shutdown();
        write_raw(tls_conn_->take_output());
    }
    auto self = shared_from_this();
    auto req = std::make_unique<uv_shutdown_t>();
    req->data = this;
    int rc = uv_shutdown(req.get(), reinterpret_cast<uv_stream_t*>(tcp_.get()),
                         [](uv_shutdown_t* rq, int) {
                             std::unique_ptr<uv_shutdown_t> own(rq);
                             auto keep = static_cast<Session*>(rq->data)->shared_from_this();
                             keep->tcp_.close([keep] { keep->on_closed(); });
                         });
    if (rc == 0)
        req.release();
    else
        tcp_.close([self] { self->on_closed(); });
}

void Session::on_closed() {
    host_.session_closed(this);
}

void Session::log_disconnect() {
    double secs = double(now_ms() - start_ms_) / 1000.0;
    log::info(
        "[{}] [core] disconnect ip={} rdns={} helo={} relay={} early={} esmtp={} tls={} pipe={} "
        "errors={} txns={} rcpts={}/{}/{} msgs={}/{}/{} bytes={} lr=\"{}\" time={:.3f}",
        uuid_, remote_ip_.str(), remote_host_.empty() ? rdns_status_ : remote_host_, hello_host_,
        relaying_ ? 'Y' : 'N', early_talker_ ? 'Y' : 'N', esmtp_ ? 'Y' : 'N', tls_ ? 'Y' : 'N',
        pipelined_data_ ? 'Y' : 'N', errors_, txn_count_, rcpt_ok_, rcpt_tempfail_, rcpt_reject_,
        msg_ok_, msg_tempfail_, msg_reject_, bytes_, last_reject_, secs);
}

}  // namespace kasi
