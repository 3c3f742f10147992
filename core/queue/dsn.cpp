#include "core/queue/dsn.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "core/smtp/client/reply_parser.h"
#include "core/util/clock.h"
#include "core/util/ids.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

const char* builtin_template =
    "Received: (Kasi {pid} invoked for bounce); {date}\n"
    "Date: {date}\n"
    "From: MAILER-DAEMON@{me}\n"
    "To: {to}\n"
    "Auto-Submitted: auto-replied\n"
    "Subject: failure notice\n"
    "Message-Id: {msgid}\n"
    "\n"
    "Hi. This is the Kasi mailer at {me}.\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\n"
    "\n"
    "{details}";

const char* delayed_template =
    "Received: (Kasi {pid} invoked for delay warning); {date}\n"
    "Date: {date}\n"
    "From: MAILER-DAEMON@{me}\n"
    "To: {to}\n"
    "Auto-Submitted: auto-replied\n"
    "Subject: delivery delayed\n"
    "Message-Id: {msgid}\n"
    "\n"
    "Hi. This is the Kasi mailer at {me}.\n"
    "Your message has not been delivered to the following addresses yet.\n"
    "This is a temporary problem; I will keep trying until {retry_until}.\n"
    "You do not need to send the message again.\n"
    "\n"
    "{details}";

// Placeholder values are forced onto one line so a reply text cannot add headers.
std::string one_line(std::string_view s) {
    std::string out;
    for (char c : s) out += (c == '\r' || c == '\n') ? ' ' : c;
    return out;
}

// {details} is several lines, made of values that were forced onto one line each.
std::string fill(std::string_view tpl, const std::map<std::string, std::string>& vars) {
    std::string out;
    for (size_t i = 0; i < tpl.size(); ++i) {
        if (tpl[i] == '{') {
            size_t end = tpl.find('}', i);
            if (end != std::string_view::npos && end - i < 40) {
                std::string key(tpl.substr(i + 1, end - i - 1));
                auto it = vars.find(key);
                out += it == vars.end()   ? "?"
                       : key == "details" ? it->second
                                          : one_line(it->second);
                i = end;
                continue;
            }
        }
        out += tpl[i];
    }
    return out;
}

std::string crlf(std::string_view s) {
    std::string out;
    out.reserve(s.size() + s.size() / 32);
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
        out += s[i];
    }
    return out;
}

std::string find_message_id(std::string_view headers) {
    size_t pos = 0;
    while (pos < headers.size()) {
        size_t eol = headers.find('\n', pos);
        std::string_view line =
            headers.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        if (istarts_with(line, "message-id:")) {
            std::string v(trim(line.substr(11)));
            return v;
        }
        if (eol == std::string_view::npos) break;
        pos = eol + 1;
    }
    return {};
}

std::string read_template(const std::string& path) {
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "re")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
    }
    return text;
}

// What a class means, in words for the sender of the message (the DSN's text part).
std::string_view class_words(std::string_view cls) {
    static constexpr std::pair<std::string_view, std::string_view> words[] = {
        {"invalid_recipient", "the address does not exist"},
        {"mailbox_full", "the mailbox is full"},
        {"inactive_mailbox", "the mailbox is disabled or inactive"},
        {"spam_block", "the message was refused as spam"},
        {"reputation_block", "the receiving provider refused mail from this sending server"},
        {"rate_limited", "the receiving provider limited the sending rate"},
        {"policy", "the receiving site's policy refused the message"},
        {"content", "the message content was refused"},
        {"message_too_big", "the message is too big"},
        {"dns_failure", "the recipient's domain could not be found in the DNS"},
        {"tls_failure", "no secure (TLS) connection could be made"},
        {"connection_failure", "the receiving mail server could not be reached"},
        {"protocol_error", "the receiving mail server broke the SMTP protocol"},
        {"remote_system", "the receiving mail server had a problem"},
        {"expired", "the message could not be delivered in time"},
    };
    for (const auto& [c, w] : words)
        if (c == cls) return w;
    return {};
}

// The text part's list: each recipient, its reply, and what the failure means.
std::string details(const DsnInput& in) {
    std::string out;
    for (const auto& r : in.rcpts) {
        out +=
            one_line(r.address) + ": " + one_line(r.diagnostic.empty() ? in.reason : r.diagnostic);
        out += "\n";
        if (!r.cls) continue;
        std::string_view w = class_words(r.cls->cls);
        out += fmt::format("    {}{}(reason: {}, class: {})\n", w, w.empty() ? "" : " ",
                           one_line(r.cls->reason), one_line(r.cls->cls));
    }
    return out;
}

// One recipient's lines of the report, from its last reply "<code> [<x.y.z>] text".
DsnRecipient report_line(const QueuedMessage& m, uint32_t i, bool warning, int64_t now,
                         const DsnOptions& o) {
    const auto& st = m.rcpts[i];
    DsnRecipient r;
    r.address = st.address;
    std::string_view lr = st.reply();
    int code = lr.size() >= 3 ? std::atoi(std::string(lr.substr(0, 3)).c_str()) : 0;
    std::string_view rest = lr.size() > 4 ? lr.substr(4) : std::string_view{};
    std::string enh(leading_enhanced_code(rest));
    r.status = warning ? (enh.empty() || enh[0] != '4' ? "4.0.0" : enh) : final_status(code, enh);
    r.diagnostic = st.reply();
    if (m.extra) {
        for (const auto& [idx, mta] : m.extra->failed_mta)
            if (idx == i) r.remote_mta = mta;
        for (const auto& [idx, c] : m.extra->failed_class)
            if (idx == i) r.cls = c;
    }
    if (!r.cls && o.classify && !warning && !lr.empty()) r.cls = o.classify(st.reply());
    r.last_attempt_ms = now;
    return r;
}

}  // namespace

