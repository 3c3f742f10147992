#include "core/http/send_request.h"

#include <fmt/format.h>

#include "core/http/http_config.h"
#include "core/http/message_builder.h"
#include "core/queue/delivery_queue.h"
#include "core/smtp/address.h"
#include "core/smtp/headers.h"
#include "core/util/base64.h"
#include "core/util/clock.h"
#include "core/util/ids.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

using Value = rapidjson::Value;

struct Recipient {
    MailAddr addr;
    std::map<std::string, std::string> subs;
    bool own_subs = false;  // a "to" recipient with its own substitutions
};

// Reads fields of one message object; the first problem stops it (`err`).
class Reader {
  public:
    Reader(const Value& obj, SendError& err) : obj_(obj), err_(err) {}

    bool fail(std::string field, std::string message, int status = 400) {
        err_ = SendError{status, std::move(field), std::move(message)};
        return false;
    }
    const Value* get(const char* key) const {
        auto it = obj_.FindMember(key);
        return it == obj_.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
    }
    // Absent: true and `present` false. Wrong type: false.
    bool string(const char* key, std::string& out, bool& present) {
        const Value* v = get(key);
        present = v != nullptr;
        if (!v) return true;
        if (!v->IsString()) return fail(key, "must be a string");
        out.assign(v->GetString(), v->GetStringLength());
        return true;
    }
    bool string(const char* key, std::string& out) {
        bool present;
        return string(key, out, present);
    }

  private:
    const Value& obj_;
    SendError& err_;
};

bool has_ctl(std::string_view s) {
    for (unsigned char c : s)
        if (c < 32 || c == 127) return true;
    return false;
}

// One address as the API takes it: local@domain and nothing else (no angle brackets, no
// display name, no source route, nothing after it: nothing is silently dropped). `why` says
// what is wrong, for the error message.
bool parse_email(std::string_view text, Address& out, std::string& why) {
    if (text.empty() || has_ctl(text) || text.find_first_of("<>, ") != std::string::npos)
        return why = "", false;
    auto p = parse_path(fmt::format("<{}>", text), false, true);
    if (!p.address || p.address->domain.empty() || !p.rest.empty()) return why = p.error, false;
    if (p.address->had_route) return why = "a source route is not an address", false;
    out = std::move(*p.address);
    return true;
}

// "a@b", "Name <a@b>", "\"Name\" <a@b>" or {"email": ..., "name": ...}.
bool read_address(const Value& v, const std::string& field, MailAddr& out, SendError& err,
                  bool& utf8) {
    std::string text, name;
    if (v.IsString()) {
        text.assign(v.GetString(), v.GetStringLength());
        auto lt = text.rfind('<');
        if (lt != std::string::npos && text.back() == '>') {
            name = std::string(trim(std::string_view(text).substr(0, lt)));
            if (name.size() >= 2 && name.front() == '"' && name.back() == '"')
                name = name.substr(1, name.size() - 2);
            text = text.substr(lt + 1, text.size() - lt - 2);
        }
    } else if (v.IsObject()) {
        Reader r(v, err);
        bool present = false;
        if (!r.string("email", text, present)) return err.field = field + ".email", false;
        if (!present) return err = {400, field + ".email", "is required"}, false;
        if (!r.string("name", name)) return err.field = field + ".name", false;
    } else {
        err = {400, field, "must be an address string or an object with email and name"};
        return false;
    }
    text = std::string(trim(text));
    std::string ef = v.IsObject() ? field + ".email" : field;
    Address a;
    std::string why;
    if (!parse_email(text, a, why))
        return err = {400, ef,
                      fmt::format("'{}' is not an email address{}", text,
                                  why.empty() ? "" : ": " + why)},
               false;
    if (has_ctl(name))
        return err = {400, v.IsObject() ? field + ".name" : field, "contains control characters"},
               false;
    utf8 |= a.utf8;
    out.email = a.str();
    out.name = name;
    return true;
}

