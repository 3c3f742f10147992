#include "core/feedback/ses_complaint.h"

#include <rapidjson/document.h>

#include "core/feedback/complaint_values.h"
#include "core/http/json_parse.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

using namespace arf;

constexpr size_t kMaxJson = 4 << 20;

using JsonValue = rapidjson::Value;

const JsonValue* member(const JsonValue* o, const char* name) {
    if (!o || !o->IsObject()) return nullptr;
    auto it = o->FindMember(name);
    return it == o->MemberEnd() ? nullptr : &it->value;
}

std::string_view str_of(const JsonValue* v) {
    return v && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                              : std::string_view();
}

}  // namespace

// Mail systems cut lines longer than 998 octets; the JSON of a notification by mail comes
// back with "!" + line end + space where it was cut. Those breaks removed.
std::string join_cut_lines(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '!') {
            size_t j = i + 1;
            if (j < s.size() && s[j] == '\r') ++j;
            if (j + 1 < s.size() && s[j] == '\n' && s[j + 1] == ' ') {
                i = j + 1;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

namespace {

bool parse_json_doc(rapidjson::Document& doc, std::string_view text) {
    std::string err;
    JsonLimits limits{.max_depth = 32, .max_bytes = kMaxJson};
    if (parse_json(doc, text, limits, err)) return true;
    if (text.find('\n') == std::string_view::npos) return false;
    return parse_json(doc, join_cut_lines(text), limits, err);
}

void apply_ses_mail(ComplaintReport& r, const JsonValue* mail) {
    r.original_mail_from = mailbox_of(str_of(member(mail, "source")));
    if (auto* hs = member(mail, "headers"); hs && hs->IsArray()) {
        for (const auto& h : hs->GetArray()) {
            auto name = str_of(member(&h, "name"));
            auto value = str_of(member(&h, "value"));
            if (iequals(name, "Message-ID") && r.original_message_id.empty())
                r.original_message_id = clean(value, 998);
            add_kasi_header(r, name, value);
        }
    }
    if (r.original_message_id.empty())
        r.original_message_id =
            clean(str_of(member(member(mail, "commonHeaders"), "messageId")), 998);
}

ComplaintReport from_ses(const JsonValue& doc, int hops) {
    // An SNS envelope (HTTP or SQS delivery) carries the notification as a string.
    if (auto msg = str_of(member(&doc, "Message")); !msg.empty() && hops == 0) {
        rapidjson::Document inner;
        if (parse_json_doc(inner, msg)) return from_ses(inner, 1);
    }
    auto type = str_of(member(&doc, "notificationType"));
    if (type.empty()) type = str_of(member(&doc, "eventType"));
    if (type.empty()) return not_complaint("JSON that is not an Amazon SES notification");
    if (type != "Complaint")
        return not_complaint("an Amazon SES " + clean(type, 32) + " notification, not a complaint");
    auto r = complaint_of("ses-json");
    const JsonValue* c = member(&doc, "complaint");
    r.feedback_type = feedback_type_of(str_of(member(c, "complaintFeedbackType")));
    if (auto* rs = member(c, "complainedRecipients"); rs && rs->IsArray())
        for (const auto& e : rs->GetArray())
            add_recipient(r, mailbox_of(str_of(member(&e, "emailAddress"))));
    r.user_agent = clean(str_of(member(c, "userAgent")), 256);
    r.arrival_date = clean(str_of(member(c, "arrivalDate")), 128);
    if (r.arrival_date.empty()) r.arrival_date = clean(str_of(member(c, "timestamp")), 128);
    const JsonValue* mail = member(&doc, "mail");
    if (auto* dest = member(mail, "destination");
        r.recipients.empty() && dest && dest->IsArray() && dest->Size() == 1)
        add_recipient(r, mailbox_of(str_of(&(*dest)[0])));
    apply_ses_mail(r, mail);
    return r;
}

}  // namespace

// The JSON object that starts at text[from] ('{'), up to its matching '}' (strings and
// escapes respected); "" if it does not close.
std::string_view json_object_at(std::string_view text, size_t from) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = from; i < text.size() && i - from < kMaxJson; ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && depth > 0 && --depth == 0) {
            return text.substr(from, i + 1 - from);
        }
    }
    return {};
}

// JSON text (a whole input, or the body of a notification by mail) to a report.
ComplaintReport ses_complaint(std::string_view text) {
    rapidjson::Document doc;
    if (!parse_json_doc(doc, text)) return not_complaint("JSON that does not parse");
    return from_ses(doc, 0);
}

}  // namespace kasi
