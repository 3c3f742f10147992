// What each hook's outcome means for the client: one respond function per hook, following
// Haraka's connection.js *_respond() tables (reference §1.3), with the RFC-correct choice
// where Haraka is inconsistent (docs/haraka-compat.md lists each one).
#include <fmt/format.h>

#include "core/dns/mx.h"
#include "core/dns/resolver.h"
#include "core/feedback/report_mailboxes.h"
#include "core/log/log.h"
#include "core/smtp/server/session.h"

namespace kasi {

namespace {
std::string text_or(const Result& r, std::string_view def) {
    return r.msg.empty() ? std::string(def) : r.msg;
}
}  // namespace

bool Session::respond_deny(Result& r, int deny_code, int soft_code, std::string_view deny_text,
                           std::string_view soft_text, std::string_view enh5,
                           std::string_view enh4) {
    switch (r.code) {
        case Code::deny:
            reply(deny_code, text_or(r, deny_text), enh5);
            return true;
        case Code::denysoft:
            reply(soft_code, text_or(r, soft_text), enh4);
            return true;
        case Code::denydisconnect:
        case Code::disconnect:
            reply(deny_code, text_or(r, deny_text), enh5);
            disconnect_after_reply();
            return true;
        case Code::denysoftdisconnect:
            reply(soft_code, text_or(r, soft_text), enh4);
            disconnect_after_reply();
            return true;
        default:
            return false;
    }
}

void Session::hook_done(Hook h, Result r) {
    busy_ = false;
    if (h == Hook::disconnect) {  // the end: let pending writes finish, then close
        finish_close();
        return;
    }
    if (closed_ || phase_ == Phase::closing) return;
    switch (h) {
        case Hook::connect_init:
            if (implicit_tls_ && !tls_conn_) {
                log::error(
                    "[{}] connection on the smtps port {} but no TLS: list the tls "
                    "plugin in config/plugins",
                    uuid_, local_port_);
                close(false);
                return;
            }
            run_hook(Hook::lookup_rdns);
            return;
        case Hook::lookup_rdns:
            if (r.code == Code::ok) remote_host_ = r.msg;
            if (respond_refusal(r, "rDNS Lookup Failed", "rDNS Temporary Failure")) break;
            if (r.code == Code::cont && settings().rdns_lookup && host_.resolver() && !local_)
                return lookup_ptr();  // runs connect when the answer is in
            run_hook(Hook::connect);
            return;
        case Hook::connect:
            respond_connect(r);
            break;
        case Hook::helo:
            respond_helo(r, false);
            break;
        case Hook::ehlo:
            respond_helo(r, true);
            return;
        case Hook::capabilities: {
            std::string text = fmt::format("{} Hello {}[{}], {}", settings().me,
                                           remote_host_.empty() ? "" : remote_host_ + " ",
                                           remote_ip_.str(), settings().helo_message);
            for (const auto& c : caps_) text += "\n" + c;
            reply(250, text, "-");
            break;
        }
        case Hook::mail:
            respond_mail(r);
            break;
        case Hook::rcpt:
            respond_rcpt(r);
            if (busy_) return;
            break;
        case Hook::rcpt_ok:
            respond_rcpt_ok(r);
            break;
        case Hook::data:
            respond_data(r);
            break;
        case Hook::max_data_exceeded:
            ++msg_reject_;
            if (r.code == Code::denysoft)
                reply(450, text_or(r, "Message too big!"), "4.3.4");
            else
                reply(552, text_or(r, "Message too big!"), "5.3.4");
            reset_transaction();
            break;
        case Hook::data_post:
            respond_data_post(r);
            if (busy_) return;
            break;
        case Hook::queue:
            respond_queue(r, false);
            if (busy_) return;
            break;
        case Hook::queue_outbound:
            respond_queue(r, true);
            if (busy_) return;
            break;
        case Hook::pre_send_trans_email:
            seal_message();
            if (busy_) return;
            break;
        case Hook::queue_ok:
            ++msg_ok_;
            reply(250, pending_arg_, "2.0.0");
            reset_transaction();
            break;
        case Hook::unrecognized_command:
            respond_unrecognized(r);
            break;
        default:
            respond_simple(h, r);
            break;
    }
    if (!processing_) process_input();
}

// A connect-time refusal. DENY: 554, then only QUIT is served and every other command
// gets 503 (RFC 5321 §3.1; Haraka repeats the 554 instead). Anything temporary: 421 and
// close (RFC 5321 §3.8: 421 ends the session). *DISCONNECT: the reply, then close.
bool Session::respond_refusal(Result& r, std::string_view deny_text, std::string_view soft_text) {
    if (!is_deny(r.code) && r.code != Code::disconnect) return false;
    phase_ = Phase::command;
    if (r.code == Code::deny) {
        loop_text_ = text_or(r, deny_text);
        reply(554, loop_text_, "5.7.1");
        return true;
    }
    bool soft = r.code == Code::denysoft || r.code == Code::denysoftdisconnect;
    if (soft)
        reply(421, text_or(r, soft_text), "4.7.1");
    else
        reply(554, text_or(r, deny_text), "5.7.1");
    disconnect_after_reply();
    return true;
}

void Session::respond_connect(Result& r) {
    if (respond_refusal(r, "Your mail is not welcome here", "Come back later")) return;
    if (r.code == Code::ok && !r.msg.empty()) {
        phase_ = Phase::command;
        reply(220, r.msg);
        return;
    }
    send_banner();
}

void Session::respond_helo(Result& r, bool extended) {
    std::string verb = extended ? "EHLO" : "HELO";
    if (respond_deny(r, 550, 450, verb + " denied", verb + " denied")) {
        hello_host_.clear();
        if (!processing_) process_input();
        return;
    }
    if (extended) {
        send_capabilities();
        return;
    }
    reply(250,
          fmt::format("{} Hello {}[{}], {}", settings().me,
                      remote_host_.empty() ? "" : remote_host_ + " ", remote_ip_.str(),
                      settings().helo_message),
          "-");
}

void Session::respond_mail(Result& r) {
    std::string addr = "<" + pending_addr_.str() + ">";
    if (respond_deny(r, 550, 450, "sender " + addr + " denied", "sender " + addr + " denied",
                     "5.7.1", "4.7.1")) {
        ++msg_reject_;
        reset_transaction();
        return;
    }
    reply(250, text_or(r, "sender " + addr + " OK"), "2.1.0");
}

void Session::respond_rcpt(Result& r) {
    std::string addr = "<" + pending_addr_.str() + ">";
    // A report mailbox takes mail from anyone, unless a plugin refused it: what comes there
    // is read by Kasi, never relayed (core/feedback/report_mailboxes.h).
    pending_report_ = (r.code == Code::ok || r.code == Code::cont) && cfg_.reports &&
                      cfg_.reports->accepts(pending_addr_.str());
    bool accepted = r.code == Code::ok || (r.code == Code::cont && (relaying_ || rcpt_relay_ok_));
    if (pending_report_ || accepted) {
        if (txn_ && !txn_->rcpts.empty() && txn_->report != pending_report_) {
            ++rcpt_tempfail_;  // RFC 5321 §4.5.3.1.10: the client sends it in another one
            reply(452,
                  fmt::format("{} must go in a transaction of its own (reports and relayed "
                              "mail are not mixed)",
                              addr),
                  "4.5.3");
            return;
        }
        pending_arg_ = r.msg;
        run_hook(Hook::rcpt_ok, {}, &pending_addr_);
        return;
    }
    if (r.code == Code::cont) {  // nobody accepted it and the client may not relay
        ++rcpt_reject_;
        reply(550, fmt::format("I cannot deliver mail for {}", addr), "5.7.1");
        return;
    }
    bool soft = r.code == Code::denysoft || r.code == Code::denysoftdisconnect;
    if (respond_deny(r, 550, 450, "recipient " + addr + " denied", "recipient " + addr + " denied",
                     "5.7.1", "4.7.1")) {
        ++(soft ? rcpt_tempfail_ : rcpt_reject_);
        return;
    }
    // STOP or another code that means nothing here: like CONT for a non-relaying client
    ++rcpt_reject_;
    reply(550, fmt::format("I cannot deliver mail for {}", addr), "5.7.1");
}

void Session::respond_rcpt_ok(Result& r) {
    std::string addr = "<" + pending_addr_.str() + ">";
    bool soft = r.code == Code::denysoft || r.code == Code::denysoftdisconnect;
    if (respond_deny(r, 550, 450, "recipient " + addr + " denied", "recipient " + addr + " denied",
                     "5.7.1", "4.7.1")) {
        ++(soft ? rcpt_tempfail_ : rcpt_reject_);
        return;
    }
    if (!pending_report_ && host_.recipient_gate()) {
        std::string why = host_.recipient_gate()->refusal(
            pending_addr_.str(), txn_ ? txn_->mail_from.domain : "", remote_ip_.str());
        if (!why.empty()) {
            ++rcpt_reject_;
            reply(550, fmt::format("{} {}", addr, why), "5.7.1");
            return;
        }
    }
    ++rcpt_ok_;
    if (txn_) {
        txn_->rcpts.push_back(pending_addr_);
        txn_->report = pending_report_;
    }
    std::string text = !r.msg.empty()          ? r.msg
                       : !pending_arg_.empty() ? pending_arg_
                                               : "recipient " + addr + " OK";
    reply(250, text, "2.1.5");
}

void Session::respond_data(Result& r) {
    bool bdat = phase_ == Phase::bdat;
    if (bdat) {
        if (is_deny(r.code) || r.code == Code::disconnect) {
            bdat_discard_ = true;
            pending_arg_ = text_or(r, "Message denied");
            ++msg_reject_;
            if (r.code == Code::denydisconnect || r.code == Code::denysoftdisconnect ||
                r.code == Code::disconnect)
                disconnect_after_reply();
        }
        return;  // the chunk is read (kept or discarded) by process_input
    }
    if (respond_deny(r, 554, 451, "Message denied", "Message denied", "5.7.1", "4.7.1")) {
        ++msg_reject_;
        reset_transaction();
        return;
    }
    txn_->data_started = true;
    phase_ = Phase::data;
    data_.reset(settings().max_bytes, size_t(settings().max_data_line_length));
    reply(354, "go ahead, make my day");
}

void Session::respond_data_post(Result& r) {
    if (respond_deny(r, 550, 450, "Message denied", "Message denied temporarily", "5.7.1",
                     "4.7.1")) {
        ++msg_reject_;
        reset_transaction();
        return;
    }
    // A report is Kasi's to read: no queue plugin forwards or declines it.
    if (txn_->report) return queue_message();
    run_hook(relaying_ ? Hook::queue_outbound : Hook::queue);
}

void Session::respond_queue(Result& r, bool outbound) {
    std::string id = txn_->uuid;
    if (r.code == Code::ok) {
        pending_arg_ = r.msg.empty() ? fmt::format("Message Queued ({})", id)
                                     : fmt::format("{} ({})", r.msg, id);
        run_hook(Hook::queue_ok, pending_arg_);
        return;
    }
    if (r.code == Code::cont || r.code == Code::stop) {
        // Haraka's routing note: a plugin that wants the message delivered by the outbound
        // queue (queue/smtp_forward, queue/lmtp) says so in queue.wants.
        auto wants = txn_->notes.find("queue.wants");
        if (outbound || (wants != txn_->notes.end() && !wants->second.empty())) {
            // Haraka's pre_send_trans_email: plugins may still add headers or notes
            // (DKIM signing of relayed mail); whatever they answer, the message is queued.
            if (cfg_.hooks && !cfg_.hooks->at(Hook::pre_send_trans_email).empty())
                return run_hook(Hook::pre_send_trans_email);
            seal_message();  // then the spool answers through spool_done()
            return;
        }
        ++msg_tempfail_;
        reply(451, fmt::format("Queuing declined or disabled, try later ({})", id), "4.3.0");
        reset_transaction();
        return;
    }
    bool soft = r.code == Code::denysoft || r.code == Code::denysoftdisconnect;
    std::string text = fmt::format(
        "{} ({})", text_or(r, soft ? "Message denied temporarily" : "Message denied"), id);
    r.msg = text;
    respond_deny(r, 550, 450, text, text, "5.7.1", "4.7.1");
    ++(soft ? msg_tempfail_ : msg_reject_);
    reset_transaction();
}

void Session::respond_unrecognized(Result& r) {
    if (r.code == Code::ok) return;  // the plugin handled the command and replied
    ++errors_;
    switch (r.code) {
        case Code::denydisconnect:
        case Code::disconnect:
            reply(521, text_or(r, "Unrecognized command"), "5.5.1");
            disconnect_after_reply();
            return;
        case Code::denysoftdisconnect:
            reply(421, text_or(r, "Unrecognized command"), "4.5.1");
            disconnect_after_reply();
            return;
        default:
            reply(500, text_or(r, "Unrecognized command"), "5.5.1");
    }
}

void Session::respond_simple(Hook h, Result& r) {
    log::debug("[{}] hook {} answered {}", uuid_, hook_name(h), code_name(r.code));
}

// The first PTR name becomes the remote host, as Haraka's core does; NXDOMAIN and other
// failures leave it empty (the greeting then says "Hello [ip]") and show in the
// disconnect line. The session may be gone when the answer comes.
void Session::lookup_ptr() {
    std::weak_ptr<Session> weak = weak_from_this();
    busy_ = true;
    host_.resolver()->query(reverse_name(remote_ip_), DnsType::ptr, [weak](const DnsResponse& d) {
        auto s = weak.lock();
        if (!s || s->closed_) return;
        s->busy_ = false;
        if (d.status == DnsStatus::ok && !d.records.empty())
            s->remote_host_ = d.records.front().name;
        else
            s->rdns_status_ = d.status == DnsStatus::nxdomain || d.status == DnsStatus::nodata
                                  ? "NXDOMAIN"
                                  : "DNSERROR";
        s->run_hook(Hook::connect);
    });
}

}  // namespace kasi
