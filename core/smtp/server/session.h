// One SMTP server connection: the RFC 5321 state machine, driven by the hook runner.
//
// Input is processed one command at a time (pipelined commands wait in the buffer while a
// hook or the spool is busy), replies are collected and written once per pass over the
// input, so a pipelined batch gets one write. Each hook's outcome is turned into a reply by
// that hook's respond function (responder.cpp), following Haraka's tables; commands live in
// commands.cpp, I/O and lifetime here.
//
// A local session (start_local) has no socket: the HTTP API feeds it SMTP and reads its
// replies (core/http/submission.h), so API mail runs through this same state machine.
//
// A session takes its settings as values (session_config.h) and hands a message it accepted
// to the intake the host gives it.
//
// Lifetime: the worker owns sessions through shared_ptr; anything that answers later (a
// suspended hook, the spool writer) holds a weak_ptr and finds the session gone if the
// client left.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/hooks/runner.h"
#include "core/smtp/data_reader.h"
#include "core/smtp/server/session_config.h"
#include "core/smtp/server/transaction.h"
#include "core/tls/tls_conn.h"
#include "core/util/ip.h"
#include "core/util/uv_handle.h"

namespace kasi {

class Intake;
class Resolver;

class LoopInbox;
struct SpoolResult;
class Session;
class TlsServerContext;

// The suppression list as a session sees it (core/suppression/suppression_service.h).
class RecipientGate {
  public:
    // The reply text refusing `rcpt` from a client whose MAIL FROM domain is
    // `sender_domain` (a Suppressed event is written), or "" to let it through.
    virtual std::string refusal(std::string_view rcpt, std::string_view sender_domain,
                                std::string_view client_ip) = 0;

  protected:
    ~RecipientGate() = default;
};

// What a session needs from the loop that owns it.
class SessionHost {
  public:
    virtual ~SessionHost() = default;
    virtual uv_loop_t* loop() = 0;
    // Where an accepted message goes: the spool, then delivery (core/spool/intake.h).
    virtual Intake& intake() = 0;
    // This loop's DNS resolver (rDNS at connect); null where there is none.
    virtual Resolver* resolver() { return nullptr; }
    // The same, for plugins that may answer after the session is gone (Lua's kasi.dns).
    virtual std::weak_ptr<Resolver> resolver_ref() { return {}; }
    virtual LoopInbox& inbox() = 0;
    // Suppressed recipients are refused at RCPT through it; null: no list.
    virtual RecipientGate* recipient_gate() { return nullptr; }
    virtual void session_closed(Session* s) = 0;
    // Local sessions (start_local): the host keeps them so that a shutdown waits for them
    // (and closes them at its deadline); false from accepting() once it is shutting down.
    virtual bool accepting() { return true; }
    virtual void local_session_started(const std::shared_ptr<Session>&) {}
    virtual void local_session_closed(Session*) {}
};

// A session without a socket (Session::start_local): how the HTTP API hands its messages to
// the SMTP pipeline, so that they meet the same hooks as SMTP mail (core/http/submission.h).
struct LocalClient {
    IpAddr ip;  // the HTTP client
    int port = 0;
    bool tls = false;                          // came over HTTPS
    std::string who;                           // API token name or "trusted:IP" (envelope, logs)
    std::map<std::string, std::string> notes;  // connection notes, set before connect_init
    std::function<void(std::string_view replies)> output;  // called from flush()
    std::function<void()> closed;                          // once, after the disconnect hook
};

class Session : public HookRunner::Sink, public std::enable_shared_from_this<Session> {
  public:
    Session(SessionHost& host, SessionConfig cfg, bool implicit_tls);
    ~Session() override;

    // Takes over an accepted connection and starts the connect hooks.
    void start(uv_tcp_t* accepted_into_this);
    uv_tcp_t* tcp() { return tcp_.get(); }
    // Starts a local session (no socket, relaying allowed, BDAT always on, no core rDNS, no
    // Received line of its own: the API writes one). Replies go to client.output.
    void start_local(LocalClient client);
    // Input for a local session, as if the client had sent it. Safe from within output().
    void feed_local(std::string_view bytes);
    // The id and notes of the transaction the next MAIL starts (local sessions).
    void preset_transaction(std::string uuid, std::map<std::string, std::string> notes);
    bool is_local() const { return local_ != nullptr; }
    // Graceful stop: finish the current transaction if one is in flight, else say 421.
    void shutdown_notice();
    void force_close();  // the shutdown deadline passed
    bool in_transaction() const { return txn_ != nullptr && txn_->data_started; }

