#include "core/smtp/client/smtp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log/log.h"
#include "core/util/base64.h"
#include "core/util/strings.h"
#include "core/util/uv_write.h"

namespace kasi {

namespace {

void to_sockaddr(const IpAddr& ip, uint16_t port, sockaddr_storage& ss) {
    std::memset(&ss, 0, sizeof ss);
    if (ip.v6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        std::memcpy(&s6->sin6_addr, ip.b.data(), 16);
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        std::memcpy(&s4->sin_addr, ip.b.data(), 4);
    }
}

SmtpReply synthetic(int code, std::string enhanced, std::string text) {
    SmtpReply r;
    r.code = code;
    r.enhanced = std::move(enhanced);
    r.lines.push_back(std::move(text));
    return r;
}

bool needs_utf8(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

}  // namespace

SmtpClient::SmtpClient(uv_loop_t* loop, ClientOptions opts, Handlers h)
    : loop_(loop), opts_(std::move(opts)), h_(std::move(h)) {
    uv_timer_init(loop_, timer_.get());
    timer_->data = this;
}

SmtpClient::~SmtpClient() {
    close_socket();
}

void SmtpClient::start() {
    connect_next();
}

void SmtpClient::connect_next() {
    if (next_endpoint_ >= opts_.endpoints.size()) {
        fail(opts_.endpoints.empty() ? "no address to connect to"
                                     : fmt::format("could not connect to any of {} address(es); "
                                                   "last: {}",
                                                   opts_.endpoints.size(), last_connect_error_));
        return;
    }
    close_socket();
    info_.endpoint = opts_.endpoints[next_endpoint_++];
    tcp_ = std::make_unique<UvHandle<uv_tcp_t>>();
    uv_tcp_init(loop_, tcp_->get());
    (*tcp_)->data = this;
    if (opts_.bind) {
        sockaddr_storage bs;
        to_sockaddr(*opts_.bind, 0, bs);
        if (int rc = uv_tcp_bind(tcp_->get(), reinterpret_cast<sockaddr*>(&bs), 0); rc != 0) {
            last_connect_error_ = fmt::format("bind {}: {}", opts_.bind->str(), uv_strerror(rc));
            connect_next();
            return;
        }
    }
    sockaddr_storage ss;
    to_sockaddr(info_.endpoint.ip, info_.endpoint.port, ss);
    connect_req_ = std::make_unique<uv_connect_t>();
    connect_req_->data = this;
    state_ = State::connecting;
    int rc = uv_tcp_connect(connect_req_.get(), tcp_->get(), reinterpret_cast<sockaddr*>(&ss),
                            [](uv_connect_t* req, int status) {
                                if (!req->data) {
                                    std::unique_ptr<uv_connect_t> own(req);
                                    return;
                                }
                                static_cast<SmtpClient*>(req->data)->on_connected(status);
                            });
    if (rc != 0) {
        last_connect_error_ = fmt::format("{}: {}", info_.endpoint.ip.str(), uv_strerror(rc));
        connect_req_.reset();
        connect_next();
        return;
    }
    arm(opts_.timeouts.connect);
}

void SmtpClient::on_connected(int status) {
    auto keep = shared_from_this();
    connect_req_.reset();
    if (status != 0) {
        last_connect_error_ = fmt::format("{}:{}: {}", info_.endpoint.ip.str(), info_.endpoint.port,
                                          uv_strerror(status));
        connect_next();
        return;
    }
    uv_tcp_nodelay(tcp_->get(), 1);
    sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(tcp_->get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        info_.local_ip = IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).str();
    state_ = State::greeting;
    arm(opts_.timeouts.greeting);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_->get()),
        [](uv_handle_t* hd, size_t, uv_buf_t* buf) {
            auto* c = static_cast<SmtpClient*>(hd->data);
            c->read_buf_.resize(64 * 1024);
            buf->base = c->read_buf_.data();
            buf->len = c->read_buf_.size();
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
            if (st->data) static_cast<SmtpClient*>(st->data)->on_read(n, buf);
        });
}

