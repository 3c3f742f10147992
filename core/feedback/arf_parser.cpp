#include "core/feedback/arf_parser.h"

#include <algorithm>

#include "core/feedback/complaint_values.h"
#include "core/feedback/ses_complaint.h"
#include "core/mime/mime_tree.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

using namespace arf;
using mime::HeaderFields;
using mime::Part;

constexpr size_t kMaxReportFields = 300;
constexpr std::string_view kNotFeedback =
    "no feedback report: no message/feedback-report part, no Feedback-Type field, "
    "no provider complaint format";

std::string_view first_of(const HeaderFields& h, std::initializer_list<std::string_view> names) {
    for (auto n : names)
        if (auto v = trim(h.get(n)); !v.empty()) return v;
    return {};
}

// --- where things are ---------------------------------------------------------------------

// The first part of that type under `p`, not looking inside returned messages.
const Part* find_outside(const Part& p, std::string_view type, bool root = true) {
    if (p.content_type.is(type)) return &p;
    if (!root && p.is_message()) return nullptr;
    for (const auto& c : p.children)
        if (auto* f = find_outside(c, type, false)) return f;
    return nullptr;
}

// The first returned message under `p` (not `p` itself): message/rfc822, message/global,
// text/rfc822-headers.
const Part* returned_part(const Part& p) {
    for (const auto& c : p.children) {
        if (c.is_message()) return &c;
        if (auto* f = returned_part(c)) return f;
    }
    return nullptr;
}

HeaderFields headers_of(const Part* returned) {
    if (!returned) return {};
    if (!returned->children.empty() && !returned->children[0].headers.fields.empty())
        return returned->children[0].headers;
    size_t used = 0;
    return mime::parse_fields(returned->body, used);
}