    // ---- what plugins see ----
    const std::string& uuid() const { return uuid_; }
    const IpAddr& remote_ip() const { return remote_ip_; }
    int remote_port() const { return remote_port_; }
    const std::string& local_ip() const { return local_ip_; }
    int local_port() const { return local_port_; }
    const std::string& remote_host() const { return remote_host_; }
    // The HAProxy that forwarded this connection (PROXY protocol); empty if direct.
    const std::string& proxy_ip() const { return proxy_ip_; }
    const std::string& hello_host() const { return hello_host_; }
    bool esmtp() const { return esmtp_; }  // the client said EHLO (not HELO)
    bool relaying() const { return relaying_; }
    void set_relaying(bool r) { relaying_ = r; }
    // rcpt hook: a CONT for the current recipient counts as a relaying client's CONT.
    void allow_relay_for_this_rcpt() { rcpt_relay_ok_ = true; }
    // TLS: true once STARTTLS or implicit TLS has begun (the handshake may be running).
    bool using_tls() const { return tls_conn_ != nullptr; }
    bool tls_established() const { return tls_; }
    bool implicit_tls() const { return implicit_tls_; }
    const std::string& tls_cipher() const { return tls_cipher_; }
    const std::string& tls_version() const { return tls_version_; }
    TlsConn* tls_conn() { return tls_conn_.get(); }
    // Starts the server side of TLS now: whatever replies are pending go out in clear text
    // first, input pipelined after the command is discarded and what the client said
    // before (EHLO, transaction, AUTH) is forgotten (RFC 3207 §4.2). False if TLS is
    // already running.
    bool start_tls(std::shared_ptr<const TlsServerContext> ctx, uint32_t handshake_timeout_ms);
    const std::string& auth_user() const { return auth_user_; }
    // A successful AUTH: the client may relay from now on.
    void set_auth_user(std::string user);
    int errors() const { return errors_; }
    int rcpt_attempts() const { return rcpt_ok_ + rcpt_tempfail_ + rcpt_reject_; }
    void count_error() { ++errors_; }
    // The next command line goes to `h` instead of the command dispatcher (SASL exchanges).
    using LineHandler = std::function<void(std::string_view line)>;
    void take_next_line(LineHandler h) { line_handler_ = std::move(h); }
    // Holds the session (no input processed) for `ms`, then runs `then` (a tarpit, an AUTH
    // failure delay).
    void pause_then(uint64_t ms, std::function<void()> then);
    bool early_talker() const { return early_talker_; }
    std::map<std::string, std::string>& notes() { return notes_; }
    Transaction* transaction() { return txn_.get(); }
    std::vector<std::string>& capabilities() { return caps_; }
    const SessionSettings& settings() const { return *cfg_.settings; }
    uv_loop_t* loop() { return host_.loop(); }
    // A reply written by a plugin that handled a command itself. `enhanced`: the RFC 2034
    // code, empty for the default one of `code`, "-" for none.
    void reply(int code, std::string_view text, std::string_view enhanced = {});

    // HookRunner::Sink
    void hook_done(Hook h, Result r) override;

  private:
    enum class Phase { proxy, connecting, command, data, bdat, closing };

    // session.cpp: I/O and lifetime
    void on_read(ssize_t n, const uv_buf_t* buf);
    bool tls_input(const char* data, size_t n);  // false: the TLS session failed
    void proxy_input();                          // Phase::proxy: waiting for the header
    void write_raw(std::string_view data);
    void process_input();
    void process_commands();  // one pass over the input (process_input loops for local input)
    bool take_line(std::string_view& line);
    void flush();
    void close(bool after_flush = true);
    void finish_close();
    void on_closed();
    void touch();
    void run_hook(Hook h, std::string_view arg = {}, const Address* a = nullptr);
    void log_disconnect();
    void send_banner();
    void reset_transaction();
    void disconnect_after_reply() { disconnect_ = true; }

    // commands.cpp
    void dispatch(std::string_view line);
    void cmd_helo(const std::string& arg, bool extended);
    void cmd_mail(const std::string& arg);
    void cmd_rcpt(const std::string& arg);
    void cmd_data(const std::string& arg);
    void cmd_bdat(const std::string& arg);
    void cmd_rset(const std::string& arg);
    void cmd_quit(const std::string& arg);
    void cmd_unknown(std::string_view line);
    void data_finished();
    void bdat_chunk_done();
    void refuse_line_ends();  // a bare CR or LF in DATA/BDAT: 451 and disconnect
    void finish_message();
    void queue_message();
    // List-Unsubscribe, VERP, DKIM after the last hook (core/smtp/seal.h), then queue_message()
    void seal_message();
    void spool_done(const SpoolResult& r);
    void send_capabilities();