DsnInput dsn_input(const QueuedMessage& m, const DsnOptions& o, std::string original,
                   const std::vector<uint32_t>& delayed, int64_t now) {
    bool warning = !delayed.empty();
    DsnInput in;
    in.me = o.me;
    in.original_sender = m.mail_from;
    in.original_id = m.id;
    in.arrival_ms = m.received_ms;
    in.whole_message = o.include_message && !warning;
    in.original = in.whole_message ? std::move(original) : std::string(header_block(original));
    in.delayed = warning;
    if (warning) in.retry_until_ms = m.received_ms + o.max_age_ms;
    if (!warning && !o.template_path.empty()) in.template_text = read_template(o.template_path);
    for (uint32_t i = 0; i < m.rcpts.size(); ++i) {
        const auto& st = m.rcpts[i];
        bool want = warning ? std::find(delayed.begin(), delayed.end(), i) != delayed.end()
                            : st.status == RcptStatus::failed && !st.deleted;
        if (!want) continue;
        if (in.reason.empty()) in.reason = st.reply();
        in.rcpts.push_back(report_line(m, i, warning, now, o));
    }
    return in;
}

std::string_view header_block(std::string_view msg) {
    size_t p = msg.find("\r\n\r\n");
    if (p != std::string_view::npos) return msg.substr(0, p + 4);
    p = msg.find("\n\n");
    if (p != std::string_view::npos) return msg.substr(0, p + 2);
    return msg;
}

std::string final_status(int code, const std::string& enhanced) {
    std::string s = enhanced;
    if (s.empty()) s = code / 100 == 5 ? "5.0.0" : "4.0.0";
    if (s[0] == '4') s[0] = '5';
    return s;
}

std::string build_dsn(const DsnInput& in, int64_t now, std::string& msgid) {
    std::string boundary = "kasi_dsn_" + new_uuid();
    msgid = fmt::format("<{}@{}>", new_uuid(), in.me);
    std::string date = rfc5322_date(now / 1000);
    std::string recipients;
    for (const auto& r : in.rcpts) recipients += (recipients.empty() ? "" : ", ") + r.address;
    std::string orig_headers(header_block(in.original));
    std::string subject;
    std::map<std::string, std::string> vars{
        {"date", date},
        {"me", in.me},
        {"from", "MAILER-DAEMON@" + in.me},
        {"to", in.original_sender},
        {"subject", subject},
        {"recipients", recipients},
        {"reason", in.reason},
        {"extended_reason", in.rcpts.empty() ? "" : in.rcpts[0].diagnostic},
        {"details", details(in)},
        {"pid", std::to_string(::getpid())},
        {"msgid", msgid},
        {"retry_until", in.retry_until_ms ? rfc5322_date(in.retry_until_ms / 1000) : "later"},
    };
    std::string tpl = fill(in.delayed                 ? delayed_template
                           : in.template_text.empty() ? builtin_template
                                                      : in.template_text,
                           vars);
    std::string_view tv = tpl;
    size_t split = tv.find("\n\n");
    std::string head(tv.substr(0, split == std::string_view::npos ? tv.size() : split + 1));
    std::string text(split == std::string_view::npos ? "" : tv.substr(split + 2));
    std::string orig_msgid = find_message_id(orig_headers);

    std::string m = crlf(head);
    if (!orig_msgid.empty()) m += "References: " + orig_msgid + "\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += fmt::format(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{}\"\r\n\r\n",
        boundary);
    m += "This is a MIME-encapsulated message.\r\n\r\n";
    m += fmt::format("--{}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    m += crlf(text);
    if (m.size() < 2 || m.substr(m.size() - 2) != "\r\n") m += "\r\n";
    m += fmt::format("\r\n--{}\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
    if (!orig_msgid.empty()) m += "X-Original-Message-ID: " + one_line(orig_msgid) + "\r\n";
    m += fmt::format("Reporting-MTA: dns; {}\r\n", in.me);
    m += fmt::format("Arrival-Date: {}\r\n", rfc5322_date(in.arrival_ms / 1000));
    for (const auto& r : in.rcpts) {
        m += fmt::format("\r\nFinal-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
                         one_line(r.address), in.delayed ? "delayed" : "failed", r.status);
        if (!r.remote_mta.empty()) m += fmt::format("Remote-MTA: dns; {}\r\n", r.remote_mta);
        if (!r.diagnostic.empty())
            m += fmt::format("Diagnostic-Code: smtp; {}\r\n", one_line(r.diagnostic));
        if (r.last_attempt_ms)
            m += fmt::format("Last-Attempt-Date: {}\r\n", rfc5322_date(r.last_attempt_ms / 1000));
        if (r.cls)
            m += fmt::format("X-Kasi-Classification: reason={}; class={}; hard={}; scope={}\r\n",
                             one_line(r.cls->reason), one_line(r.cls->cls),
                             r.cls->hard ? "yes" : "no", scope_name(r.cls->scope));
        if (in.delayed && in.retry_until_ms)
            m += fmt::format("Will-Retry-Until: {}\r\n", rfc5322_date(in.retry_until_ms / 1000));
    }
    if (in.whole_message) {
        m += fmt::format("\r\n--{}\r\nContent-Type: message/rfc822\r\n\r\n", boundary);
        m += crlf(in.original);
    } else {
        m += fmt::format("\r\n--{}\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
        m += crlf(orig_headers);
    }
    if (m.size() < 2 || m.substr(m.size() - 2) != "\r\n") m += "\r\n";
    m += fmt::format("\r\n--{}--\r\n", boundary);
    return m;
}

}  // namespace kasi
