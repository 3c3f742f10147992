// kasi.suppression: the suppression list (docs/suppression.md) as Lua policies see it.
//
//   kasi.suppression.check(address [, scopes]) -> entry or nil
//       The entry in force that stops `address`: the global scope first, then `scopes` in
//       order (a string or a list of strings such as "tenant:acme", "domain:example.com").
//       An entry is {address=, scope= ("global" or the scope), reason=, created=, expires=,
//       event=}. A lookup in memory: it never yields, and works in any hook and in a main
//       chunk.
//   kasi.suppression.add(address [, {scope=, reason=, expires=, event=}]) -> true | nil, err
//       Adds (or replaces) an entry, durably: the call yields while the entry is written and
//       fdatasync'ed on the thread pool, and returns true once it is on disk. reason
//       defaults to "manual", scope to global, expires (seconds from now) to never, event
//       (up to 64 bytes, what caused it) to "lua". Hooks only.
// Without a list (suppression.ini [main] enabled = false) check returns nil and a message,
// and add returns nil and the same message.
//
// The list is the process's own (shown through the extensions' suppressions point,
// core/server/extensions.h, at start and withdrawn before it goes):
// one for every Lua state of every loop and generation, like kasi.counter.
#pragma once

#include <lua.hpp>

namespace kasi {

class SuppressionService;

// Adds kasi.suppression to the `kasi` table on top of the stack.
void install_lua_suppression(lua_State* L);
void set_lua_suppressions(SuppressionService* svc);

}  // namespace kasi
