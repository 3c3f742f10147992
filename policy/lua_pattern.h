// Lua 5.1 string patterns with a step budget, for the policy sandbox.
//
// LuaJIT's own string.find/match/gmatch/gsub backtrack inside one C function: a pattern
// such as string.rep('a*', 30) .. 'b' against 30 a's takes exponential time, and neither
// the instruction count hook nor a loop timer can interrupt it. install_lua_patterns()
// replaces those four functions in the `string` table (which is also the __index of the
// string metatable, so ("x"):find(...) uses them too) with this implementation, which has
// the semantics of LuaJIT's (Lua 5.1 patterns plus %g, a recursion depth limit of 200) and
// counts its steps: one string function call may take at most
//   LuaLimits::pattern_steps + 32 per byte of the subject
// steps, and every step counts as one VM instruction against the call's budget. Past the
// first limit the call raises the (catchable) Lua error "pattern too complex"; past the
// call's instruction budget the hook call is over, as with any budget overrun.
#pragma once

#include <lua.hpp>

namespace kasi {

void install_lua_patterns(lua_State* L);

}  // namespace kasi
