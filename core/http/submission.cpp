#include "core/http/submission.h"

#include <fmt/format.h>

#include "core/log/log.h"

namespace kasi {

std::shared_ptr<Submission> Submission::open(SessionHost& host, SessionConfig cfg,
                                             LocalClient client) {
    std::shared_ptr<Submission> sub(new Submission());
    sub->session_ = std::make_shared<Session>(host, std::move(cfg), false);
    // The session holds the Submission through these until it has closed; the Submission
    // holds the session until then too, so neither goes away while the other talks.
    client.output = [sub](std::string_view bytes) { sub->on_output(bytes); };
    client.closed = [sub] { sub->on_closed(); };
    sub->session_->start_local(std::move(client));
    return sub;
}

void Submission::submit(std::unique_ptr<Transaction> txn, Done done) {
    if (state_ == State::closed || quit_) {
        SubmitResult r;
        r.stage = failed_ ? failed_->first : "closed";
        if (failed_) r.reply = failed_->second;
        r.rcpt.resize(txn->rcpts.size());
        return done(std::move(r));
    }
    jobs_.push_back({std::move(txn), std::move(done)});
    pump();
}

void Submission::quit() {
    quit_ = true;
    pump();
}

// Hands the next transaction to the session when it is idle, or says QUIT when all is done.
void Submission::pump() {
    if (state_ != State::ready) return;
    if (jobs_.empty()) {
        if (quit_) {
            state_ = State::quitting;
            session_->feed_local("QUIT\r\n");
        }
        return;
    }
    cur_ = std::move(jobs_.front());
    jobs_.pop_front();
    Transaction& t = *cur_.txn;
    res_ = SubmitResult{};
    res_.rcpt.resize(t.rcpts.size());
    replies_ = 0;
    state_ = State::txn;
    std::string cmds =
        fmt::format("MAIL FROM:<{}>{}{}\r\n", t.mail_from.str(), t.smtputf8 ? " SMTPUTF8" : "",
                    t.body_8bit ? " BODY=8BITMIME" : "");
    for (const auto& r : t.rcpts) cmds += fmt::format("RCPT TO:<{}>\r\n", r.str());
    cmds += fmt::format("BDAT {} LAST\r\n", t.body.size());
    session_->preset_transaction(t.uuid, std::move(t.notes));
    session_->feed_local(cmds);
    std::string body = std::move(t.body);
    session_->feed_local(body);
}

void Submission::on_output(std::string_view bytes) {
    if (!parser_.feed(bytes)) {  // cannot happen with our own replies; fail safe
        log::error("api: unreadable reply from the local session: {}", parser_.error());
        SmtpReply r;
        r.code = 451;
        r.lines = {"internal error"};
        fail_all("closed", r);
        return;
    }
    while (parser_.has_reply()) on_reply(parser_.take());
}

void Submission::on_reply(SmtpReply r) {
    if (r.cls() != 2 && r.code != 354) last_refusal_ = r;
    switch (state_) {
        case State::banner:
            if (r.cls() != 2) return fail_all("connect", r);
            state_ = State::ehlo;
            session_->feed_local(fmt::format("EHLO [{}{}]\r\n",
                                             session_->remote_ip().v6 ? "IPv6:" : "",
                                             session_->remote_ip().str()));
            return;
        case State::ehlo:
            if (r.cls() != 2) return fail_all("ehlo", r);
            state_ = State::ready;
            return pump();
        case State::txn: {
            size_t n = res_.rcpt.size();
            size_t i = replies_++;
            if (i == 0) {
                if (r.cls() != 2) {
                    res_.stage = "from";
                    res_.reply = r;
                }
            } else if (i <= n) {
                if (r.cls() != 2) res_.rcpt[i - 1] = r;
            } else {
                if (r.cls() == 2) {
                    res_.queued = true;
                    res_.reply = r;
                } else if (res_.stage.empty()) {
                    bool none = true;
                    for (const auto& x : res_.rcpt) none = none && x.has_value();
                    res_.stage = none ? "to" : "data";
                    res_.reply = none ? *res_.rcpt.front() : r;
                }
                finish_current();
            }
            return;
        }
        case State::quitting:
        case State::ready:
        case State::closed:
            return;  // 221, or a 421 before the session closes
    }
}

void Submission::finish_current() {
    state_ = State::ready;
    Job job = std::move(cur_);
    SubmitResult res = std::move(res_);
    job.done(std::move(res));
    pump();
}

void Submission::fail_all(const std::string& stage, const SmtpReply& r) {
    failed_.emplace(stage, r);
    bool was_open = state_ != State::closed && state_ != State::quitting;
    if (state_ == State::txn) {
        res_.stage = "closed";
        res_.reply = r;
        for (auto& x : res_.rcpt)
            if (!x) x = r;
        Job job = std::move(cur_);
        job.done(std::move(res_));
    }
    state_ = was_open ? State::quitting : state_;
    while (!jobs_.empty()) {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        SubmitResult res;
        res.stage = stage;
        res.reply = r;
        res.rcpt.assign(job.txn->rcpts.size(), r);
        job.done(std::move(res));
    }
    quit_ = true;
    if (was_open) session_->feed_local("QUIT\r\n");
}

void Submission::on_closed() {
    SmtpReply r;
    r.code = 451;
    r.enhanced = "4.3.0";
    r.lines = {"the session ended before the message was queued"};
    if (failed_)
        r = failed_->second;
    else if (last_refusal_)
        r = *last_refusal_;  // a 421 the session said before it closed
    if (state_ == State::txn || !jobs_.empty()) fail_all(failed_ ? failed_->first : "closed", r);
    state_ = State::closed;
    session_.reset();  // the session's callbacks are dropped right after this returns
}

}  // namespace kasi
