// See breaker_reader.h. Two passes over the breaker table: first its own keys (`enabled`,
// the defaults, and `tenants` only checked to be a table), then each tenant's override,
// read over a copy of the defaults. Lua gives a table's keys in no particular order, so
// only this way does a tenant inherit every default however the table is written.
#include "plugins/adaptive/breaker_reader.h"

#include <algorithm>

#include "plugins/adaptive/lua_fields.h"

namespace kasi {

namespace {

using namespace lua_data;

// What one table of thresholds sets: the breaker's (enabled and the defaults) or a
// tenant's (its limits only).
struct Thresholds {
    BreakerLimits limits;
    bool enabled = true;
};

// The breaker counts in sixty one-minute buckets: a window is 1 to 60 whole minutes.
bool set_window(const Field& f, Thresholds& t) {
    auto v = f.seconds(minute, hour);
    if (!v) return false;
    if (*v % minute != 0)
        return f.bad("must be whole minutes (the breaker counts in one-minute buckets)");
    t.limits.window_s = *v;
    return true;
}

template <auto Member, int64_t lo, int64_t hi>
bool set_whole(const Field& f, Thresholds& t) {
    return put(f.whole(lo, hi), t.limits.*Member);
}

// A share of attempts (a rate) or of deliveries (probe): more than 0, at most 1.
template <double BreakerLimits::*Member>
bool set_share(const Field& f, Thresholds& t) {
    return put(f.real(0, true, 1), t.limits.*Member);
}

bool set_open(const Field& f, Thresholds& t) {
    return put(f.seconds(minute, day), t.limits.open_s);
}

bool set_enabled(const Field& f, Thresholds& t) {
    return put(f.flag(), t.enabled);
}

// Read in the second pass; here only its type.
bool check_tenants(const Field& f, Thresholds&) {
    if (lua_istable(f.L(), -1)) return true;
    return f.fail(
        fmt::format("must be a table of tenants such as {{ acme = {{ hard_bounce_rate = 0.1 }} "
                    "}}, not a {}",
                    luaL_typename(f.L(), -1)));
}

// The breaker's keys; a tenant's are the limits in the middle (tenant_keys).
const Key<Thresholds> breaker_keys[] = {
    {"enabled", set_enabled},
    {"window", set_window},
    {"min_attempts", set_whole<&BreakerLimits::min_attempts, 1, 1'000'000>},
    {"hard_bounce_rate", set_share<&BreakerLimits::hard_bounce_rate>},
    {"complaint_rate", set_share<&BreakerLimits::complaint_rate>},
    {"block_rate", set_share<&BreakerLimits::block_rate>},
    {"open", set_open},
    {"probe", set_share<&BreakerLimits::probe>},
    {"probe_attempts", set_whole<&BreakerLimits::probe_attempts, 1, 10'000>},
    {"tenants", check_tenants},
};
const Keys<Thresholds> tenant_keys = Keys<Thresholds>(breaker_keys).subspan(1, 8);

// As the HTTP API accepts a tenant (core/http/send_request.cpp): 1 to 128 printable
// characters, no space, quote or backslash. An override for a name no message can carry
// is a typo.
bool tenant_name_ok(std::string_view s) {
    return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return c > 32 && c < 127 && c != '"' && c != '\\';
    });
}

// The override on top of the stack, of tenants[name] -> policy.tenants[name].
bool read_tenant(lua_State* L, const std::string& name, const RuleSite& at, const SiteOf& site_of,
                 Diagnostics& d, BreakerPolicy& policy) {
    int idx = lua_gettop(L);
    RuleContext none;
    Reading r{L, site_of(idx).value_or(at), "adaptive breaker", none, d, {}};
    std::string key = "tenants." + name;
    if (!tenant_name_ok(name))
        return r.fail("tenants",
                      fmt::format("'{}' is no tenant name (1 to 128 printable characters, no "
                                  "space, quote or backslash)",
                                  name));
    if (!lua_istable(L, idx))
        return r.fail(key, fmt::format("must be a table such as {{ hard_bounce_rate = 0.1 }}, "
                                       "not a {}",
                                       luaL_typename(L, idx)));
    Thresholds t{policy.defaults};
    if (!read_keys(r, idx, tenant_keys, key + ".", t)) return false;
    policy.tenants[name] = t.limits;
    return true;
}

bool read_tenants(lua_State* L, int breaker, const RuleSite& at, const SiteOf& site_of,
                  Diagnostics& d, BreakerPolicy& policy) {
    lua_pushliteral(L, "tenants");
    lua_rawget(L, breaker);
    int list = lua_gettop(L);
    bool ok = true;
    for (lua_pushnil(L); lua_istable(L, list) && lua_next(L, list); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            RuleContext none;
            Reading{L, at, "adaptive breaker", none, d, {}}.fail(
                "tenants",
                "write `name = { ... }` or `['name'] = { ... }` (a list entry is no "
                "tenant)");
            ok = false;
            continue;
        }
        ok = read_tenant(L, lua_tostring(L, -2), at, site_of, d, policy) && ok;
    }
    lua_settop(L, list - 1);
    return ok;
}

}  // namespace

std::optional<BreakerPolicy> read_breaker(lua_State* L, int idx, const RuleSite& fallback,
                                          const SiteOf& site_of, Diagnostics& d) {
    RuleContext none;
    Reading r{L, site_of(idx).value_or(fallback), "adaptive breaker", none, d, {}};
    if (!lua_istable(L, idx)) {
        r.fail("", fmt::format("must be a table such as {{ enabled = true, hard_bounce_rate = "
                               "0.05 }}, not a {}",
                               luaL_typename(L, idx)));
        return std::nullopt;
    }
    Thresholds t;
    if (!read_keys(r, idx, breaker_keys, "", t)) return std::nullopt;
    BreakerPolicy policy;
    policy.automatic = t.enabled;
    policy.defaults = t.limits;
    if (!read_tenants(L, idx, r.at, site_of, d, policy)) return std::nullopt;
    return policy;
}

}  // namespace kasi