void SmtpClient::arm(int ms) {
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
            auto* c = static_cast<SmtpClient*>(t->data);
            if (!c) return;
            auto keep = c->shared_from_this();
            if (c->state_ == State::connecting) {
                c->last_connect_error_ =
                    fmt::format("{}:{}: connection timed out", c->info_.endpoint.ip.str(),
                                c->info_.endpoint.port);
                c->connect_next();
                return;
            }
            c->fail(fmt::format("timeout waiting for the server ({})", c->state_name()),
                    c->state_ == State::handshake);
        },
        uint64_t(ms), 0);
}

void SmtpClient::on_read(ssize_t n, const uv_buf_t* buf) {
    auto keep = shared_from_this();
    if (n < 0) {
        fail(n == UV_EOF ? "connection closed by the server"
                         : fmt::format("read error: {}", uv_strerror(int(n))),
             state_ == State::handshake);
        return;
    }
    if (n == 0 || state_ == State::closed) return;
    std::string_view data(buf->base, size_t(n));
    std::string plain;
    if (tls_) {
        if (!tls_->feed(data.data(), data.size(), plain)) {
            bool hs = state_ == State::handshake;
            std::string err = tls_->error();
            write_plain(tls_->take_output());
            fail(fmt::format("TLS error: {}", err), hs);
            return;
        }
        write_plain(tls_->take_output());
        if (state_ == State::handshake) {
            if (!tls_->handshake_done()) return;
            info_.tls_version = tls_->version();
            info_.tls_cipher = tls_->cipher();
            info_.tls_verified = SSL_get_verify_result(tls_->ssl()) == X509_V_OK &&
                                 SSL_get0_peer_certificate(tls_->ssl()) != nullptr;
            if (opts_.tls == TlsMode::required && !info_.tls_verified) {
                fail(
                    fmt::format("the certificate of {} did not verify: {}", info_.endpoint.mx_host,
                                X509_verify_cert_error_string(SSL_get_verify_result(tls_->ssl()))));
                return;
            }
            send_ehlo();
        }
        if (plain.empty()) return;
        data = plain;
    }
    if (!parser_.feed(data)) {
        fail(fmt::format("bad reply from the server: {}", parser_.error()));
        return;
    }
    while (parser_.has_reply() && state_ != State::closed) on_reply(parser_.take());
}

void SmtpClient::write_plain(std::string_view data) {
    if (data.empty() || !tcp_ || !tcp_->initialized() || state_ == State::closed) return;
    // a failed stream is reported by the read side
    write_now_or_queue(reinterpret_cast<uv_stream_t*>(tcp_->get()), data);
}

void SmtpClient::write(std::string_view s) {
    if (tls_) {
        tls_->write(s);
        write_plain(tls_->take_output());
        return;
    }
    write_plain(s);
}

void SmtpClient::send_ehlo() {
    state_ = State::ehlo;
    arm(opts_.timeouts.ehlo);
    write(fmt::format("{} {}\r\n", opts_.lmtp ? "LHLO" : "EHLO", opts_.helo));
}

void SmtpClient::on_reply(SmtpReply r) {
    if (state_ == State::txn || state_ == State::body) return on_txn_reply(r);
    on_session_reply(r);
}