bool read_subs(const Value& v, const std::string& field, std::map<std::string, std::string>& out,
               SendError& err) {
    if (!v.IsObject()) return err = {400, field, "must be an object"}, false;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string key(it->name.GetString(), it->name.GetStringLength());
        const Value& x = it->value;
        if (x.IsString())
            out[key].assign(x.GetString(), x.GetStringLength());
        else if (x.IsInt64())
            out[key] = std::to_string(x.GetInt64());
        else if (x.IsNumber())
            out[key] = fmt::format("{}", x.GetDouble());
        else if (x.IsBool())
            out[key] = x.GetBool() ? "true" : "false";
        else
            return err = {400, field + "." + key, "must be a string, number or boolean"}, false;
    }
    return true;
}

bool read_list(const Value* v, const std::string& field, std::vector<Recipient>& out,
               SendError& err, bool& utf8, bool allow_subs) {
    if (!v) return true;
    auto one = [&](const Value& x, const std::string& f) {
        Recipient r;
        if (!read_address(x, f, r.addr, err, utf8)) return false;
        if (x.IsObject()) {
            auto s = x.FindMember("substitutions");
            if (s != x.MemberEnd() && !s->value.IsNull()) {
                if (!allow_subs)
                    return err = {400, f + ".substitutions", "only \"to\" recipients have them"},
                           false;
                if (!read_subs(s->value, f + ".substitutions", r.subs, err)) return false;
                r.own_subs = true;
            }
        }
        out.push_back(std::move(r));
        return true;
    };
    if (!v->IsArray()) return one(*v, field);
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i)
        if (!one((*v)[i], fmt::format("{}[{}]", field, i))) return false;
    return true;
}

// A short identifier (tenant, campaign, region, metadata keys).
bool token_ok(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    for (unsigned char c : s)
        if (c <= 32 || c >= 127 || c == '"' || c == '\\') return false;
    return true;
}

const char* const reserved_headers[] = {"from",
                                        "to",
                                        "cc",
                                        "bcc",
                                        "subject",
                                        "reply-to",
                                        "date",
                                        "message-id",
                                        "mime-version",
                                        "content-type",
                                        "content-transfer-encoding",
                                        "received",
                                        "return-path"};

bool read_headers(const Value* v, std::vector<std::pair<std::string, std::string>>& out,
                  SendError& err) {
    if (!v) return true;
    if (!v->IsObject()) return err = {400, "headers", "must be an object of name: value"}, false;
    for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
        std::string name(it->name.GetString(), it->name.GetStringLength());
        std::string field = "headers." + name;
        if (!it->value.IsString()) return err = {400, field, "must be a string"}, false;
        std::string value(it->value.GetString(), it->value.GetStringLength());
        std::string why;
        if (!header_field_ok(name, value, why)) return err = {400, field, why}, false;
        for (const char* r : reserved_headers)
            if (iequals(name, r))
                return err = {400, field, "is set from the message fields, not headers"}, false;
        out.emplace_back(std::move(name), std::move(value));
    }
    return true;
}

bool read_attachments(const Value* v, std::vector<Attachment>& out, SendError& err) {
    if (!v) return true;
    if (!v->IsArray()) return err = {400, "attachments", "must be an array"}, false;
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
        std::string f = fmt::format("attachments[{}]", i);
        const Value& a = (*v)[i];
        if (!a.IsObject()) return err = {400, f, "must be an object"}, false;
        Reader r(a, err);
        Attachment at;
        std::string content, type;
        bool present = false;
        if (!r.string("filename", at.filename) || !r.string("content_type", type) ||
            !r.string("content_id", at.content_id) || !r.string("content", content, present))
            return err.field = f + "." + err.field, false;
        if (!present) return err = {400, f + ".content", "is required (base64)"}, false;
        if (has_ctl(at.filename))
            return err = {400, f + ".filename", "contains control characters"}, false;
        if (!type.empty()) {
            std::string_view t = type;
            auto slash = t.find('/');
            if (slash == 0 || slash == std::string_view::npos || has_ctl(t) ||
                t.find_first_of("\"") != std::string_view::npos)
                return err = {400, f + ".content_type", "must be a MIME type like application/pdf"},
                       false;
            at.content_type = type;
        }
        if (!at.content_id.empty() &&
            (!token_ok(at.content_id) || at.content_id.find_first_of("<>") != std::string::npos))
            return err = {400, f + ".content_id", "must be a plain identifier"}, false;
        std::string compact;
        compact.reserve(content.size());
        for (char c : content)
            if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact += c;
        auto data = base64_decode(compact);
        if (!data) return err = {400, f + ".content", "is not valid base64"}, false;
        at.data = std::move(*data);
        out.push_back(std::move(at));
    }
    return true;
}

