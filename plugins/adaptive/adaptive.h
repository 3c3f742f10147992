// adaptive: turns on adaptive traffic shaping (core/shaping, docs/adaptive.md) by giving each
// config generation its automation rules. It registers no hook: at every config load and
// reload it evaluates config/adaptive.lua (or, without one, the shipped defaults:
// require('kasi.adaptive').defaults(), lua/kasi/adaptive.lua), checks every rule
// (rule_reader.h) and hands them to the generation's HookTable (set_shaping_rules). Any
// error is a config error with FILE:LINE, so a reload with a bad rule keeps the running
// rules and `kasi --check-config` names the line.
//
// The file runs in a sandboxed Lua state of its own (policy/lua_config_file.h) with lua.ini's
// limits and require() path, plus one global, `rule`: rule{...} marks a table as a rule and
// records the FILE:LINE of the call (rule(t, 2): of the caller's caller, for helpers),
// which becomes the rule's origin in events and in kasictl. The file returns a rule set,
// { rules = { rule{...}, ... }, breaker = { ... } } (what defaults() returns, with its
// get/set/remove/add/set_breaker/tenant helpers); `breaker` holds the per-tenant circuit
// breakers' thresholds (breaker_reader.h), handed over in the same ShapingRules.
// plugins/adaptive/README.md has the keys, the shipped rules and examples.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"
#include "core/shaping/shaping_rules.h"

namespace kasi {

std::shared_ptr<Plugin> make_adaptive_plugin(const ConfigDir& cfg, const Settings& s,
                                             Diagnostics& d, HookTable& table, uint32_t timeout_ms);

// The rules of config dir `cfg` (DIR/config): config/adaptive.lua, else the shipped
// defaults. Null, with errors in `d`, if anything is wrong.
std::shared_ptr<const ShapingRules> load_adaptive_rules(const ConfigDir& cfg, Diagnostics& d);

}  // namespace kasi
