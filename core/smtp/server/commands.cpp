// SMTP verbs: syntax and sequence checks, then the verb's hook. The reply is given by the
// hook's respond function (responder.cpp) unless the command fails a check here first.
#include <fmt/format.h>

#include "core/log/log.h"
#include "core/server/loop_inbox.h"
#include "core/smtp/command.h"
#include "core/smtp/headers.h"
#include "core/smtp/mime_scan.h"
#include "core/smtp/server/session.h"
#include "core/spool/intake.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// A session opened with HELO (RFC 821) is 7-bit: 8BITMIME and SMTPUTF8 are EHLO extensions.
// Like Haraka, any command with a byte over 127 after HELO is a syntax error.
bool has_8bit(std::string_view line) {
    for (unsigned char c : line)
        if (c > 127) return true;
    return false;
}

}  // namespace

void Session::dispatch(std::string_view line) {
    auto cmd = split_command(line);
    const auto& v = cmd.verb;
    if (shutting_down_ && v != "QUIT") {
        reply(421, fmt::format("{} Service shutting down, try again later", settings().me),
              "4.3.2");
        disconnect_after_reply();
        return;
    }
    if (!esmtp_ && !hello_host_.empty() && has_8bit(line))
        return reply(501, "Syntax error (8-bit characters not allowed)", "5.5.2");
    if (!loop_text_.empty() && v != "QUIT") {
        ++errors_;
        return reply(503, fmt::format("Bad sequence of commands: {}", loop_text_), "5.5.1");
    }
    if (v == "EHLO") return cmd_helo(cmd.arg, true);
    if (v == "HELO") return cmd_helo(cmd.arg, false);
    if (v == "MAIL") return cmd_mail(cmd.arg);
    if (v == "RCPT") return cmd_rcpt(cmd.arg);
    if (v == "DATA") return cmd_data(cmd.arg);
    if (v == "BDAT" && (settings().chunking || local_)) return cmd_bdat(cmd.arg);
    if (v == "RSET") return cmd_rset(cmd.arg);
    if (v == "QUIT") return cmd_quit(cmd.arg);
    if (v == "NOOP") return reply(250, "OK");
    if (v == "PROXY") {  // a PROXY header from a host not in [haproxy] hosts
        log::notice("[{}] PROXY header from {}, which is not in connection.ini [haproxy] hosts",
                    uuid_, remote_ip_.str());
        reply(421, fmt::format("PROXY not allowed from {}", remote_ip_.str()), "5.7.1");
        disconnect_after_reply();
        return;
    }
    if (v == "VRFY") return reply(252, "Just try sending a mail and we'll see how it turns out...");
    if (v == "HELP") return reply(250, "Not implemented");
    cmd_unknown(line);
}

void Session::cmd_helo(const std::string& arg, bool extended) {
    auto host = trim(arg);
    if (host.empty()) {
        ++errors_;
        return reply(501, fmt::format("{} requires domain/address - see RFC-2821 4.1.1.1",
                                      extended ? "EHLO" : "HELO"));
    }
    for (unsigned char c : host)
        if (c < 0x20 || c == 0x7f) {
            ++errors_;
            return reply(501, fmt::format("{} syntax error - see RFC-2821 4.1.1.1",
                                          extended ? "EHLO" : "HELO"));
        }
    reset_transaction();
    hello_host_ = std::string(host);
    esmtp_ = extended;
    pending_arg_ = hello_host_;
    run_hook(extended ? Hook::ehlo : Hook::helo, pending_arg_);
}

void Session::send_capabilities() {
    const auto& s = settings();
    caps_.clear();
    caps_.push_back("PIPELINING");
    caps_.push_back("8BITMIME");
    if (s.smtputf8) caps_.push_back("SMTPUTF8");
    caps_.push_back(fmt::format("SIZE {}", s.max_bytes));
    if (s.enhanced_status_codes) caps_.push_back("ENHANCEDSTATUSCODES");
    if (s.chunking) caps_.push_back("CHUNKING");
    run_hook(Hook::capabilities);
}