void SmtpClient::on_session_reply(SmtpReply& r) {
    switch (state_) {
        case State::greeting:
            if (r.code != 220) {
                info_.refused_by = r;
                return fail(fmt::format("greeting: {} {}", r.code, r.text()));
            }
            return send_ehlo();
        case State::ehlo:
            if (r.cls() == 5 && !opts_.lmtp) {
                state_ = State::helo;
                arm(opts_.timeouts.ehlo);
                return write(fmt::format("HELO {}\r\n", opts_.helo));
            }
            if (r.cls() != 2) {
                info_.refused_by = r;
                return fail(fmt::format("EHLO: {} {}", r.code, r.text()));
            }
            cap_pipelining_ = cap_starttls_ = cap_8bitmime_ = cap_smtputf8_ = cap_size_ = false;
            cap_auth_.clear();
            for (size_t i = 1; i < r.lines.size(); ++i) {
                std::string l = to_lower(r.lines[i]);
                if (l == "pipelining") cap_pipelining_ = true;
                if (l == "starttls") cap_starttls_ = true;
                if (l == "8bitmime") cap_8bitmime_ = true;
                if (l == "smtputf8") cap_smtputf8_ = true;
                if (l == "size" || l.rfind("size ", 0) == 0) cap_size_ = true;
                if (l.rfind("auth ", 0) == 0 || l.rfind("auth=", 0) == 0)
                    cap_auth_ = " " + l.substr(5) + " ";
            }
            info_.pipelining = cap_pipelining_;
            return after_ehlo();
        case State::helo:
            if (r.cls() != 2) {
                info_.refused_by = r;
                return fail(fmt::format("HELO: {} {}", r.code, r.text()));
            }
            return after_ehlo();
        case State::starttls:
            if (r.code != 220) {
                if (opts_.tls == TlsMode::required)
                    return fail(fmt::format("STARTTLS refused: {} {}", r.code, r.text()));
                tls_tried_ = true;  // go on in plaintext
                return after_ehlo();
            }
            return begin_tls();
        case State::auth:
            if (r.code == 334 && auth_step_ == 1) {
                auth_step_ = 2;
                arm(opts_.timeouts.ehlo);
                return write(base64_encode(opts_.auth_user) + "\r\n");
            }
            if (r.code == 334 && auth_step_ == 2) {
                auth_step_ = 3;
                arm(opts_.timeouts.ehlo);
                return write(base64_encode(opts_.auth_pass) + "\r\n");
            }
            if (r.cls() != 2)
                return fail(
                    fmt::format("AUTH as {} failed: {} {}", opts_.auth_user, r.code, r.text()));
            auth_step_ = -1;
            return after_ehlo();
        case State::quitting:
            return fail("");  // closes and tells the owner (the ready queue frees the slot)
        case State::idle:
            return fail(fmt::format("the server said: {} {}", r.code, r.text()));
        default:
            return fail(fmt::format("unexpected reply {} {}", r.code, r.text()));
    }
}

void SmtpClient::after_ehlo() {
    bool want_tls = opts_.tls != TlsMode::off && opts_.tls_ctx && !tls_ && !tls_tried_;
    if (want_tls && cap_starttls_) {
        state_ = State::starttls;
        arm(opts_.timeouts.starttls);
        return write("STARTTLS\r\n");
    }
    if (opts_.tls == TlsMode::required && !tls_)
        return fail(fmt::format(
            "TLS is required for {} but STARTTLS is not offered",
            info_.endpoint.mx_host.empty() ? info_.endpoint.ip.str() : info_.endpoint.mx_host));
    if (!opts_.auth_user.empty() && auth_step_ == 0) {
        if (!tls_ && !opts_.auth_allow_cleartext) return refuse_cleartext_auth();
        return begin_auth();
    }
    state_ = State::idle;
    uv_timer_stop(timer_.get());
    if (!ever_ready_) {
        ever_ready_ = true;
        if (h_.ready) h_.ready();
    }
}

void SmtpClient::begin_tls() {
    state_ = State::handshake;
    tls_tried_ = true;
    const std::string& host = info_.endpoint.mx_host;
    tls_ = std::make_unique<TlsConn>(opts_.tls_ctx, TlsConn::Role::client,
                                     IpAddr::parse(host) ? std::string() : host);
    if (!host.empty() && !IpAddr::parse(host)) SSL_set1_host(tls_->ssl(), host.c_str());
    if (opts_.tls == TlsMode::required) SSL_set_verify(tls_->ssl(), SSL_VERIFY_PEER, nullptr);
    parser_ = ReplyParser();  // nothing sent before STARTTLS may be used after it
    arm(opts_.timeouts.starttls);
    std::string plain;
    if (!tls_->feed(nullptr, 0, plain)) return fail("TLS error: " + tls_->error(), true);
    write_plain(tls_->take_output());
}

