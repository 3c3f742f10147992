// Checked reading of a Lua data table, key by key: what rule_reader.cpp (a rule{...}) and
// breaker_reader.cpp (the breaker table) share. A table is read with a list of Key<T>
// entries, each a key name and a setter that checks the value on top of the stack (through
// a Field, whose typed getters say what is wrong instead of converting) and stores it in T.
// Every message names the subject ("adaptive rule 'x'", "adaptive breaker"), the key as
// written ("action.rate", "tenants.acme.probe") and the FILE:LINE of the table (RuleSite).
//
// Only raw table access: reading runs no Lua code, so no metamethod can loop or fail here.
#pragma once

#include <fmt/format.h>
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/config/diagnostics.h"
#include "core/queue/outbound_config.h"
#include "plugins/adaptive/rule_reader.h"

namespace kasi::lua_data {

constexpr int64_t minute = 60, hour = 3600, day = 86400;

// The table being read: what every message about it starts with, and where it is written.
struct Reading {
    lua_State* L;
    RuleSite at;
    std::string subject;  // "adaptive rule 'google-rate'", "adaptive breaker"
    const RuleContext& ctx;
    Diagnostics& d;
    std::set<std::string> seen;  // keys given ("action.rate", ...)

    std::string where(std::string_view key) const {
        return key.empty() ? subject : fmt::format("{}: {}", subject, key);
    }
    bool fail(std::string_view key, std::string_view why) const {
        d.error(at.file, at.line, fmt::format("{}: {}", where(key), why));
        return false;
    }
    void warn(std::string_view key, std::string_view why) const {
        d.warn(at.file, at.line, fmt::format("{}: {}", where(key), why));
    }
};

// The value of one key, on top of the stack, with typed getters that report what is wrong
// (and return nullopt) instead of converting.
class Field {
  public:
    Field(Reading& r, std::string key) : r_(r), key_(std::move(key)) {}
    Reading& reading() const { return r_; }  // for a nested table (action)
    const std::string& key() const { return key_; }
    lua_State* L() const { return r_.L; }
    const RuleContext& ctx() const { return r_.ctx; }
    bool fail(std::string_view why) const { return r_.fail(key_, why); }
    void warn(std::string_view why) const { r_.warn(key_, why); }
    bool is_string() const { return lua_type(L(), -1) == LUA_TSTRING; }
    bool is_number() const { return lua_type(L(), -1) == LUA_TNUMBER; }

