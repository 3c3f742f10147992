#include "core/feedback/ses_bounce.h"

#include <rapidjson/document.h>

#include "core/feedback/delivery_status.h"
#include "core/feedback/ses_complaint.h"
#include "core/http/json_parse.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

using JsonValue = rapidjson::Value;

constexpr size_t kMaxJson = 4 << 20;
constexpr size_t kMaxRecipients = 1000;

const JsonValue* member(const JsonValue* o, const char* name) {
    if (!o || !o->IsObject()) return nullptr;
    auto it = o->FindMember(name);
    return it == o->MemberEnd() ? nullptr : &it->value;
}

std::string str_of(const JsonValue* v) {
    return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

bool parse(rapidjson::Document& doc, std::string_view text) {
    std::string err;
    JsonLimits limits{.max_depth = 32, .max_bytes = kMaxJson};
    if (parse_json(doc, text, limits, err)) return true;
    return text.find('\n') != std::string_view::npos &&
           parse_json(doc, join_cut_lines(text), limits, err);
}

// What a bounce sub-type says for sure; the others (General, NoEmail, Suppressed, ...)
// leave the reason to the diagnostic.
std::string subtype_reason(std::string_view type, std::string_view sub) {
    if (type != "Transient") return {};
    if (sub == "MailboxFull") return "mailboxfull";
    if (sub == "MessageTooLarge") return "mesgtoobig";
    return {};
}

void add(BounceReport& r, BouncedRecipient b) {
    b.recipient = to_lower(trim(b.recipient));
    if (b.recipient.find('@') == std::string::npos || r.recipients.size() >= kMaxRecipients) return;
    r.recipients.push_back(std::move(b));
}

void bounced(BounceReport& r, const JsonValue* o) {
    auto why = subtype_reason(str_of(member(o, "bounceType")), str_of(member(o, "bounceSubType")));
    auto mta = strip_type(str_of(member(o, "reportingMTA")));
    auto* list = member(o, "bouncedRecipients");
    if (!list || !list->IsArray()) return;
    for (const auto& e : list->GetArray()) {
        BouncedRecipient b;
        b.recipient = str_of(member(&e, "emailAddress"));
        b.action = to_lower(str_of(member(&e, "action")));
        if (b.action.empty()) b.action = "failed";
        b.status = str_of(member(&e, "status"));
        auto code = str_of(member(&e, "diagnosticCode"));
        auto semi = code.find("; ");
        b.diagnostic = semi != std::string::npos && semi < 16 ? code.substr(semi + 2) : code;
        b.remote_mta = mta;
        b.verdict = why;
        add(r, std::move(b));
    }
}

void delivered(BounceReport& r, const JsonValue* o) {
    auto* list = member(o, "recipients");
    if (!list || !list->IsArray()) return;
    for (const auto& e : list->GetArray()) {
        BouncedRecipient b;
        b.recipient = str_of(&e);
        b.action = "delivered";
        b.diagnostic = str_of(member(o, "smtpResponse"));
        b.remote_mta = str_of(member(o, "reportingMTA"));
        add(r, std::move(b));
    }
}

void complained(BounceReport& r, const JsonValue* o) {
    auto* list = member(o, "complainedRecipients");
    if (!list || !list->IsArray()) return;
    for (const auto& e : list->GetArray()) {
        BouncedRecipient b;
        b.recipient = str_of(member(&e, "emailAddress"));
        b.action = "failed";
        b.diagnostic = str_of(member(o, "complaintFeedbackType"));
        b.verdict = "feedback";
        add(r, std::move(b));
    }
}

void from_doc(BounceReport& r, const JsonValue& doc, int hops) {
    if (auto msg = str_of(member(&doc, "Message")); !msg.empty() && hops == 0) {
        rapidjson::Document inner;
        if (parse(inner, msg)) return from_doc(r, inner, 1);
    }
    auto type = str_of(member(&doc, "notificationType"));
    if (type.empty()) type = str_of(member(&doc, "eventType"));
    if (type == "Bounce") bounced(r, member(&doc, "bounce"));
    if (type == "Delivery") delivered(r, member(&doc, "delivery"));
    if (type == "Complaint") complained(r, member(&doc, "complaint"));
    const JsonValue* mail = member(&doc, "mail");
    r.addresser = to_lower(str_of(member(mail, "source")));
    if (auto* hs = member(mail, "headers"); hs && hs->IsArray()) {
        for (const auto& h : hs->GetArray()) {
            auto name = str_of(member(&h, "name"));
            auto value = str_of(member(&h, "value"));
            if (iequals(name, "Message-ID") && r.original_message_id.empty())
                r.original_message_id = std::string(trim(value));
            if (iequals(name, "Subject") && r.original_subject.empty()) r.original_subject = value;
            if (istarts_with(name, "X-Kasi-") && r.original_kasi_headers.size() < 20)
                r.original_kasi_headers.emplace_back(name, value);
        }
    }
}

}  // namespace

BounceReport ses_bounce(std::string_view text) {
    BounceReport r;
    auto t = trim(text);
    if (t.empty() || t.front() != '{') return r;
    auto obj = json_object_at(t, 0);
    rapidjson::Document doc;
    if (!parse(doc, obj.empty() ? t : obj)) return r;
    if (!doc.IsObject()) return r;
    from_doc(r, doc, 0);
    if (!r.recipients.empty()) {
        r.kind = BounceReport::Kind::bounce;
        r.format = "ses-json";
    }
    return r;
}

}  // namespace kasi