void Session::cmd_mail(const std::string& arg) {
    if (hello_host_.empty()) {
        ++errors_;
        return reply(503, "Use EHLO/HELO before MAIL");
    }
    auto rest = strip_path_prefix(arg, "FROM");
    if (!rest) {
        ++errors_;
        return reply(501, "Command parsing failed", "5.5.4");
    }
    bool strict = settings().strict;
    std::string path = strict ? std::string(*rest) : bracket_path(*rest, true);
    auto p = parse_path(path, /*allow_null=*/true, /*allow_utf8=*/settings().smtputf8);
    if (!p.address) {
        ++errors_;
        return reply(501, fmt::format("Invalid MAIL FROM address {}: {}", *rest, p.error), "5.1.7");
    }
    std::vector<EsmtpParam> params;
    std::string perr;
    if (!parse_esmtp_params(p.rest, params, perr)) {
        ++errors_;
        return reply(501, fmt::format("Command parsing failed: {}", perr), "5.5.4");
    }
    if (!params.empty() && !esmtp_) return reply(555, "Invalid command parameters");
    // Not strict (Haraka's way): a parameter Kasi does not know, or a SIZE, BODY or
    // SMTPUTF8 it cannot read, is ignored rather than refused.
    auto txn = std::make_unique<Transaction>();
    for (const auto& prm : params) {
        if (prm.key == "SIZE") {
            unsigned long long n;
            if (!prm.value || !parse_u64(*prm.value, n)) {
                if (!strict) continue;
                return reply(501, "Bad SIZE parameter", "5.5.4");
            }
            if (n > settings().max_bytes) {
                ++msg_reject_;
                return reply(552, "Message too big!", "5.3.4");
            }
            txn->declared_size = n;
        } else if (prm.key == "BODY") {
            if (!prm.value || !(iequals(*prm.value, "7BIT") || iequals(*prm.value, "8BITMIME"))) {
                if (!strict) continue;
                return reply(501, "Unsupported BODY type", "5.5.4");
            }
            txn->body_8bit = iequals(*prm.value, "8BITMIME");
        } else if (prm.key == "SMTPUTF8" && settings().smtputf8 && !prm.value) {
            txn->smtputf8 = true;
        } else if (prm.key == "AUTH") {
            // RFC 4954 §5: accepted and not trusted.
        } else if (strict) {
            return reply(555, fmt::format("Unsupported parameter {}", prm.key), "5.5.4");
        }
    }
    if (p.address->utf8 && !txn->smtputf8)
        return reply(553, "Non-ASCII address requires the SMTPUTF8 parameter", "5.6.7");
    // A second MAIL inside a transaction starts a new one, as in Haraka.
    reset_transaction();
    ++txn_count_;
    txn->uuid = fmt::format("{}.{}", uuid_, txn_count_);
    if (preset_) {  // a local session: the API chose the id and notes
        txn->uuid = std::move(preset_->first);
        txn->notes = std::move(preset_->second);
        preset_.reset();
    }
    txn->mail_from = *p.address;
    txn_ = std::move(txn);
    pending_addr_ = *p.address;
    run_hook(Hook::mail, {}, &pending_addr_);
}

void Session::cmd_rcpt(const std::string& arg) {
    if (!txn_) {
        ++errors_;
        return reply(503, "Use MAIL before RCPT");
    }
    auto rest = strip_path_prefix(arg, "TO");
    if (!rest) {
        ++errors_;
        return reply(501, "Command parsing failed", "5.5.4");
    }
    bool strict = settings().strict;
    std::string path = strict ? std::string(*rest) : bracket_path(*rest, false);
    if (iequals(path, "<postmaster>")) {  // RFC 5321 §4.1.1.3: valid, but there is none here
        ++rcpt_reject_;
        return reply(550, "No local mailbox <postmaster> here (Kasi delivers no local mail)",
                     "5.1.1");
    }
    auto p = parse_path(path, /*allow_null=*/false, /*allow_utf8=*/txn_->smtputf8);
    if (!p.address) {
        ++errors_;
        ++rcpt_reject_;
        return reply(501, fmt::format("Invalid RCPT TO address {}: {}", *rest, p.error), "5.1.3");
    }
    std::vector<EsmtpParam> params;
    std::string perr;
    if (!parse_esmtp_params(p.rest, params, perr)) {
        ++errors_;
        return reply(501, "Command parsing failed", "5.5.4");
    }
    if (!params.empty()) {  // none is offered; not strict, they are ignored as Haraka does
        if (!esmtp_) return reply(555, "Invalid command parameters");
        if (strict)
            return reply(555, fmt::format("Unsupported parameter {}", params[0].key), "5.5.4");
    }
    if (int(txn_->rcpts.size()) >= settings().max_recipients) {
        ++rcpt_tempfail_;
        return reply(452, "Too many recipients", "4.5.3");
    }
    pending_addr_ = *p.address;
    rcpt_relay_ok_ = false;
    run_hook(Hook::rcpt, {}, &pending_addr_);
}