void SmtpClient::begin_auth() {
    state_ = State::auth;
    arm(opts_.timeouts.ehlo);
    if (cap_auth_.find(" plain ") != std::string::npos) {
        auth_step_ = 3;
        std::string token = std::string(1, '\0') + opts_.auth_user + '\0' + opts_.auth_pass;
        return write("AUTH PLAIN " + base64_encode(token) + "\r\n");
    }
    if (cap_auth_.find(" login ") != std::string::npos) {
        auth_step_ = 1;
        return write("AUTH LOGIN\r\n");
    }
    fail(fmt::format("AUTH is configured for {} but the server offers no PLAIN or LOGIN",
                     opts_.auth_user));
}

void SmtpClient::refuse_cleartext_auth() {
    const Endpoint& ep = info_.endpoint;
    std::string host = ep.mx_host.empty() ? ep.ip.str() : ep.mx_host;
    refusal_why_ = fmt::format(
        "refusing to send the credentials of {} to {} without TLS ({}; set "
        "auth_allow_cleartext=true on the route to allow it)",
        opts_.auth_user, host,
        !cap_starttls_ ? "STARTTLS is not offered"
        : tls_tried_   ? "STARTTLS was refused or failed"
                       : "TLS is off for this host: configuration, or a recent STARTTLS failure");
    info_.refusal = "4.7.10";
    quit();
}

std::string SmtpClient::mail_command() const {
    std::string cmd = fmt::format("MAIL FROM:<{}>", txn_.mail_from);
    if (cap_size_) cmd += fmt::format(" SIZE={}", txn_.size);
    if (txn_.eightbit && cap_8bitmime_) cmd += " BODY=8BITMIME";
    if (txn_.smtputf8 && cap_smtputf8_) cmd += " SMTPUTF8";
    cmd += "\r\n";
    return cmd;
}

void SmtpClient::send(OutTxn txn) {
    txn_ = std::move(txn);
    txn_.smtputf8 = txn_.smtputf8 || needs_utf8(txn_.mail_from);
    for (const auto& r : txn_.rcpts) txn_.smtputf8 = txn_.smtputf8 || needs_utf8(r);
    out_ = TxnOutcome{};
    out_.rcpt.assign(txn_.rcpts.size(), SmtpReply{});
    out_.command.assign(txn_.rcpts.size(), std::string_view{});
    accepted_.assign(txn_.rcpts.size(), false);
    final_.assign(txn_.rcpts.size(), false);
    mail_ok_ = false;
    rcpt_next_ = 0;
    sent_rcpts_ = 0;
    expect_.clear();
    state_ = State::txn;
    if (txn_.smtputf8 && !cap_smtputf8_) {
        // RFC 6531 §3.2: without SMTPUTF8 the message cannot be relayed here.
        for (auto& r : out_.rcpt)
            r = synthetic(553, "5.6.7", "the server does not support SMTPUTF8");
        out_.final_reply = out_.rcpt.empty() ? SmtpReply{} : out_.rcpt[0];
        return txn_finished();
    }
    std::string batch;
    if (need_rset_) {
        batch += "RSET\r\n";
        expect_.push_back(Expect::rset);
    }
    batch += mail_command();
    expect_.push_back(Expect::mail);
    if (cap_pipelining_) {
        for (const auto& r : txn_.rcpts) {
            batch += fmt::format("RCPT TO:<{}>\r\n", r);
            expect_.push_back(Expect::rcpt);
        }
        sent_rcpts_ = txn_.rcpts.size();
        batch += "DATA\r\n";
        expect_.push_back(Expect::data);
    }
    arm(opts_.timeouts.mail);
    write(batch);
}