// The offset of the first line of `text` that starts with `key` (lower case, compared
// without regard to case), npos if none.
size_t line_starting(std::string_view text, std::string_view key) {
    size_t pos = 0;
    while (pos < text.size()) {
        if (text.size() - pos >= key.size() && iequals(text.substr(pos, key.size()), key))
            return pos;
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return std::string_view::npos;
}

// The returned message of a report read as text: the header block after a
// "Content-Type: message/rfc822" (or text/rfc822-headers) line and that part's own header.
HeaderFields returned_in_text(std::string_view text) {
    for (std::string_view key :
         {"content-type: message/rfc822", "content-type: text/rfc822-headers",
          "content-type: message/global"}) {
        size_t at = line_starting(text, key);
        if (at == std::string_view::npos) continue;
        size_t used = 0;
        mime::parse_fields(text.substr(at), used);
        size_t start = std::min(text.size(), at + used);
        while (start < text.size() && (text[start] == '\n' || text[start] == '\r')) ++start;
        return mime::parse_fields(text.substr(start), used);
    }
    return {};
}

// Every field of a feedback report: blocks of fields (one, by the RFC; more are seen),
// lines that are not fields skipped.
HeaderFields report_fields(std::string_view body) {
    HeaderFields all;
    size_t pos = 0;
    while (pos < body.size() && all.fields.size() < kMaxReportFields) {
        size_t used = 0;
        auto block = mime::parse_fields(body.substr(pos), used, kMaxReportFields);
        if (used == 0) {
            size_t nl = body.find('\n', pos);
            pos = nl == std::string_view::npos ? body.size() : nl + 1;
            continue;
        }
        pos += used;
        for (auto& f : block.fields)
            if (all.fields.size() < kMaxReportFields) all.fields.push_back(std::move(f));
    }
    return all;
}

// ARF fields written into text: the block of fields that holds a Feedback-Type line and
// at least one other ARF field. Empty if there is none.
HeaderFields fields_in_text(std::string_view text) {
    size_t at = line_starting(text, "feedback-type:");
    if (at == std::string_view::npos) return {};
    // The block starts after the empty line before it; if its first line is not a field
    // (words run into the fields), at the Feedback-Type line itself.
    auto before = text.substr(0, at);
    size_t lf = before.rfind("\n\n"), crlf = before.rfind("\n\r\n");
    size_t start = std::max(lf == std::string_view::npos ? 0 : lf + 2,
                            crlf == std::string_view::npos ? 0 : crlf + 3);
    size_t used = 0;
    auto block = mime::parse_fields(text.substr(start), used, kMaxReportFields);
    if (!block.has("Feedback-Type"))
        block = mime::parse_fields(text.substr(at), used, kMaxReportFields);
    for (std::string_view other :
         {"User-Agent", "Version", "Original-Mail-From", "Original-Rcpt-To", "Source-IP",
          "Arrival-Date", "Received-Date", "Reported-Domain"})
        if (block.has(other)) return block;
    return {};
}

// The first text under `p` (outside returned messages) that holds ARF fields.
HeaderFields text_fields(const Part& p, std::string_view& where, bool root = true) {
    if (!root && p.is_message()) return {};
    if ((p.children.empty() || p.opaque) && !p.body.empty()) {
        auto f = fields_in_text(p.body);
        if (!f.fields.empty()) {
            where = p.body;
            return f;
        }
    }
    for (const auto& c : p.children) {
        auto f = text_fields(c, where, false);
        if (!f.fields.empty()) return f;
    }
    return {};
}

// --- the report ---------------------------------------------------------------------------

void apply_report_fields(ComplaintReport& r, const HeaderFields& f) {
    r.feedback_type = feedback_type_of(f.get("Feedback-Type"));
    for (auto v : f.all("Original-Rcpt-To")) add_recipient(r, mailbox_of(v));
    // The ARF drafts' opt-out reports named the address to remove this way.
    if (r.recipients.empty())
        for (auto v : f.all("Removal-Recipient")) add_recipient(r, mailbox_of(v));
    r.original_mail_from = mailbox_of(f.get("Original-Mail-From"));
    r.source_ip = ip_of(f.get("Source-IP"));
    for (auto v : f.all("Reported-Domain")) add_domains(r.reported_domains, v);
    r.user_agent = clean(f.get("User-Agent"), 256);
    r.arrival_date = clean(first_of(f, {"Arrival-Date", "Received-Date"}), 128);
    r.original_envelope_id = clean(f.get("Original-Envelope-Id"), 256);
    auto mta = trim(f.get("Reporting-MTA"));
    if (auto semi = mta.find(';'); semi != std::string_view::npos && semi < 16)
        mta = trim(mta.substr(semi + 1));
    r.reporting_mta = clean(mta, 256);
    // Not an ARF field, but some reporters name the reported message this way.
    r.original_message_id = clean(f.get("Message-ID"), 998);
}

// What the returned message adds: the recipient (its To) and the sender (its From, else
// its Return-Path, as sisimai reads them) when the report did not say, its Return-Path,
// its Message-ID and Kasi's headers.
void apply_returned(ComplaintReport& r, const HeaderFields& orig) {
    if (r.recipients.empty()) add_recipient(r, mailbox_of(orig.get("To")));
    r.original_return_path = mailbox_of(orig.get("Return-Path"));
    r.original_from = mailbox_of(orig.get("From"));
    if (r.original_mail_from.empty()) r.original_mail_from = r.original_from;
    if (r.original_mail_from.empty()) r.original_mail_from = r.original_return_path;
    if (auto id = clean(orig.get("Message-ID"), 998); !id.empty()) r.original_message_id = id;
    for (const auto& f : orig.fields) add_kasi_header(r, f.name, f.value);
}

ComplaintReport from_arf(const Part& top, const Part& report) {
    auto r = complaint_of("arf");
    apply_report_fields(r, report_fields(report.body));
    // The returned message is the report's sibling (the report may itself be forwarded).
    const Part* orig = report.parent ? returned_part(*report.parent) : nullptr;
    if (!orig) orig = returned_part(top);
    apply_returned(r, headers_of(orig));
    return r;
}

ComplaintReport from_text(const Part& top, const HeaderFields& fields, std::string_view where) {
    auto r = complaint_of("arf-text");
    apply_report_fields(r, fields);
    if (auto* orig = returned_part(top))
        apply_returned(r, headers_of(orig));
    else
        apply_returned(r, returned_in_text(where.empty() ? std::string_view(top.body) : where));
    return r;
}

// Microsoft's format: the complained-about message attached to a multipart/mixed.
ComplaintReport from_hotmail(const HeaderFields& top, const HeaderFields& orig) {
    auto r = complaint_of("hotmail");
    r.feedback_type = "abuse";
    add_recipient(r, mailbox_of(first_of(orig, {"X-HmXmrOriginalRecipient"})));
    add_recipient(r, mailbox_of(first_of(top, {"X-HmXmrOriginalRecipient"})));
    auto subject = mime::decode_words(top.get("Subject"));
    constexpr std::string_view kFrom = "complaint about message from ";
    if (auto at = to_lower(subject).find(kFrom); at != std::string::npos)
        r.source_ip = ip_of(std::string_view(subject).substr(at + kFrom.size()));
    auto arrival = trim(orig.get("X-OriginalArrivalTime"));
    r.arrival_date = clean(arrival.substr(0, arrival.find(" FILETIME")), 128);
    apply_returned(r, orig);
    return r;
}

// Apple Mail's unsubscribe message: from the user to the List-Unsubscribe address.
ComplaintReport from_apple(const HeaderFields& h) {
    auto r = complaint_of("apple-opt-out");
    r.feedback_type = "opt-out";
    add_recipient(r, mailbox_of(h.get("From")));
    r.original_mail_from = mailbox_of(h.get("To"));
    auto irt = trim(h.get("In-Reply-To"));
    r.original_message_id = clean(irt.substr(0, irt.find_first_of(" \t")), 998);
    return r;
}

// The JSON of an SES notification sent by mail: the body's first object, when the body
// says Complaint at all. A not_complaint report (without a why) when it is not one.
ComplaintReport json_in_body(const Part& top) {
    std::string body = mime::human_text(top);
    if (body.empty() && !top.content_type.multipart()) body = top.body;
    auto brace = body.find('{');
    if (brace == std::string::npos || body.find("Complaint") == std::string::npos) return {};
    auto obj = json_object_at(body, brace);
    if (obj.empty()) return {};
    auto r = ses_complaint(obj);
    return r.kind == ComplaintReport::Kind::complaint ? r : ComplaintReport{};
}

bool starts_json(std::string_view raw) {
    auto t = trim(raw.substr(0, std::min<size_t>(raw.size(), 64)));
    return !t.empty() && t.front() == '{';
}

// A bounce or a receipt, even of a complaint, is not a complaint.
std::string_view other_report(const Part& top) {
    auto type = to_lower(top.content_type.param("report-type"));
    if (type == "delivery-status" || type == "global-delivery-status" ||
        find_outside(top, "message/delivery-status") ||
        find_outside(top, "message/global-delivery-status"))
        return "a delivery-status report (a bounce), not a complaint";
    if (type == "disposition-notification" || find_outside(top, "message/disposition-notification"))
        return "a disposition notification (a read receipt), not a complaint";
    return {};
}

}  // namespace

