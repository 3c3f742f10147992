// Classifier::classify: evaluate the compiled rules (compiled_rules.h) for one outcome.
#include "core/classify/classifier.h"

#include <algorithm>

#include "core/classify/compiled_rules.h"
#include "core/classify/reply_text.h"
#include "core/classify/status_code.h"
#include "core/classify/taxonomy.h"

namespace kasi {

namespace {

// What the rules look at, worked out once per outcome.
struct Facts {
    const ClassifyInput& in;
    int code = 0;
    StatusCode status;
    int status_row = -1;  // the first status table row that matches
    int code_row = -1;
    std::string command;
    std::string_view provider;
    std::string host;
    std::vector<uint8_t> matched;  // by pattern id
    std::vector<uint8_t> said;     // by group index
};

template <class P, class V>
bool any_matches(const std::vector<P>& patterns, const V& v) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const P& p) { return p.matches(v); });
}

bool has_word(const std::vector<std::string>& words, std::string_view w) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

bool host_matches(const std::vector<std::string>& suffixes, std::string_view host) {
    for (const auto& s : suffixes) {
        if (host == s) return true;
        if (host.size() > s.size() && host.substr(host.size() - s.size()) == s &&
            host[host.size() - s.size() - 1] == '.')
            return true;
    }
    return false;
}

bool holds(const Classifier::Impl& impl, const CompiledCond& c, const Facts& f) {
    bool hit = false;
    switch (c.key) {
        case CondKey::text:
            hit = f.matched[size_t(c.pattern)] != 0;
            break;
        case CondKey::status:
            hit = any_matches(c.statuses, f.status);
            break;
        case CondKey::code:
            hit = any_matches(c.codes, f.code);
            break;
        case CondKey::command:
            hit = has_word(c.words, f.command.empty() ? std::string_view("none") : f.command);
            break;
        case CondKey::kind:
            hit = has_word(c.words, outcome_kind_name(f.in.kind));
            break;
        case CondKey::provider:
            hit = has_word(c.words, f.provider);
            break;
        case CondKey::host:
            hit = host_matches(c.words, f.host);
            break;
        case CondKey::mta:
            hit = has_word(c.words, f.in.mta.empty() ? std::string_view("none") : f.in.mta);
            break;
        case CondKey::means: {
            int r = f.status_row >= 0 ? impl.status_rows[size_t(f.status_row)].reason : -1;
            hit = std::find(c.ids.begin(), c.ids.end(), r) != c.ids.end();
            break;
        }
        case CondKey::says:
            hit = std::any_of(c.ids.begin(), c.ids.end(),
                              [&](int g) { return f.said[size_t(g)] != 0; });
            break;
    }
    return hit != c.negate;
}

template <class P, class V>
int first_row(const std::vector<P>& patterns, const V& v) {
    for (size_t i = 0; i < patterns.size(); ++i)
        if (patterns[i].matches(v)) return int(i);
    return -1;
}

// The provider of the host that answered, else of the recipient domain.
std::string_view provider_for(const ProviderTable& pt, const ClassifyInput& in) {
    std::string_view p = pt.provider_of(in.remote_host);
    return p == "other" && !in.domain.empty() ? pt.provider_of(in.domain) : p;
}

Facts gather(const Classifier::Impl& impl, const ClassifyInput& in, const ProviderTable& pt) {
    Facts f{in};
    f.code = in.code;
    std::string text = normalize_reply_text(in.text);
    if (!parse_status(in.enhanced, f.status)) f.status = find_status(text);
    f.status_row = first_row(impl.status_patterns, f.status);
    f.code_row = first_row(impl.code_patterns, f.code);
    f.command = canonical_command(in.command);
    f.provider = provider_for(pt, in);
    f.host = normalize_phrase(in.remote_host);
    while (!f.host.empty() && f.host.back() == '.') f.host.pop_back();
    impl.matcher.match(text, f.matched);
    f.said.assign(impl.groups.size(), 0);
    for (size_t g = 0; g < impl.groups.size(); ++g)
        for (int id : impl.groups[g])
            if (f.matched[size_t(id)]) f.said[g] = 1;
    return f;
}

// A reply the server says may work later is never a hard bounce.
bool temporary(const Facts& f) {
    if (f.code >= 400 && f.code < 500) return true;
    return f.code == 0 && f.status.cls == 4;
}

Classification result(const Classifier::Impl& impl, int reason, const CompiledRule* rule,
                      std::string where, const Facts& f) {
    const ReasonInfo& d = impl.reasons[size_t(reason)];
    Classification c;
    c.reason = std::string(known_reasons()[size_t(reason)]);
    c.cls = rule && rule->cls ? *rule->cls : d.cls;
    c.hard = (rule && rule->hard ? *rule->hard : d.hard) && !temporary(f);
    c.scope = rule && rule->scope ? *rule->scope : d.scope;
    c.provider = std::string(f.provider);
    c.rule = std::move(where);
    return c;
}

bool is_success(const ClassifyInput& in) {
    if (in.kind != OutcomeKind::reply) return false;
    if (in.code >= 200 && in.code < 300) return true;
    StatusCode s;
    return in.code == 0 && parse_status(in.enhanced, s) && s.cls == 2;
}

}  // namespace

Classification Classifier::for_reason(std::string_view reason, int code, std::string_view enhanced,
                                      std::string_view host) const {
    ClassifyInput in;
    in.code = code;
    in.enhanced = enhanced;
    in.remote_host = host;
    Facts f{in};
    f.code = code;
    parse_status(enhanced, f.status);
    f.provider = provider_for(*providers_, in);
    int r = reason_index(reason);
    return result(*impl_, r < 0 ? reason_index("undefined") : r, nullptr, "reason", f);
}

Classification Classifier::classify(const ClassifyInput& in) const {
    const Impl& impl = *impl_;
    if (is_success(in)) {
        Facts f{in};
        f.code = in.code;
        f.provider = provider_for(*providers_, in);
        return result(impl, reason_index("delivered"), nullptr, "2xx", f);
    }
    Facts f = gather(impl, in, *providers_);
    for (const auto& r : impl.rules) {
        if (r.target == kTargetStatus && f.status_row < 0) continue;
        if (r.target == kTargetCode && f.code_row < 0) continue;
        if (!std::all_of(r.conds.begin(), r.conds.end(),
                         [&](const CompiledCond& c) { return holds(impl, c, f); }))
            continue;
        if (r.target == kTargetStatus) {
            const TableRow& row = impl.status_rows[size_t(f.status_row)];
            return result(impl, row.reason, &r,
                          r.where + " status " + f.status.str() + " " + row.where, f);
        }
        if (r.target == kTargetCode) {
            const TableRow& row = impl.code_rows[size_t(f.code_row)];
            return result(impl, row.reason, &r,
                          r.where + " code " + std::to_string(f.code) + " " + row.where, f);
        }
        return result(impl, r.target, &r, r.where, f);
    }
    return result(impl, reason_index("undefined"), nullptr, "none", f);
}

}  // namespace kasi