void Session::cmd_data(const std::string& arg) {
    if (!arg.empty()) {
        ++errors_;  // counted, as Haraka counts it (limit.ini [errors])
        return reply(501, "Syntax error", "5.5.4");
    }
    if (!txn_) {
        ++errors_;
        return reply(503, "MAIL required first");
    }
    if (txn_->rcpts.empty()) {
        ++errors_;
        return reply(503, "RCPT required first");
    }
    if (txn_->data_started) return reply(503, "Bad sequence of commands: BDAT in progress");
    run_hook(Hook::data);
}

void Session::cmd_bdat(const std::string& arg) {
    auto parts = split_list(arg, " ");
    unsigned long long n = 0;
    bool last = parts.size() == 2 && iequals(parts[1], "LAST");
    if (parts.empty() || parts.size() > 2 || (parts.size() == 2 && !last) ||
        !parse_u64(parts[0], n)) {
        // The chunk size is unknown, so the byte stream cannot be followed any further.
        reply(501, "Syntax error in BDAT parameters", "5.5.4");
        disconnect_after_reply();
        return;
    }
    bdat_left_ = n;
    bdat_last_ = last;
    if (!txn_ || !txn_->data_started) bdat_lines_ = LineEndCheck{};  // a new message
    phase_ = Phase::bdat;
    bdat_discard_ = false;
    if (!txn_ || txn_->rcpts.empty() || txn_->bdat_failed) {
        bdat_discard_ = true;
        pending_arg_ = !txn_                 ? "MAIL required first"
                       : txn_->rcpts.empty() ? "RCPT required first"
                                             : "BDAT refused earlier; send RSET";
        if (!txn_ || txn_->rcpts.empty()) ++errors_;
        return;
    }
    if (!txn_->data_started) {
        txn_->data_started = true;
        run_hook(Hook::data);  // its respond function decides whether the chunk is kept
    }
}

void Session::bdat_chunk_done() {
    phase_ = Phase::command;
    if (bdat_discard_) {
        if (txn_) txn_->bdat_failed = true;
        if (pending_arg_.starts_with("MAIL") || pending_arg_.starts_with("RCPT") ||
            pending_arg_.starts_with("BDAT"))
            return reply(503, pending_arg_, "5.5.1");
        return reply(554, pending_arg_.empty() ? "Message denied" : pending_arg_, "5.7.1");
    }
    if (!bdat_last_) return reply(250, fmt::format("{} octets received", txn_->body.size()));
    if (bdat_lines_.finish() != LineEndCheck::Result::ok) return refuse_line_ends();
    data_finished();
}

void Session::refuse_line_ends() {
    // Haraka 3.3.4's bare-LF answer, for a bare CR too: the message is not stored, the
    // client may retry it with proper CRLF line ends.
    reply(451, "Bare line-feed; see https://haraka.github.io/barelf/", "4.5.0");
    ++msg_tempfail_;
    disconnect_after_reply();
}

void Session::data_finished() {
    bool was_data = phase_ == Phase::data;
    phase_ = Phase::command;
    bytes_ += txn_->body.size();
    if (was_data && data_.too_big()) txn_->too_big = true;
    if (was_data && data_.wrapped()) {
        txn_->wrapped_lines = true;
        txn_->notes["data_line_length_exceeded"] = "1";
    }
    if (txn_->too_big) {
        run_hook(Hook::max_data_exceeded);
        return;
    }
    finish_message();
}