ComplaintReport parse_complaint(std::string_view raw) {
    if (trim(raw).empty()) return not_complaint("an empty message");
    if (starts_json(raw)) return ses_complaint(raw);
    auto msg = mime::parse_message(raw);
    const Part& top = msg.top;
    const HeaderFields& h = top.headers;
    if (auto other = other_report(top); !other.empty()) return not_complaint(std::string(other));

    const Part* report = find_outside(top, "message/feedback-report");
    if (!report) report = mime::find_part(top, "message/feedback-report");  // a forwarded report
    if (report) return from_arf(top, *report);

    if (iequals(trim(h.get("X-Apple-Unsubscribe")), "true")) return from_apple(h);

    std::string_view where;
    auto fields = text_fields(top, where);
    bool says_feedback = iequals(top.content_type.param("report-type"), "feedback-report");
    if (!fields.fields.empty() || says_feedback) return from_text(top, fields, where);

    if (const Part* returned = returned_part(top)) {
        auto orig = headers_of(returned);
        bool microsoft =
            orig.has("X-HmXmrOriginalRecipient") || h.has("X-HmXmrOriginalRecipient") ||
            to_lower(mime::decode_words(h.get("Subject"))).find("complaint about message from ") !=
                std::string::npos;
        if (microsoft) return from_hotmail(h, orig);
    }

    if (auto r = json_in_body(top); r.kind == ComplaintReport::Kind::complaint) return r;
    return not_complaint(std::string(kNotFeedback));
}

}  // namespace kasi
