#include "core/queue/verdict.h"

#include <algorithm>

#include "core/classify/classifier.h"
#include "core/classify/taxonomy.h"
#include "core/hooks/plugin.h"
#include "core/log/log.h"
#include "core/metrics/provider.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

bool same_reply(const SmtpReply& a, const SmtpReply& b) {
    return a.code == b.code && a.enhanced == b.enhanced && a.lines == b.lines;
}

// What is classified for one reply. A failure before any usable reply arrives as text
// (smtp_client.cpp, ready_queue.cpp): "greeting: 554 5.7.1 ...", "EHLO: 550 ...",
// "timeout waiting for the server (...)", "TLS error: ...", "connection lost: ...". When
// the server's own reply is in it, that reply is classified (a 554 greeting is a block,
// not a network error); a timeout is kind timeout wherever it happened.
struct Facts {
    OutcomeKind kind;
    int code;
    std::string enhanced, text, command;
};

bool starts(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

Facts facts_of(const SmtpReply& r, OutcomeKind kind, std::string_view command) {
    Facts f{kind, r.code, r.enhanced, r.text(), std::string(command)};
    std::string_view t = f.text;
    bool lost = kind == OutcomeKind::reply && r.code == 421 && r.enhanced == "4.4.2" &&
                starts(t, "connection lost: ");
    if (lost) t.remove_prefix(17);
    if (kind != OutcomeKind::reply || lost) {
        static constexpr std::pair<std::string_view, std::string_view> said[] = {
            {"greeting: ", "CONNECT"},          {"EHLO: ", "EHLO"}, {"HELO: ", "HELO"},
            {"STARTTLS refused: ", "STARTTLS"}, {"RSET: ", "RSET"}, {"the server said: ", ""},
        };
        for (const auto& [prefix, cmd] : said) {
            if (!starts(t, prefix)) continue;
            std::string_view rest = t.substr(prefix.size());
            if (rest.size() < 3 || rest[0] < '2' || rest[0] > '5') break;
            f.kind = OutcomeKind::reply;
            f.code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
            rest.remove_prefix(std::min<size_t>(4, rest.size()));
            f.enhanced = std::string(leading_enhanced_code(rest));
            f.text = std::string(rest);
            f.command = std::string(cmd);
            return f;
        }
        if (starts(t, "timeout"))
            f.kind = OutcomeKind::timeout;
        else if (starts(t, "TLS error"))
            f.kind = OutcomeKind::tls;
        else if (starts(t, "bad reply") || starts(t, "unexpected reply"))
            f.kind = OutcomeKind::protocol;
        else if (lost)
            f.kind = OutcomeKind::connect;
    }
    return f;
}

// Today's answer without rules (a configuration built without a classifier: unit tests).
Classification unclassified(const SmtpReply& r, std::string_view host, std::string_view domain) {
    Classification c;
    if (r.cls() == 2) c.reason = c.cls = "delivered";
    c.provider = std::string(provider_of(host.empty() ? domain : host));
    return c;
}

}  // namespace

std::vector<Judgement> judge(const Classifier* rules, size_t n,
                             const std::vector<SmtpReply>& replies, OutcomeKind kind,
                             const std::vector<std::string_view>& commands,
                             std::string_view mx_host, std::string_view domain) {
    std::vector<Judgement> js;
    js.reserve(n);
    const SmtpReply* prev = nullptr;
    std::string_view prev_cmd;
    for (size_t k = 0; k < n; ++k) {
        const SmtpReply& r = k < replies.size() ? replies[k] : replies.back();
        std::string_view cmd = k < commands.size() ? commands[k] : std::string_view{};
        if (prev && cmd == prev_cmd && (prev == &r || same_reply(*prev, r))) {
            js.push_back(js.back());
            continue;
        }
        Facts f = facts_of(r, kind, cmd);
        Judgement j;
        j.verdict = verdict_for(r);
        j.kind = f.kind;
        j.command = f.command;
        if (rules)
            j.cls = rules->classify(
                ClassifyInput{f.kind, f.code, f.enhanced, f.text, mx_host, f.command, domain});
        else
            j.cls = unclassified(r, mx_host, domain);
        js.push_back(std::move(j));
        prev = &r;
        prev_cmd = cmd;
    }
    return js;
}

Classification classify_local(const Classifier* rules, const SmtpReply& r, std::string_view mx_host,
                              std::string_view domain) {
    if (!rules) return unclassified(r, mx_host, domain);
    std::string text = r.text();
    return rules->classify(
        ClassifyInput{OutcomeKind::local, r.code, r.enhanced, text, mx_host, "", domain});
}

void apply_response_answer(Judgement& j, const Result& r, const std::optional<ResponseOverride>& o,
                           const Classifier* rules, const std::string& id) {
    if (r.code == Code::deny) j.verdict = Verdict::bounce;
    if (r.code == Code::denysoft) {
        j.verdict = Verdict::defer;
        unsigned long long secs = 0;
        if (!r.msg.empty() && parse_u64(r.msg, secs) && secs <= 365ull * 86400)
            j.retry_s = int64_t(secs);
    }
    if (r.code != Code::ok || !o) return;
    if (o->reason) {
        if (!is_known_reason(*o->reason)) {
            log::warn("queue: {}: classify_response: unknown reason '{}' ignored", id, *o->reason);
        } else if (*o->reason != j.cls.reason) {
            Classification d = rules ? rules->for_reason(*o->reason) : Classification{};
            j.cls.reason = *o->reason;
            if (rules) {
                j.cls.cls = d.cls;
                j.cls.hard = d.hard && j.verdict == Verdict::bounce;
                j.cls.scope = d.scope;
            }
        }
    }
    if (o->cls) {
        if (is_known_class(*o->cls))
            j.cls.cls = *o->cls;
        else
            log::warn("queue: {}: classify_response: unknown class '{}' ignored", id, *o->cls);
    }
    if (o->hard) j.cls.hard = *o->hard;
    if (o->scope) j.cls.scope = *o->scope;
    if (o->verdict && *o->verdict != Verdict::delivered) j.verdict = *o->verdict;
    if (o->retry_s && *o->retry_s >= 0 && *o->retry_s <= 365ll * 86400) j.retry_s = *o->retry_s;
    j.cls.rule = "classify_response";
}

Verdict verdict_for(const SmtpReply& r) {
    if (r.cls() == 2) return Verdict::delivered;
    if (r.cls() == 5) return Verdict::bounce;
    return Verdict::defer;
}

}  // namespace kasi
