// The sandbox's C library functions that can build a large string or do work in
// proportion to their input, wrapped so that the work is bounded and paid for.
//
// LuaJIT runs string.rep, table.concat, string.format, table.insert, table.sort,
// table.maxn, collectgarbage and tonumber as single C calls: one VM instruction, however much they
// do. Here:
//   - string.rep and table.concat compute the length of their result first and refuse
//     one longer than LuaLimits::max_string (lua.ini max_string_kb) before allocating;
//     string.format (whose output is at most a few hundred bytes per item beyond its
//     string arguments) checks its result;
//   - each charges the bytes it produces (1 instruction per 64) or the elements it moves
//     or compares to the call's instruction budget (LuaState::charge); so do
//     string.upper, lower, reverse and sub, whose results LuaJIT builds in a reused
//     buffer that the allocator does not see;
//   - collectgarbage costs what the state holds, and only "collect", "step" and "count"
//     are available (no "stop" or tuning: the collector is shared by every plugin);
//     table.maxn is a Lua function (its loop counts instructions);
//   - string.find/match/gmatch/gsub are lua_pattern.cpp's.
// Everything else that allocates pays through the state's allocator (lua_state.cpp).
#pragma once

#include <lua.hpp>

namespace kasi {

void install_bounded_functions(lua_State* L);

}  // namespace kasi
