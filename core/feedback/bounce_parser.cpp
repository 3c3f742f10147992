#include "core/feedback/bounce_parser.h"

#include <algorithm>

#include "core/feedback/auto_reply.h"
#include "core/feedback/bounce_mta.h"
#include "core/feedback/bounce_text.h"
#include "core/feedback/delivery_status.h"
#include "core/feedback/ses_bounce.h"
#include "core/feedback/text_charset.h"
#include "core/mime/mime_tree.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

using mime::HeaderFields;
using mime::Part;

// The first address of a header value ("Name <a@b>" -> "a@b"), lower-cased.
std::string first_address(std::string_view value) {
    auto a = addresses_in(value, 1);
    return a.empty() ? std::string() : a.front();
}

// What the message says about itself that makes it a bounce.
bool says_bounce(const HeaderFields& h, bool null_return_path_counts) {
    if (h.has("X-Failed-Recipients")) return true;
    auto from = to_lower(h.get("From"));
    for (std::string_view who :
         {"mailer-daemon", "postmaster", "post_master", "mail delivery", "mail-daemon",
          "mailer_daemon", "maildelivery", "mail administrator"})
        if (from.find(who) != std::string::npos) return true;
    auto subject = to_lower(mime::decode_words(h.get("Subject")));
    for (std::string_view s : {"undeliver",
                               "delivery status notification",
                               "returned mail",
                               "failure notice",
                               "delivery failure",
                               "mail delivery failed",
                               "delivery failed",
                               "not delivered",
                               "non-delivery",
                               "nondeliver",
                               "could not be delivered",
                               "delivery problem",
                               "could not send",
                               "delivery notification",
                               "mail system error",
                               "delivery report",
                               "failed delivery",
                               "returned to sender",
                               "message status",
                               "rejected",
                               "bounce",
                               "delivery has failed",
                               "error sending",
                               "mail failure",
                               "not be delivered"})
        if (subject.find(s) != std::string::npos) return true;
    auto rp = trim(h.get("Return-Path"));
    return null_return_path_counts && rp == "<>";
}

// What the human text says that only a bounce says (the first 8 KB are read).
bool text_says_bounce(std::string_view text) {
    auto t = to_lower(text.substr(0, 8192));
    for (std::string_view s : {"could not be delivered",
                               "couldn't be delivered",
                               "was not delivered",
                               "wasn't delivered",
                               "undeliverable",
                               "delivery has failed",
                               "delivery failed",
                               "permanent error",
                               "permanent fatal error",
                               "following address(es) failed",
                               "following addresses had",
                               "following recipients failed",
                               "delivery to the following",
                               "unable to deliver",
                               "could not deliver",
                               "not able to deliver",
                               "failed to deliver",
                               "error delivering",
                               "message could not be sent",
                               "delivery status notification",
                               "mail delivery failed",
                               "returned mail",
                               "was unable to deliver",
                               "could not reach"})
        if (t.find(s) != std::string::npos) return true;
    return false;
}

