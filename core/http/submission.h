// The HTTP API's way into the SMTP pipeline. A Submission owns one local Session (no socket:
// Session::start_local) and speaks SMTP to it, so that a message sent through the API meets
// exactly the hooks an SMTP client's message meets — connect_init, connect, ehlo, mail, rcpt,
// data, data_post, queue_outbound, pre_send_trans_email, queue_ok, disconnect — then the same
// sealers (List-Unsubscribe, VERP, DKIM), the same spool and the same queues. Plugins see the
// HTTP client's address as the remote IP, `relaying` set (the API authorised the client), and
// the connection note `api.client` (the token's name or "trusted:IP").
//
// One transaction at a time: MAIL, the RCPTs and "BDAT <size> LAST" followed by the message
// are written in one go. BDAT's chunk is length-counted and consumed whatever the earlier
// replies were, so pipelining it can never make message lines pass for commands; the
// 1 + n + 1 replies come back in order and make the SubmitResult.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/smtp/client/reply_parser.h"
#include "core/smtp/server/session.h"

namespace kasi {

struct SubmitResult {
    bool queued = false;
    // Where a refused transaction was stopped: "connect", "ehlo", "from", "to" (every
    // recipient refused), "data" (the message) or "closed" (the session ended first).
    std::string stage;
    SmtpReply reply;                             // the refusal, or the 250 "Message Queued"
    std::vector<std::optional<SmtpReply>> rcpt;  // per recipient: its refusal, or none
};

class Submission : public std::enable_shared_from_this<Submission> {
  public:
    using Done = std::function<void(SubmitResult)>;

    // Opens the session (its connect and ehlo hooks run now). `client.output` and
    // `client.closed` are the Submission's own.
    static std::shared_ptr<Submission> open(SessionHost& host, SessionConfig cfg,
                                            LocalClient client);

    // Queues a transaction (uuid, notes, envelope and body as prepared by the API). `done`
    // runs on the loop once it is queued durably or refused; it may run before submit()
    // returns when the session has already failed.
    void submit(std::unique_ptr<Transaction> txn, Done done);
    // Says QUIT once every submitted transaction is done.
    void quit();
    // False once the session refused the client, ended, or was told to quit: what is
    // submitted then fails at once, so the owner opens another Submission instead.
    bool usable() const { return state_ != State::closed && !quit_ && !failed_; }

  private:
    struct Job {
        std::unique_ptr<Transaction> txn;
        Done done;
    };
    enum class State { banner, ehlo, ready, txn, quitting, closed };

    Submission() = default;
    void on_output(std::string_view bytes);
    void on_reply(SmtpReply r);
    void on_closed();
    void pump();
    void fail_all(const std::string& stage, const SmtpReply& r);
    void finish_current();

    std::shared_ptr<Session> session_;
    State state_ = State::banner;
    ReplyParser parser_;
    std::deque<Job> jobs_;
    Job cur_;
    size_t replies_ = 0;  // of the transaction in flight
    SubmitResult res_;
    std::optional<std::pair<std::string, SmtpReply>> failed_;  // connect/ehlo refusal
    std::optional<SmtpReply> last_refusal_;
    bool quit_ = false;
};

}  // namespace kasi
