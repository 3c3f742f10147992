// One automation rule as Lua wrote it (a rule{...} table of lua/kasi/adaptive.lua or
// config/adaptive.lua) -> a ShapingRule (core/shaping/shaping_rules.h), every key checked.
//
// The reader is strict because a rule that silently means something else is worse than a
// refused reload: an unknown key, a value of the wrong type or out of range, an unknown
// class, a reply pattern RE2 cannot compile, both a factor and an absolute value for the
// same limit, or an action that does nothing is an error naming the rule's FILE:LINE (and
// the reload keeps the running rules). A provider name that rules/providers.tsv does not
// know is only a warning: the rule simply never matches until the table has it.
//
// Values: durations are '90s', '10m', '2h', '1d' or a number of seconds; a rate is
// '100/min', '2/s', '5000/h' or a number per second. Only raw table access is used, so
// reading runs no Lua code (no metamethod can loop or fail here).
#pragma once

#include <lua.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/config/diagnostics.h"
#include "core/shaping/shaping_rules.h"

namespace kasi {

// What a rule is checked against.
struct RuleContext {
    std::vector<std::string> providers;  // known provider names; empty: not checked
    std::vector<std::string> pools;      // the pools of egress.ini
};

// Where a rule is written ("FILE:LINE" split), for every message about it.
struct RuleSite {
    std::string file;
    int line = 0;
};

// Reads the rule table at absolute stack index `idx`; nullopt (with errors in `d`) if any
// key is wrong. The result's origin is "FILE:LINE" of `at`.
std::optional<ShapingRule> read_rule(lua_State* L, int idx, const RuleSite& at,
                                     const RuleContext& ctx, Diagnostics& d);

}  // namespace kasi