const Part* returned_message(const Part& top) {
    for (std::string_view t :
         {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers"})
        if (auto* p = mime::find_part(top, t)) return p->children.empty() ? p : &p->children[0];
    return nullptr;
}

// The returned message's headers: a MIME part, else the text after the separator line.
HeaderFields original_headers(const Part& top, const BounceText& text) {
    if (auto* p = returned_message(top)) {
        if (!p->headers.fields.empty()) return p->headers;
        size_t used = 0;
        return mime::parse_fields(p->body, used);
    }
    size_t used = 0;
    return mime::parse_fields(text.returned, used);
}

void fill_original(BounceReport& r, const HeaderFields& orig, const HeaderFields& top) {
    r.original_message_id = std::string(trim(orig.get("Message-ID")));
    r.original_subject = mime::decode_words(orig.get("Subject"));
    for (const auto& f : orig.fields)
        if (istarts_with(f.name, "X-Kasi-") && r.original_kasi_headers.size() < 20)
            r.original_kasi_headers.emplace_back(f.name, f.value);
    for (std::string_view name : {"From", "Return-Path", "Sender"}) {
        auto a = first_address(orig.get(name));
        if (!a.empty()) {
            r.addresser = a;
            return;
        }
    }
    r.addresser = first_address(top.get("To"));
}

// The text a recipient's diagnostic is looked for in: the human-readable part, else the
// body of the message itself.
std::string report_text(const Part& top) {
    auto t = human_text_utf8(top);
    if (t.empty() && (!top.content_type.multipart() || top.opaque))
        t = iso2022_to_utf8(to_utf8(top.body, top.content_type.param("charset")));
    return t;
}

// The human text's words about one recipient, when the DSN fields have none.
std::string words_about(const std::vector<TextRecipient>& found, std::string_view address) {
    for (const auto& f : found)
        if (f.address == address) return f.diagnostic;
    return found.size() == 1 ? found.front().diagnostic : std::string();
}

// The lines of a report that carry a reply code or status: the diagnostic when no
// recipient line had one.
std::string coded_lines(std::string_view report) {
    std::string out;
    size_t pos = 0;
    while (pos < report.size() && out.size() < 2048) {
        size_t nl = report.find('\n', pos);
        auto line =
            report.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? report.size() : nl + 1;
        auto f = reply_facts(line);
        if (f.code || !f.status.empty()) {
            if (!out.empty()) out += ' ';
            out += one_line(line);
        }
    }
    return out;
}

// "550-5.7.1 first line 550-5.7.1 second line" (a multi-line reply unfolded into one
// line) -> "550-5.7.1 first line second line": the repeated prefixes are not words.
std::string drop_repeated_prefix(const std::string& d) {
    if (d.size() < 5 || !isdigit((unsigned char)d[0]) || !isdigit((unsigned char)d[1]) ||
        !isdigit((unsigned char)d[2]) || (d[3] != '-' && d[3] != ' '))
        return d;
    std::string code = d.substr(0, 3);
    auto f = reply_facts(d.substr(0, 16));
    std::string out = d.substr(0, 4);
    size_t i = 4;
    while (i < d.size()) {
        bool at_word = d[i - 1] == ' ';
        if (at_word && d.compare(i, 3, code) == 0 && i + 3 < d.size() &&
            (d[i + 3] == '-' || d[i + 3] == ' ')) {
            size_t j = i + 4;
            if (!f.status.empty() && d.compare(j, f.status.size(), f.status) == 0 &&
                j + f.status.size() < d.size() && d[j + f.status.size()] == ' ')
                j += f.status.size() + 1;
            i = j;
            continue;
        }
        out += d[i++];
    }
    return out;
}

void classify(const Classifier& c, BouncedRecipient& r, const std::string& words,
              std::string_view mta) {
    r.diagnostic = drop_repeated_prefix(r.diagnostic);
    auto facts = reply_facts(r.diagnostic);
    if (!r.reply_code) r.reply_code = facts.code;
    if (r.status.empty()) r.status = facts.status;
    // "Status: 5.0.0" says only "failed"; the reply's own "5.1.0" says what failed
    if (r.status.size() == 5 && r.status.compare(1, 4, ".0.0") == 0 && facts.status.size() >= 5 &&
        facts.status[0] == r.status[0] && facts.status.compare(1, 4, ".0.0") != 0)
        r.status = facts.status;
    // a reply code of another class than the report's status is a number in the text
    if (r.reply_code && !r.status.empty() && r.status[0] - '0' != r.reply_code / 100)
        r.reply_code = 0;
    // and so is a success code in a report of a failure
    if (r.reply_code / 100 == 2 && (r.action == "failed" || r.action == "delayed"))
        r.reply_code = 0;
    if (r.command.empty()) r.command = facts.command;
    if (r.remote_mta.empty()) r.remote_mta = facts.host;
    if (r.action == "delivered" || r.action == "relayed" || r.action == "expanded") {
        r.classification = c.for_reason("delivered", 250, r.status, r.remote_mta);
        return;
    }
    if (!r.verdict.empty()) {
        r.classification = c.for_reason(r.verdict, r.reply_code, r.status, r.remote_mta);
        return;
    }
    ClassifyInput in;
    in.code = r.reply_code;
    in.enhanced = r.status;
    in.text = r.diagnostic;
    in.remote_host = r.remote_mta;
    in.command = r.command;
    in.mta = mta.empty() ? std::string_view("other") : mta;  // a report, whoever wrote it
    std::string dom(address_domain(r.recipient));
    in.domain = dom;
    r.classification = c.classify(in);
    // Reply words nothing recognised: the report's own words about this recipient may
    // ("Address not found ... couldn't be found" above a bare "550 #5.1.0 Address rejected").
    auto& why = r.classification.reason;
    if ((why == "onhold" || why == "undefined") && !words.empty() && words != r.diagnostic) {
        std::string both = r.diagnostic + " " + words;
        in.text = both;
        auto again = c.classify(in);
        if (again.reason != "onhold" && again.reason != "undefined") r.classification = again;
    }
    // Still nothing recognised in a report that the message is delayed: it has waited too
    // long already (RFC 3464 "delayed"), as sisimai reads it.
    if ((why == "onhold" || why == "undefined") && r.action == "delayed")
        r.classification = c.for_reason("expired", r.reply_code, r.status, r.remote_mta);
}

// PowerMTA's bounce categories (its documentation of X-PowerMTA-BounceCategory), as reasons.
std::string powermta_reason(std::string_view category) {
    static const std::pair<std::string_view, std::string_view> table[] = {
        {"bad-domain", "hostunknown"},           {"bad-mailbox", "userunknown"},
        {"inactive-mailbox", "suspend"},         {"message-expired", "expired"},
        {"no-answer-from-host", "networkerror"}, {"policy-related", "policyviolation"},
        {"quota-issues", "mailboxfull"},         {"routing-errors", "systemerror"},
        {"spam-related", "spamdetected"}};
    for (auto [name, reason] : table)
        if (category == name) return std::string(reason);
    return {};
}

BounceReport from_dsn(const DeliveryStatus& ds, const std::vector<TextRecipient>& words,
                      std::string_view report) {
    BounceReport r;
    auto transcript = transcript_of(report);
    r.kind = BounceReport::Kind::bounce;
    r.format = "rfc3464";
    r.reporting_mta = ds.reporting_mta;
    for (const auto& f : ds.recipients) {
        BouncedRecipient b;
        b.recipient = to_lower(f.final_recipient);
        b.original_recipient = to_lower(f.original_recipient);
        b.action = f.action;
        b.status = f.status;
        b.remote_mta = f.remote_mta;
        b.diagnostic = one_line(iso2022_to_utf8(f.diagnostic));
        // "X-Unix; 75": a local program's exit status; the type is part of what it says
        if (f.diagnostic_type == "x-unix" && !b.diagnostic.empty())
            b.diagnostic = "X-Unix; " + b.diagnostic;
        b.verdict = powermta_reason(f.bounce_category);
        // The human part often says more than the fields: which command was refused
        // ("in reply to RCPT TO command") and by which host.
        auto said = words_about(words, b.recipient);
        if (b.diagnostic.empty()) b.diagnostic = said;
        auto facts = reply_facts(said);
        auto tr = transcript_facts(transcript, b.recipient, b.diagnostic);
        b.command = tr.command;
        if (!tr.reply.empty()) b.diagnostic = one_line(tr.reply);
        if (b.command.empty()) b.command = facts.command;
        if (b.remote_mta.empty()) b.remote_mta = facts.host;
        if (b.recipient.empty()) continue;
        r.recipients.push_back(std::move(b));
    }
    return r;
}

BounceReport from_text(const HeaderFields& top, std::string_view report,
                       const std::vector<std::string>& exclude, const HeaderFields& orig) {
    BounceReport r;
    auto transcript = transcript_of(report);
    r.kind = BounceReport::Kind::bounce;
    r.format = "text";
    auto found = recipients_in_text(report, exclude);
    auto failed = addresses_in(top.get("X-Failed-Recipients"), 100);
    std::vector<TextRecipient> list;
    if (!failed.empty()) {
        for (auto& a : failed) list.push_back({a, words_about(found, a)});
    } else {
        list = found;
    }
    if (list.empty()) {  // a bounce that names nobody: the returned message's recipient
        auto to = first_address(orig.get("To"));
        if (!to.empty()) list.push_back({to, {}});
    }
    auto fallback = coded_lines(report);
    for (auto& t : list) {
        BouncedRecipient b;
        b.recipient = t.address;
        b.action = "failed";
        b.diagnostic = t.diagnostic;
        b.command = transcript_facts(transcript, t.address).command;
        auto facts = reply_facts(b.diagnostic);
        if (facts.code / 100 == 2) facts.code = 0;  // a number in the text ("Size: 222")
        if (!facts.code && facts.status.empty() && !fallback.empty())
            b.diagnostic = b.diagnostic.empty() ? fallback : b.diagnostic + " " + fallback;
        if (b.diagnostic.empty()) b.diagnostic = one_line(report, 1024);
        r.recipients.push_back(std::move(b));
    }
    return r;
}

}  // namespace

BounceReport BounceParser::parse(std::string_view raw) const {
    auto msg = mime::parse_message(raw);
    const auto& top = msg.top;
    const auto& h = top.headers;
    auto text = report_text(top);
    auto split = split_returned(text);
    auto orig = original_headers(top, split);

    std::vector<std::string> exclude;
    for (std::string_view name : {"From", "To", "Reply-To", "Sender", "Return-Path"})
        for (auto v : h.all(name))
            for (auto& a : addresses_in(v, 10)) exclude.push_back(a);
    for (std::string_view name : {"From", "Return-Path", "Sender", "Reply-To"})
        for (auto& a : addresses_in(orig.get(name), 10)) exclude.push_back(a);

    BounceReport r;
    // Amazon SES tells of bounces, deliveries and complaints in JSON
    if (auto t = trim(text); !t.empty() && t.front() == '{') {
        r = ses_bounce(t);
        if (r.kind == BounceReport::Kind::bounce) {
            for (auto& b : r.recipients) classify(*classifier_, b, {}, "amazonses");
            r.mta = "amazonses";
            return r;
        }
    }
    auto words = recipients_in_text(split.report, exclude);
    const Part* ds_part = mime::find_part(top, "message/delivery-status");
    if (!ds_part) ds_part = mime::find_part(top, "message/global-delivery-status");
    DeliveryStatus ds;
    if (ds_part) ds = parse_delivery_status(ds_part->body);
    if (ds.recipients.empty() && has_dsn_fields(text)) ds = parse_delivery_status(text);

    auto ar = auto_reply_of(h);
    // A header that says "auto-replied" outweighs a null Return-Path (RFC 3834 replies are
    // sent to <> too); the other signs of a bounce still win (MTAs mark bounces so).
    bool ar_header = ar.is && std::string_view(ar.why) != "Subject";
    if (!ds.recipients.empty()) {
        r = from_dsn(ds, words, split.report);
    } else if (says_bounce(h, !ar_header) || top.content_type.is("multipart/report") ||
               (!ar.is && text_says_bounce(split.report))) {
        r = from_text(h, split.report, exclude, orig);
    } else if (ar.is) {
        r.kind = BounceReport::Kind::auto_reply;
        r.format = "auto-reply";
        BouncedRecipient b;
        b.recipient = first_address(h.get("From"));
        b.action = "delivered";
        b.diagnostic = one_line(mime::decode_words(h.get("Subject")), 256);
        b.classification = classifier_->for_reason("vacation");
        if (!b.recipient.empty()) r.recipients.push_back(std::move(b));
        r.addresser = first_address(h.get("To"));
        return r;
    } else {
        r.why = "neither a delivery-status report, a bounce nor an auto-reply";
        return r;
    }
    fill_original(r, orig, h);
    r.mta = bounce_mta(h, split.report);
    auto verdict = header_verdict(h);
    for (auto& b : r.recipients)
        if (b.verdict.empty()) b.verdict = verdict;
    for (auto& b : r.recipients) classify(*classifier_, b, words_about(words, b.recipient), r.mta);
    if (r.recipients.empty()) {
        r.kind = BounceReport::Kind::not_bounce;
        r.why = "a bounce that names no recipient";
    }
    return r;
}

}  // namespace kasi
