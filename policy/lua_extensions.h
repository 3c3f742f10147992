// What the Lua engine attaches to the server (core/server/extensions.h), so that core needs
// no Lua: each loop's pending policy work is closed with the loop (kasi.sleep timers,
// kasi.http requests, kasi.redis links: lua_api.h), kasi.metrics is part of /metrics,
// kasi.counter's store lives in the spool directory (counters.tsv: lua_counters.h) and
// the shutdown deadline interrupts running policy calls (lua_state.h).
#pragma once

#include "core/server/extensions.h"

namespace kasi {

void add_policy_extensions(Extensions& e);

}  // namespace kasi