void SmtpClient::on_txn_reply(SmtpReply& r) {
    if (expect_.empty()) return fail(fmt::format("unexpected reply {} {}", r.code, r.text()));
    Expect e = expect_.front();
    expect_.erase(expect_.begin());
    auto next_timeout = [this] {
        if (expect_.empty()) return;
        switch (expect_.front()) {
            case Expect::rcpt:
                arm(opts_.timeouts.rcpt);
                break;
            case Expect::data:
                arm(opts_.timeouts.data_init);
                break;
            case Expect::dot:
                arm(opts_.timeouts.data_done);
                break;
            default:
                arm(opts_.timeouts.mail);
                break;
        }
    };
    switch (e) {
        case Expect::rset:
            if (r.cls() != 2) return fail(fmt::format("RSET: {} {}", r.code, r.text()));
            need_rset_ = false;
            return next_timeout();
        case Expect::mail:
            mail_ok_ = r.cls() == 2;
            need_rset_ = true;  // until the transaction completes
            if (!mail_ok_) {
                for (auto& o : out_.rcpt) o = r;
                out_.command.assign(out_.rcpt.size(), "MAIL");
                final_.assign(final_.size(), true);
                out_.final_reply = r;
                if (!cap_pipelining_) return txn_finished();
                return next_timeout();
            }
            if (!cap_pipelining_) {
                expect_.push_back(Expect::rcpt);
                arm(opts_.timeouts.rcpt);
                write(fmt::format("RCPT TO:<{}>\r\n", txn_.rcpts[sent_rcpts_++]));
                return;
            }
            return next_timeout();
        case Expect::rcpt: {
            size_t i = rcpt_next_++;
            if (i < out_.rcpt.size() && mail_ok_) {
                out_.rcpt[i] = r;
                out_.command[i] = "RCPT";
                accepted_[i] = r.cls() == 2;
                final_[i] = !accepted_[i];
            }
            if (!cap_pipelining_) {
                if (sent_rcpts_ < txn_.rcpts.size()) {
                    expect_.push_back(Expect::rcpt);
                    arm(opts_.timeouts.rcpt);
                    write(fmt::format("RCPT TO:<{}>\r\n", txn_.rcpts[sent_rcpts_++]));
                    return;
                }
                bool any = false;
                for (bool a : accepted_) any |= a;
                if (!any) {
                    out_.final_reply = r;
                    return txn_finished();
                }
                expect_.push_back(Expect::data);
                arm(opts_.timeouts.data_init);
                write("DATA\r\n");
                return;
            }
            return next_timeout();
        }
        case Expect::data: {
            size_t n_acc = 0;
            for (bool a : accepted_) n_acc += a;
            if (r.code != 354) {
                SmtpReply why = r.cls() >= 4 ? r
                                             : synthetic(451, "4.5.0",
                                                         fmt::format("unexpected reply to DATA: "
                                                                     "{} {}",
                                                                     r.code, r.text()));
                for (size_t i = 0; i < accepted_.size(); ++i)
                    if (accepted_[i]) {
                        out_.rcpt[i] = why;
                        out_.command[i] = "DATA";
                        final_[i] = true;
                    }
                out_.final_reply = why;
                return txn_finished();
            }
            state_ = State::body;
            if (n_acc == 0) {  // pipelined DATA accepted with no recipients: end it empty
                expect_.push_back(Expect::dot);
                arm(opts_.timeouts.data_done);
                write(".\r\n");
                return;
            }
            size_t replies = opts_.lmtp ? n_acc : 1;
            for (size_t k = 0; k < replies; ++k) expect_.push_back(Expect::dot);
            arm(opts_.timeouts.data_done);
            write(*txn_.wire);
            return;
        }
        case Expect::dot: {
            size_t n_acc = 0;
            for (bool a : accepted_) n_acc += a;
            if (n_acc == 0) {
                out_.final_reply = r;
                return txn_finished();
            }
            if (opts_.lmtp) {
                // The k-th reply belongs to the k-th accepted recipient.
                size_t k = n_acc - expect_.size() - 1, seen = 0;
                for (size_t i = 0; i < accepted_.size(); ++i)
                    if (accepted_[i] && seen++ == k) {
                        out_.rcpt[i] = r;
                        out_.command[i] = "DATA";
                        final_[i] = true;
                    }
            } else {
                for (size_t i = 0; i < accepted_.size(); ++i)
                    if (accepted_[i]) {
                        out_.rcpt[i] = r;
                        out_.command[i] = "DATA";
                        final_[i] = true;
                    }
            }
            out_.final_reply = r;
            if (!expect_.empty()) return next_timeout();
            need_rset_ = false;
            ++info_.transactions;
            return txn_finished();
        }
        case Expect::quit:
            return fail("");
    }
}

