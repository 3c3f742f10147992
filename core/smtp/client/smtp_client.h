// One outbound SMTP (or LMTP) connection on a libuv loop, owned by a ready queue's pool.
//
//   start() -> connect (next endpoint on failure) -> 220 -> EHLO (HELO after a 5xx)
//           -> STARTTLS + EHLO when offered and wanted -> AUTH when configured -> ready()
//   send(txn) -> MAIL, RCPT..., DATA (pipelined when PIPELINING is offered, RFC 2920)
//             -> body -> done(outcome) -> ready for the next transaction
//   quit() -> QUIT, then closed()
//
// The outcome gives one reply per recipient, so the caller can deliver, defer and bounce
// recipients of one attempt separately. A transaction that did not complete is followed
// by RSET before the next one. Every wait has the RFC 5321 §4.5.3.2 timeout for its
// command; a peer that sends garbage, never finishes a reply or stalls mid-TLS loses the
// connection and the recipients in flight get a 4xx (they are retried), never a crash.
//
// Credentials go only over TLS: when AUTH is configured but the session is not encrypted
// (no STARTTLS offered, STARTTLS refused or failed, TLS off for the route), the client
// sends QUIT instead of AUTH and reports the connection closed before ready with
// ConnInfo::refusal = "4.7.10", unless the route sets auth_allow_cleartext.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/smtp/client/client_timeouts.h"
#include "core/smtp/client/reply_parser.h"
#include "core/tls/tls_conn.h"
#include "core/util/ip.h"
#include "core/util/uv_handle.h"

namespace kasi {

struct Endpoint {
    IpAddr ip;
    uint16_t port = 25;
    std::string mx_host;  // the name the address came from ("" for a literal)
};

enum class TlsMode { off, opportunistic, required };

struct ClientOptions {
    std::vector<Endpoint> endpoints;  // tried in order until one answers
    std::string helo;
    std::optional<IpAddr> bind;
    bool lmtp = false;
    TlsMode tls = TlsMode::opportunistic;
    SSL_CTX* tls_ctx = nullptr;  // client context; null = no TLS possible
    std::string auth_user, auth_pass;
    bool auth_allow_cleartext = false;  // AUTH without TLS (else: QUIT and a 4.7.10 deferral)
    ClientTimeouts timeouts;
};

struct OutTxn {
    std::string mail_from;  // "" for <>
    std::vector<std::string> rcpts;
    std::shared_ptr<const std::string> wire;  // dot-stuffed body with the final ".\r\n"
    uint64_t size = 0;
    bool eightbit = false;
    bool smtputf8 = false;
};

struct TxnOutcome {
    std::vector<SmtpReply> rcpt;  // the reply that decides each recipient, in order
    // The command each of those replies answered: "MAIL", "RCPT" or "DATA" ("" when the
    // connection was lost before one came, or Kasi made the reply up).
    std::vector<std::string_view> command;
    SmtpReply final_reply;  // the reply to "." (or the failing command)
    bool connection_lost = false;
};

struct ConnInfo {
    Endpoint endpoint;
    std::string local_ip;  // the egress address actually used
    std::string tls_version, tls_cipher;
    bool tls_verified = false;
    bool pipelining = false;
    int transactions = 0;
    std::string refusal;  // the enhanced status when Kasi itself gave up the session
    std::optional<SmtpReply> refused_by;  // the server's refusal at the greeting, EHLO or HELO
};

class SmtpClient : public std::enable_shared_from_this<SmtpClient> {
  public:
    struct Handlers {
        std::function<void()> ready;           // session open, or transaction finished
        std::function<void(TxnOutcome)> done;  // per-transaction result
        // The connection is gone. `before_ready`: it never became usable; `tls_failed`:
        // the STARTTLS handshake failed (the caller may retry in plaintext).
        std::function<void(const std::string& why, bool before_ready, bool tls_failed)> closed;
    };

    SmtpClient(uv_loop_t* loop, ClientOptions opts, Handlers h);
    ~SmtpClient();
    SmtpClient(const SmtpClient&) = delete;
    SmtpClient& operator=(const SmtpClient&) = delete;

    void start();
    void send(OutTxn txn);
    void quit();
    void abort(const std::string& why);  // closes at once; a transaction in flight is lost
    const ConnInfo& info() const { return info_; }
    bool idle() const { return state_ == State::idle; }

  private:
    enum class State {
        connecting,
        greeting,
        ehlo,
        helo,
        starttls,
        handshake,
        auth,
        idle,
        txn,
        body,
        quitting,
        closed
    };
    enum class Expect { rset, mail, rcpt, data, dot, quit };

    void connect_next();
    void on_connected(int status);
    void on_read(ssize_t n, const uv_buf_t* buf);
    void on_reply(SmtpReply r);
    void on_session_reply(SmtpReply& r);
    void on_txn_reply(SmtpReply& r);
    void send_ehlo();
    void after_ehlo();
    void begin_tls();
    void begin_auth();
    void refuse_cleartext_auth();
    void txn_finished();
    void write(std::string_view s);
    void write_plain(std::string_view s);
    void arm(int ms);
    void fail(const std::string& why, bool tls_failed = false);
    void close_socket();
    std::string mail_command() const;
    const char* state_name() const;

    uv_loop_t* loop_;
    ClientOptions opts_;
    Handlers h_;
    size_t next_endpoint_ = 0;
    std::string last_connect_error_;
    std::unique_ptr<UvHandle<uv_tcp_t>> tcp_;
    UvHandle<uv_timer_t> timer_;
    std::unique_ptr<uv_connect_t> connect_req_;
    std::string read_buf_;
    ReplyParser parser_;
    std::unique_ptr<TlsConn> tls_;
    State state_ = State::connecting;
    bool ever_ready_ = false;
    bool need_rset_ = false;
    bool tls_tried_ = false;
    ConnInfo info_;
    // EHLO capabilities
    bool cap_pipelining_ = false, cap_starttls_ = false, cap_8bitmime_ = false,
         cap_smtputf8_ = false, cap_size_ = false;
    std::string cap_auth_;
    // the transaction in flight
    OutTxn txn_;
    std::vector<Expect> expect_;
    size_t rcpt_next_ = 0;   // next RCPT reply index
    size_t sent_rcpts_ = 0;  // without pipelining: RCPTs sent so far
    TxnOutcome out_;
    std::vector<bool> accepted_;
    std::vector<bool> final_;  // the recipient's outcome is decided
    bool mail_ok_ = false;
    int auth_step_ = 0;
    std::string refusal_why_;  // why the session ends with QUIT before ready ("" = it does not)
};

}  // namespace kasi
