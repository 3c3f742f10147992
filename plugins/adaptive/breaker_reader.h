// The `breaker` table of an adaptive set (lua/kasi/adaptive.lua, config/adaptive.lua) ->
// the per-tenant circuit breakers' BreakerPolicy (core/shaping/tenant_breaker.h), every
// key checked as strictly as a rule's (rule_reader.h):
//
//   breaker = { enabled = true, window = '1h', min_attempts = 100, hard_bounce_rate = 0.05,
//               complaint_rate = 0.003, block_rate = 0.2, open = '30m', probe = 0.1,
//               probe_attempts = 20,
//               tenants = { acme = { hard_bounce_rate = 0.1 } } }
//
// `enabled` (default true) becomes BreakerPolicy::automatic: whether rates trip a breaker
// at all (an operator's pause and resume work either way). A tenant's override starts from
// the defaults read here, so the fields it leaves out inherit them; a key left out of the
// table keeps BreakerLimits' default (the shipped value). Ranges: window 1m to 1h in whole
// minutes (the breaker counts in sixty one-minute buckets), rates and probe more than 0
// and at most 1, min_attempts 1 to 1000000, probe_attempts 1 to 10000, open 1m to 1d.
//
// Messages name the FILE:LINE a table is written at when the loader knows it (the set's
// s:set_breaker{...} and s:tenant(...) helpers record their caller's line with rule(t, 2)):
// a tenant's table, else the breaker table's, else `fallback` (the file's last line).
#pragma once

#include <lua.hpp>

#include <functional>
#include <optional>

#include "core/config/diagnostics.h"
#include "core/shaping/tenant_breaker.h"
#include "plugins/adaptive/rule_reader.h"

namespace kasi {

// Where the table at absolute stack index idx is written, if recorded.
using SiteOf = std::function<std::optional<RuleSite>(int idx)>;

// Reads the value at absolute stack index `idx`; nullopt (with errors in `d`) if any key
// is wrong.
std::optional<BreakerPolicy> read_breaker(lua_State* L, int idx, const RuleSite& fallback,
                                          const SiteOf& site_of, Diagnostics& d);

}  // namespace kasi
