// See rule_reader.h. A rule's keys are read in the order the table gives them, each by its
// entry in rule_keys / action_keys (a setter that checks the value with lua_fields.h's
// getters and stores it); what concerns several keys (a factor and a value for one limit,
// an action that does nothing, a pool on a domain rule) is checked once all are read.
#include "plugins/adaptive/rule_reader.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>

#include "core/classify/taxonomy.h"
#include "core/queue/queue_limits.h"
#include "plugins/adaptive/lua_fields.h"

namespace kasi {

namespace {

using namespace lua_data;

bool set_name(const Field& f, ShapingRule& r) {
    auto v = f.text();
    if (!v) return false;
    bool ok = !v->empty() && v->size() <= 64 && std::all_of(v->begin(), v->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
    if (!ok) return f.fail("must be 1 to 64 letters, digits, '-', '_' or '.'");
    r.name = *v;
    return true;
}

bool set_scope(const Field& f, ShapingRule& r) {
    auto v = f.text();
    if (!v) return false;
    if (*v != "source" && *v != "domain")
        return f.fail(fmt::format("must be 'source' or 'domain', not '{}'", *v));
    r.scope = *v == "source" ? ShapingRule::Scope::source : ShapingRule::Scope::domain;
    return true;
}

bool set_providers(const Field& f, ShapingRule& r) {
    auto v = f.words();
    if (!v) return false;
    const auto& known = f.ctx().providers;
    for (const auto& p : *v)
        if (!known.empty() && p != "other" &&
            std::find(known.begin(), known.end(), p) == known.end())
            f.warn(
                fmt::format("'{}' is no provider of rules/providers.tsv (known: {}, other); "
                            "the rule matches nothing there",
                            p, fmt::join(known, ", ")));
    r.providers = *v;
    return true;
}

bool set_outcomes(const Field& f, ShapingRule& r) {
    auto v = f.words();
    if (!v) return false;
    if (v->empty()) return f.fail("must name at least one of deferred, bounced, connection");
    r.on_deferred = r.on_bounced = r.on_connection = false;
    for (const auto& o : *v) {
        if (o == "deferred")
            r.on_deferred = true;
        else if (o == "bounced")
            r.on_bounced = true;
        else if (o == "connection")
            r.on_connection = true;
        else
            return f.fail(fmt::format("unknown outcome '{}' (deferred, bounced, connection)", o));
    }
    return true;
}

bool set_classes(const Field& f, ShapingRule& r) {
    auto v = f.words();
    if (!v) return false;
    for (const auto& c : *v)
        if (!is_known_class(c))
            return f.fail(
                fmt::format("unknown class '{}' (known: {})", c, fmt::join(known_classes(), ", ")));
    r.classes = *v;
    return true;
}

// Matched against "CODE ENHANCED TEXT" of a reply, without regard to case.
bool set_reply(const Field& f, ShapingRule& r) {
    auto v = f.text();
    if (!v) return false;
    RE2::Options o;
    o.set_log_errors(false);
    o.set_case_sensitive(false);
    auto re = std::make_shared<RE2>(*v, o);
    if (!re->ok()) return f.fail(fmt::format("bad regular expression /{}/: {}", *v, re->error()));
    r.reply_pattern = *v;
    r.reply = v->empty() ? nullptr : std::move(re);
    return true;
}

bool set_rate(const Field& f, ShapingAction& a) {
    double per_second = 0;
    bool ok = f.is_number()   ? (per_second = lua_tonumber(f.L(), -1), true)
              : f.is_string() ? parse_rate(lua_tostring(f.L(), -1), per_second)
                              : false;
    if (ok && per_second > 0 && per_second <= 1e6) {
        a.rate = per_second;
        return true;
    }
    return f.fail("must be a rate above 0: '100/min', '2/s', '5000/h' or a number per second");
}

bool set_pool(const Field& f, ShapingAction& a) {
    auto v = f.text();
    if (!v) return false;
    const auto& pools = f.ctx().pools;
    if (std::find(pools.begin(), pools.end(), *v) == pools.end())
        return f.fail(fmt::format("egress.ini has no [pool:{}]", *v));
    a.pool = *v;
    return true;
}

const Key<ShapingAction> action_keys[] = {
    {"rate_factor", [](auto& f, auto& a) { return put(f.real(0, true, 1), a.rate_factor); }},
    {"rate", set_rate},
    {"connections_factor",
     [](auto& f, auto& a) { return put(f.real(0, true, 1), a.connections_factor); }},
    {"connections", [](auto& f, auto& a) { return put(f.whole(1, 100000), a.connections); }},
    {"messages_per_connection",
     [](auto& f, auto& a) { return put(f.whole(1, 1000000), a.messages_per_connection); }},
    {"suspend", [](auto& f, auto& a) { return put(f.seconds(1, 30 * day), a.suspend_s); }},
    {"pool", set_pool},
    {"alert", [](auto& f, auto& a) { return put(f.flag(), a.alert); }},
};

bool set_action(const Field& f, ShapingRule& r);

const Key<ShapingRule> rule_keys[] = {
    {"name", set_name},
    {"scope", set_scope},
    {"providers", set_providers},
    {"outcomes", set_outcomes},
    {"classes", set_classes},
    {"reply", set_reply},
    {"threshold", [](auto& f, auto& r) { return put(f.whole(1, 10000), r.threshold); }},
    {"window", [](auto& f, auto& r) { return put(f.seconds(1, 7 * day), r.window_s); }},
    {"hold", [](auto& f, auto& r) { return put(f.seconds(0, 30 * day), r.hold_s); }},
    {"recover_every", [](auto& f, auto& r) { return put(f.seconds(1, day), r.recover_every_s); }},
    {"recover", [](auto& f, auto& r) { return put(f.real(1, true, 10), r.recover); }},
    {"escalate", [](auto& f, auto& r) { return put(f.real(1, false, 10), r.escalate); }},
    {"max_level", [](auto& f, auto& r) { return put(f.whole(1, 10), r.max_level); }},
    {"action", set_action},
};

bool set_action(const Field& f, ShapingRule& r) {
    if (!lua_istable(f.L(), -1))
        return f.fail(fmt::format("must be a table such as {{ rate_factor = 0.5 }}, not a {}",
                                  luaL_typename(f.L(), -1)));
    // read with the rule's Reading: its keys are "action.KEY" in messages and in `seen`
    return read_keys(f.reading(), lua_gettop(f.L()), action_keys, "action.", r.action);
}

// What concerns several keys, once every key is read.
bool check_whole(Reading& r, const ShapingRule& rule) {
    auto has = [&](const char* k) { return r.seen.count(k) > 0; };
    bool ok = true;
    if (rule.name.empty()) ok = r.fail("name", "missing: every rule needs a unique name");
    if (has("action.rate") && has("action.rate_factor"))
        ok = r.fail("action", "give rate_factor or rate, not both");
    if (has("action.connections") && has("action.connections_factor"))
        ok = r.fail("action", "give connections_factor or connections, not both");
    const ShapingAction& a = rule.action;
    bool does = a.rate_factor < 1 || a.rate || a.connections_factor < 1 || a.connections ||
                a.messages_per_connection || a.suspend_s > 0 || !a.pool.empty() || a.alert;
    if (!does)
        ok = r.fail("action",
                    "does nothing: cut the rate or the connections, set "
                    "messages_per_connection, suspend, pool or alert = true");
    if (!a.pool.empty() && rule.scope == ShapingRule::Scope::domain)
        ok = r.fail("action.pool", "applies to scope 'source' only (a domain sends from any pool)");
    return ok;
}

}  // namespace

std::optional<ShapingRule> read_rule(lua_State* L, int idx, const RuleSite& at,
                                     const RuleContext& ctx, Diagnostics& d) {
    Reading r{L, at, "adaptive rule", ctx, d, {}};
    lua_pushstring(L, "name");
    lua_rawget(L, idx);
    if (lua_type(L, -1) == LUA_TSTRING) r.subject += fmt::format(" '{}'", lua_tostring(L, -1));
    lua_pop(L, 1);
    ShapingRule rule;
    rule.origin = fmt::format("{}:{}", at.file, at.line);
    // what concerns several keys is checked only when each key is right (a wrong key
    // would make the whole look wrong too)
    if (!read_keys(r, idx, rule_keys, "", rule) || !check_whole(r, rule)) return std::nullopt;
    return rule;
}

}  // namespace kasi