void SmtpClient::txn_finished() {
    state_ = State::idle;
    expect_.clear();
    uv_timer_stop(timer_.get());
    TxnOutcome out = std::move(out_);
    out_ = TxnOutcome{};
    if (h_.done) h_.done(std::move(out));
}

const char* SmtpClient::state_name() const {
    switch (state_) {
        case State::connecting:
            return "connect";
        case State::greeting:
            return "greeting";
        case State::ehlo:
            return "EHLO";
        case State::helo:
            return "HELO";
        case State::starttls:
            return "STARTTLS";
        case State::handshake:
            return "TLS handshake";
        case State::auth:
            return "AUTH";
        case State::idle:
            return "idle";
        case State::txn:
            return "transaction";
        case State::body:
            return "end of data";
        case State::quitting:
            return "QUIT";
        case State::closed:
            return "closed";
    }
    return "?";
}

void SmtpClient::quit() {
    if (state_ == State::closed || state_ == State::quitting) return;
    state_ = State::quitting;
    arm(10000);
    write("QUIT\r\n");
}

void SmtpClient::abort(const std::string& why) {
    fail(why);
}

void SmtpClient::fail(const std::string& why, bool tls_failed) {
    if (state_ == State::closed) return;
    bool in_txn = state_ == State::txn || state_ == State::body;
    bool before_ready = !ever_ready_;
    bool quitting = state_ == State::quitting;
    close_socket();
    if (in_txn) {
        // Every recipient without a final answer is deferred, including one accepted at
        // RCPT whose "." reply never came (it may then be delivered twice; RFC 1047).
        SmtpReply lost = synthetic(421, "4.4.2", "connection lost: " + why);
        for (size_t i = 0; i < out_.rcpt.size(); ++i)
            if (!final_[i]) {
                out_.rcpt[i] = lost;
                out_.command[i] = "";
            }
        out_.connection_lost = true;
        out_.final_reply = lost;
        TxnOutcome out = std::move(out_);
        out_ = TxnOutcome{};
        if (h_.done) h_.done(std::move(out));
    }
    if (quitting && refusal_why_.empty()) {
        if (h_.closed) h_.closed("", false, false);
        return;
    }
    if (!refusal_why_.empty()) {  // whatever ended the QUIT, the reason is the refusal
        if (h_.closed) h_.closed(refusal_why_, before_ready, false);
        return;
    }
    if (h_.closed) h_.closed(why, before_ready, tls_failed);
}

void SmtpClient::close_socket() {
    state_ = State::closed;
    uv_timer_stop(timer_.get());
    if (connect_req_) {  // libuv cancels it when the handle closes; its callback frees it
        connect_req_->data = nullptr;
        (void)connect_req_.release();
    }
    if (tcp_) {
        (*tcp_)->data = nullptr;
        tcp_.reset();
    }
    tls_.reset();
}

}  // namespace kasi