    std::optional<std::string> text() const {
        if (is_string()) return string_at(-1);
        fail(fmt::format("must be a string, not a {}", luaL_typename(L(), -1)));
        return std::nullopt;
    }
    std::optional<bool> flag() const {
        if (lua_type(L(), -1) == LUA_TBOOLEAN) return lua_toboolean(L(), -1) != 0;
        fail(fmt::format("must be true or false, not a {}", luaL_typename(L(), -1)));
        return std::nullopt;
    }
    // A whole number from lo to hi.
    std::optional<int64_t> whole(int64_t lo, int64_t hi) const {
        double v = is_number() ? lua_tonumber(L(), -1) : NAN;
        if (v == std::floor(v) && v >= double(lo) && v <= double(hi)) return int64_t(v);
        bad(fmt::format("must be a whole number from {} to {}", lo, hi));
        return std::nullopt;
    }
    // A number in (lo, hi] (lo_open) or [lo, hi].
    std::optional<double> real(double lo, bool lo_open, double hi) const {
        double v = is_number() ? lua_tonumber(L(), -1) : NAN;
        if ((lo_open ? v > lo : v >= lo) && v <= hi) return v;
        bad(fmt::format("must be a number {} {} and at most {}",
                        lo_open ? "more than" : "of at least", lo, hi));
        return std::nullopt;
    }
    // '90s', '10m', '2h', '1d' or a whole number of seconds, from lo to hi seconds.
    std::optional<int64_t> seconds(int64_t lo, int64_t hi) const {
        int64_t ms = -1;
        if (is_string()) {
            if (!parse_duration_ms(lua_tostring(L(), -1), ms)) ms = -1;
        } else if (is_number()) {
            double v = lua_tonumber(L(), -1);
            if (v == std::floor(v) && v >= 0 && v <= 1e9) ms = int64_t(v) * 1000;
        }
        if (ms >= 0 && ms / 1000 >= lo && ms / 1000 <= hi && ms % 1000 == 0) return ms / 1000;
        bad(fmt::format("must be a duration from {} to {} ('90s', '10m', '2h', '1d' or seconds)",
                        span(lo), span(hi)));
        return std::nullopt;
    }
    // A list of strings ({'a', 'b'}; {} is an empty list).
    std::optional<std::vector<std::string>> words() const {
        if (!lua_istable(L(), -1)) {
            bad("must be a list of strings, e.g. {'a', 'b'}");
            return std::nullopt;
        }
        std::vector<std::string> out;
        size_t n = lua_objlen(L(), -1), count = 0;
        for (lua_pushnil(L()); lua_next(L(), -2); lua_pop(L(), 1)) ++count;
        for (size_t i = 1; i <= n && count == n; ++i) {
            lua_rawgeti(L(), -1, int(i));
            if (is_string()) out.push_back(string_at(-1));
            lua_pop(L(), 1);
        }
        if (count == n && out.size() == n) return out;
        bad("must be a list of strings, e.g. {'a', 'b'}");
        return std::nullopt;
    }
    // "must be ..., not <what it is>".
    bool bad(std::string_view must) const {
        lua_State* L = r_.L;
        std::string got = is_string()   ? fmt::format("'{}'", lua_tostring(L, -1))
                          : is_number() ? fmt::format("{}", lua_tonumber(L, -1))
                                        : fmt::format("a {}", luaL_typename(L, -1));
        return fail(fmt::format("{}, not {}", must, got));
    }

  private:
    std::string string_at(int idx) const {
        size_t len = 0;
        const char* p = lua_tolstring(L(), idx, &len);
        return std::string(p, len);
    }
    static std::string span(int64_t s) {
        if (s % day == 0 && s >= day) return fmt::format("{}d", s / day);
        if (s % hour == 0 && s >= hour) return fmt::format("{}h", s / hour);
        if (s % minute == 0 && s >= minute) return fmt::format("{}m", s / minute);
        return fmt::format("{}s", s);
    }

    Reading& r_;
    std::string key_;
};

template <class V, class U>
bool put(const std::optional<V>& v, U& out) {
    if (v) out = U(*v);
    return v.has_value();
}

template <class T>
struct Key {
    const char* name;
    bool (*set)(const Field&, T&);
};

// A list of keys: an array of them, or a part of one (std::span::subspan).
template <class T>
using Keys = std::span<const Key<std::type_identity_t<T>>>;

template <class T>
std::string key_list(Keys<T> keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ", ") + std::string(k.name);
    return out;
}

// Reads every key of the table at absolute index `idx` into `out` with `keys`; `prefix`
// names the table in messages ("" or "action.").
template <class T>
bool read_keys(Reading& r, int idx, Keys<T> keys, const std::string& prefix, T& out) {
    lua_State* L = r.L;
    bool ok = true;
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            ok = r.fail(prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1),
                        "write `key = value` pairs (a list entry is no key)");
            continue;
        }
        std::string key = prefix + lua_tostring(L, -2);
        auto k = std::find_if(keys.begin(), keys.end(),
                              [&](const Key<T>& e) { return prefix + e.name == key; });
        if (k == keys.end()) {
            ok = r.fail(key, fmt::format("unknown key (known: {})", key_list<T>(keys)));
            continue;
        }
        r.seen.insert(key);
        ok = k->set(Field(r, key), out) && ok;
    }
    return ok;
}

}  // namespace kasi::lua_data