std::string received(const SendContext& ctx, const std::string& id, bool utf8) {
    return fmt::format("Received: from [{}]\r\n\tby {} (Kasi/{}) with HTTP{} id {};\r\n\t{}\r\n",
                       ctx.peer_ip, ctx.me, KASI_VERSION,
                       utf8 ? (ctx.tls ? "S-UTF8" : "-UTF8") : (ctx.tls ? "S" : ""), id,
                       rfc5322_date(now_ms() / 1000));
}

bool is_8bit(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 128) return true;
    return false;
}

}  // namespace

bool prepare_message(const Value& v, const SendContext& ctx, PreparedMessage& out, SendError& err) {
    if (!v.IsObject()) return err = {400, "", "a message must be a JSON object"}, false;
    static const char* known[] = {
        "from",   "to",       "cc",      "bcc",         "reply_to",      "subject",
        "text",   "html",     "headers", "attachments", "content",       "envelope_from",
        "tenant", "campaign", "region",  "metadata",    "substitutions", "priority"};
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string_view k(it->name.GetString(), it->name.GetStringLength());
        bool ok = false;
        for (const char* n : known) ok |= k == n;
        if (!ok) return err = {400, std::string(k), "unknown field"}, false;
    }
    Reader r(v, err);
    bool utf8 = false;
    MessageFields f;
    std::vector<Recipient> to, cc, bcc, reply_to;
    std::string raw, envelope_from;
    bool has_raw = false, has_env = false;
    if (!r.string("content", raw, has_raw) || !r.string("subject", f.subject) ||
        !r.string("text", f.text, f.has_text) || !r.string("html", f.html, f.has_html) ||
        !r.string("envelope_from", envelope_from, has_env))
        return false;
    if (!read_list(r.get("to"), "to", to, err, utf8, true) ||
        !read_list(r.get("cc"), "cc", cc, err, utf8, false) ||
        !read_list(r.get("bcc"), "bcc", bcc, err, utf8, false) ||
        !read_list(r.get("reply_to"), "reply_to", reply_to, err, utf8, false))
        return false;
    if (has_ctl(f.subject)) return r.fail("subject", "must be one line without control characters");
    size_t nrcpt = to.size() + cc.size() + bcc.size();
    if (nrcpt == 0) return r.fail("to", "at least one recipient (to, cc or bcc) is required");
    if (nrcpt > ctx.http->max_recipients)
        return r.fail(
            "to",
            fmt::format("{} recipients exceed the limit of {}", nrcpt, ctx.http->max_recipients),
            413);
    if (has_raw) {
        raw = to_crlf(raw);
        for (const char* k :
             {"from", "subject", "text", "html", "attachments", "headers", "reply_to"})
            if (r.get(k))
                return r.fail(k, "give either content (a whole message) or the message fields");
    } else {
        const Value* from = r.get("from");
        if (!from) return r.fail("from", "is required (or give content)");
        if (!read_address(*from, "from", f.from, err, utf8)) return false;
        if (!read_headers(r.get("headers"), f.headers, err)) return false;
        if (!read_attachments(r.get("attachments"), f.attachments, err)) return false;
        for (const auto& x : reply_to) f.reply_to.push_back(x.addr);
        for (const auto& x : to) f.to.push_back(x.addr);
        for (const auto& x : cc) f.cc.push_back(x.addr);
    }
    std::map<std::string, std::string> notes;
    for (const char* k : {"tenant", "campaign", "region"}) {
        std::string val;
        if (!r.string(k, val)) return false;
        if (val.empty()) continue;
        if (!token_ok(val)) return r.fail(k, "must be 1-128 printable characters without spaces");
        notes[k] = val;
    }
    std::string priority;
    if (!r.string("priority", priority)) return false;
    if (!priority.empty()) {
        if (parse_priority(priority) < 0) return r.fail("priority", "must be high, normal or low");
        notes["priority"] = priority;
    }
    if (const Value* md = r.get("metadata")) {
        std::map<std::string, std::string> meta;
        if (!read_subs(*md, "metadata", meta, err)) return false;
        for (auto& [k, val] : meta) {
            if (!token_ok(k))
                return r.fail("metadata." + k, "keys must be printable without spaces");
            if (has_ctl(val)) return r.fail("metadata." + k, "contains control characters");
            notes["meta." + k] = val;
        }
    }
    std::map<std::string, std::string> subs;
    if (const Value* s = r.get("substitutions"))
        if (!read_subs(*s, "substitutions", subs, err)) return false;
    bool per_rcpt = false;
    for (const auto& x : to) per_rcpt |= x.own_subs;
    if (per_rcpt && (!cc.empty() || !bcc.empty()))
        return r.fail(cc.empty() ? "bcc" : "cc",
                      "cannot be combined with per-recipient substitutions (each \"to\" gets "
                      "its own message)");
    Address mail_from;
    std::string sender = has_env ? envelope_from : f.from.email;
    if (has_raw && !has_env) {
        auto from_vals = header_values(raw, "From");
        auto addrs =
            from_vals.empty() ? std::vector<std::string>{} : header_addresses(from_vals[0]);
        if (addrs.empty()) return r.fail("content", "has no From header (give envelope_from)");
        sender = addrs[0];
    }
    std::string why;
    if (!parse_email(trim(sender), mail_from, why))  // as strict as the recipients
        return r.fail(has_env   ? "envelope_from"
                      : has_raw ? "content"
                                : "from",
                      fmt::format("'{}' is not a usable envelope sender{}", sender,
                                  why.empty() ? "" : ": " + why));
    utf8 |= mail_from.utf8;
    // One transaction, or one per "to" recipient with its own substitutions.
    size_t variants = per_rcpt ? to.size() : 1;
    for (size_t k = 0; k < variants; ++k) {
        auto txn = std::make_unique<Transaction>();
        std::string id = new_uuid() + ".1";
        txn->uuid = id;
        txn->mail_from = mail_from;
        txn->notes = notes;
        txn->smtputf8 = utf8;
        std::map<std::string, std::string> vs = subs;
        std::vector<const Recipient*> rcpts;
        if (per_rcpt) {
            for (const auto& [a, b] : to[k].subs) vs[a] = b;
            rcpts.push_back(&to[k]);
        } else {
            for (auto* list : {&to, &cc, &bcc})
                for (const auto& x : *list) rcpts.push_back(&x);
        }
        for (const auto* x : rcpts) {
            auto pa = parse_path("<" + x->addr.email + ">", false, true);
            txn->rcpts.push_back(*pa.address);
        }
        bool templ = !vs.empty();
        std::string body = received(ctx, id, utf8);
        if (has_raw) {
            std::string msg = templ ? substitute(raw, vs, false) : raw;
            HeaderFacts hf = scan_headers(msg);
            if (hf.header_bytes == 0 || header_values(msg, "From").empty())
                return r.fail("content", "must be an RFC 5322 message with a From header");
            std::string add;
            if (!hf.has_message_id) add += fmt::format("Message-ID: <{}@{}>\r\n", id, ctx.me);
            if (!hf.has_date) add += fmt::format("Date: {}\r\n", rfc5322_date(now_ms() / 1000));
            body += add + msg;
        } else {
            MessageFields mf = f;
            if (per_rcpt) mf.to = {to[k].addr};
            if (templ) {
                mf.subject = substitute(f.subject, vs, false);
                mf.text = substitute(f.text, vs, false);
                mf.html = substitute(f.html, vs, true);
                if (has_ctl(mf.subject))
                    return r.fail("subject", "a substitution put a control character in it");
            }
            body += build_message(mf, fmt::format("<{}@{}>", id, ctx.me),
                                  rfc5322_date(now_ms() / 1000));
        }
        if (body.size() > ctx.max_message_bytes)
            return r.fail(has_raw ? "content" : "",
                          fmt::format("the message is {} bytes, over the "
                                      "limit of {}",
                                      body.size(), ctx.max_message_bytes),
                          413);
        txn->body_8bit = is_8bit(body);
        txn->body = std::move(body);
        out.txns.push_back(std::move(txn));
    }
    return true;
}

}  // namespace kasi