void Session::finish_message() {
    const auto& s = settings();
    HeaderFacts f = scan_headers(txn_->body, size_t(s.max_header_lines));
    if (f.received > s.max_received) {
        ++msg_reject_;
        reply(554, "Too many received headers - possible mail loop", "5.4.6");
        reset_transaction();
        return;
    }
    if (f.line_limit_hit)
        log::warn("[{}] message reached the header parsing limit of {} lines (headers.max_lines)",
                  txn_->uuid, s.max_header_lines);
    if (count_mime_parts(txn_->body, size_t(s.max_mime_parts)) >= size_t(s.max_mime_parts)) {
        ++msg_reject_;
        reply(554, "Transaction failed due to too many MIME parts", "5.3.4");
        reset_transaction();
        disconnect_after_reply();
        return;
    }
    std::string prefix;
    int64_t now = now_ms();
    if (s.add_received && !local_) {  // the API wrote its own ("with HTTP")
        ReceivedInfo ri;
        ri.helo = hello_host_;
        ri.rdns = remote_host_;
        ri.ip = remote_ip_.str();
        ri.me = s.me;
        ri.version = s.show_version ? "Kasi/" KASI_VERSION : "";
        ri.id = txn_->uuid;
        ri.envelope_from = txn_->mail_from.str();
        ri.esmtp = esmtp_;
        ri.tls = tls_;
        ri.tls_cipher = tls_version_.empty() ? "" : tls_version_ + " cipher " + tls_cipher_;
        ri.auth = !auth_user_.empty();
        ri.epoch_s = now / 1000;
        prefix = build_received(ri);
    }
    if (!f.has_message_id) prefix += fmt::format("Message-ID: <{}@{}>\r\n", txn_->uuid, s.me);
    if (!f.has_date) prefix += fmt::format("Date: {}\r\n", rfc5322_date(now / 1000));
    txn_->body.insert(0, prefix);
    run_hook(Hook::data_post);
}

// The transaction's body and notes go to the sealing steps and come back sealed (moved,
// not copied); a session that closed meanwhile drops them.
void Session::seal_message() {
    if (!cfg_.seal || txn_->report) return queue_message();  // a report is kept as it came
    busy_ = true;
    Transaction& t = *txn_;
    std::vector<std::string> rcpts;
    for (const auto& r : t.rcpts) rcpts.push_back(r.str());
    SealInput msg{t.uuid,           t.mail_from.null,   t.mail_from.domain,
                  std::move(rcpts), std::move(t.notes), std::move(t.body)};
    std::weak_ptr<Session> weak = weak_from_this();
    cfg_.seal(host_.loop(), std::move(msg), [weak](SealInput sealed) {
        auto s = weak.lock();
        if (!s || s->closed_ || !s->txn_) return;
        s->txn_->notes = std::move(sealed.notes);
        s->txn_->body = std::move(sealed.body);
        s->queue_message();
    });
}

void Session::queue_message() {
    busy_ = true;
    std::weak_ptr<Session> weak = weak_from_this();
    LoopInbox* inbox = &host_.inbox();
    Envelope env;  // who handed it in: the API's client for a local session
    env.id = txn_->uuid;
    env.mail_from = txn_->mail_from.str();
    for (const auto& r : txn_->rcpts) env.rcpts.push_back(r.str());
    env.client_ip = remote_ip_.str();
    env.helo = local_ ? "" : hello_host_;
    env.auth_user = local_ ? local_->who : auth_user_;
    env.tls = local_ ? local_->tls : tls_;
    env.relaying = relaying_;
    env.notes = txn_->notes;
    if (txn_->report) env.notes["kasi.report"] = "1";  // read by the report transport
    host_.intake().submit(std::move(env), std::move(txn_->body), local_ != nullptr,
                          [weak, inbox](const SpoolResult& r) {
                              inbox->post([weak, r] {
                                  if (auto s = weak.lock()) s->spool_done(r);
                              });
                          });
}

void Session::spool_done(const SpoolResult& r) {
    busy_ = false;
    if (closed_ || !txn_) return;
    if (r.err != 0) {
        ++msg_tempfail_;
        reply(452, "Insufficient system storage, try again later", "4.3.1");
        reset_transaction();
    } else {
        pending_arg_ = fmt::format("Message Queued ({})", txn_->uuid);
        run_hook(Hook::queue_ok, pending_arg_);
        return;
    }
    process_input();
}

void Session::cmd_rset(const std::string& arg) {
    if (!arg.empty()) {
        ++errors_;  // counted, as Haraka counts it (limit.ini [errors])
        return reply(501, "Syntax error", "5.5.4");
    }
    reset_transaction();
    reply(250, "OK");
}

void Session::cmd_quit(const std::string&) {
    reply(221, fmt::format("{} {}", settings().me, settings().close_message));
    disconnect_after_reply();
}

void Session::cmd_unknown(std::string_view line) {
    pending_arg_ = std::string(line);
    run_hook(Hook::unrecognized_command, pending_arg_);
}

}  // namespace kasi
