// kasi.reputation: the reputation matrix (docs/reputation.md) as Lua policies see it, so a
// routing or warm-up policy can choose by how a source, a sending domain or a tenant fares
// at a provider ("our last 24 h at gmail from this IP for this domain").
//
//   kasi.reputation.get{source=, domain=, provider=, tenant=} -> cell or nil
//       The cell the keys name exactly; a key left out is the roll-up's wildcard:
//       {source=S, provider=P} is S at P over every sending domain, {domain=D, provider=P}
//       is D at P from every source, {tenant=T} the tenant anywhere. nil when that cell saw
//       nothing within the window.
//   kasi.reputation.list{source=, domain=, provider=, tenant=, rollups=, limit=} -> {cell...}
//       Every cell matching the keys given (a key left out matches any), in key order, at
//       most `limit` (default 100, at most 10000).
// A cell: {source=, domain=, provider=, tenant= ("" for a wildcard), attempts=, delivered=,
// deferred=, bounced=, async_bounce=, complaint=, score= (0-100), rates={deferred=, ...},
// classes={deferred={rate_limited=N, ...}, bounced={...}, async_bounce={...}}}.
// Lookups in memory: they never yield and work in any hook and in a main chunk. With the
// matrix off (reputation.ini [main] enabled = false) both return nil and a message.
#pragma once

#include <lua.hpp>

namespace kasi {

class ReputationService;

// Adds kasi.reputation to the `kasi` table on top of the stack.
void install_lua_reputation(lua_State* L);
void set_lua_reputation(ReputationService* svc);

}  // namespace kasi