    // responder.cpp: one respond function per hook
    bool respond_refusal(Result& r, std::string_view deny_text, std::string_view soft_text);
    void lookup_ptr();  // core rDNS (Haraka's dns.reverse) when no plugin answered
    void respond_connect(Result& r);
    void respond_helo(Result& r, bool extended);
    void respond_mail(Result& r);
    void respond_rcpt(Result& r);
    void respond_rcpt_ok(Result& r);
    void respond_data(Result& r);
    void respond_data_post(Result& r);
    void respond_queue(Result& r, bool outbound);
    void respond_unrecognized(Result& r);
    void respond_simple(Hook h, Result& r);
    // Applies DENY*/DISCONNECT codes with the hook's codes; true if it replied.
    bool respond_deny(Result& r, int deny_code, int soft_code, std::string_view deny_text,
                      std::string_view soft_text, std::string_view enh5 = "5.7.1",
                      std::string_view enh4 = "4.7.1");

    SessionHost& host_;
    SessionConfig cfg_;
    std::shared_ptr<HookRunner> runner_;
    UvHandle<uv_tcp_t> tcp_;
    UvHandle<uv_timer_t> idle_timer_;
    HookCall call_;

    std::string uuid_;
    int txn_count_ = 0;
    IpAddr remote_ip_;
    int remote_port_ = 0;
    std::string local_ip_;
    int local_port_ = 0;
    std::string remote_host_;
    std::string rdns_status_;  // NXDOMAIN / DNSERROR when the core PTR lookup failed
    std::string proxy_ip_;
    std::string hello_host_;
    bool esmtp_ = false;
    bool relaying_ = false;
    bool relaying_before_auth_ = false;
    bool rcpt_relay_ok_ = false;
    bool pending_report_ = false;  // the pending RCPT is a report mailbox
    bool tls_ = false;
    bool implicit_tls_ = false;
    std::shared_ptr<const TlsServerContext> tls_ctx_;  // keeps the SSL_CTX alive
    std::unique_ptr<TlsConn> tls_conn_;
    std::string raw_pending_;  // implicit TLS: bytes that came before the TLS session
    std::string tls_cipher_, tls_version_;
    uint32_t tls_handshake_timeout_ms_ = 0;
    std::string auth_user_;
    bool early_talker_ = false;
    std::map<std::string, std::string> notes_;
    std::vector<std::string> caps_;
    std::unique_ptr<Transaction> txn_;
    Address pending_addr_;  // the address of the MAIL/RCPT whose hook is running
    std::string pending_arg_;
    std::string loop_text_;  // set after a connect-time DENY: only QUIT is served

    Phase phase_ = Phase::connecting;
    bool busy_ = false;        // a hook or the spool owes an answer
    bool paused_ = false;      // pause_then() is running
    bool processing_ = false;  // inside process_input()
    bool disconnect_ = false;  // close once the pending replies are written
    bool closed_ = false;
    bool shutting_down_ = false;
    bool pipelined_data_ = false;
    std::string in_;
    size_t in_pos_ = 0;
    std::string out_;
    DataReader data_;
    uint64_t bdat_left_ = 0;
    bool bdat_last_ = false;
    bool bdat_discard_ = false;
    LineEndCheck bdat_lines_;  // bare CR / bare LF anywhere in the BDAT message
    std::string read_buf_;
    LineHandler line_handler_;
    UvHandle<uv_timer_t> pause_timer_;
    std::function<void()> after_pause_;

    // local sessions (start_local)
    std::unique_ptr<LocalClient> local_;
    bool local_more_ = false;  // input fed while processing or writing: another pass
    bool in_output_ = false;
    std::optional<std::pair<std::string, std::map<std::string, std::string>>> preset_;

    // counters for the disconnect line
    int64_t start_ms_ = 0;
    int errors_ = 0;
    int rcpt_ok_ = 0, rcpt_tempfail_ = 0, rcpt_reject_ = 0;
    int msg_ok_ = 0, msg_tempfail_ = 0, msg_reject_ = 0;
    uint64_t bytes_ = 0;
    std::string last_reject_;
    int unrecognized_ = 0;
};

}  // namespace kasi
