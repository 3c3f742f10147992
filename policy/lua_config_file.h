// A Lua file that returns data instead of hooks: config/adaptive.lua and the like. Such a
// file is evaluated once per config load, on no loop, in a sandboxed LuaState of its own
// (lua_state.h: no io, no debug, `require` only from the policy search path) with the
// generation's limits (lua.ini). Its main chunk runs as one call under the instruction,
// memory and run-time budget of a hook call, so an endless loop or a runaway module ends
// as an error naming file:line, never as a hung reload.
//
// The caller may add globals before run() (the adaptive plugin adds `rule`), and reads the
// value the file returned from the top of the stack afterwards. The state lives as long
// as this object: read what you need before it goes.
#pragma once

#include <lua.hpp>

#include <string>

#include "policy/lua_loop.h"
#include "policy/lua_state.h"

namespace kasi {

class LuaConfigFile {
  public:
    // `env`: limits and search path, as load_lua_env() (lua_runtime.h) reads them.
    explicit LuaConfigFile(const LuaEnv& env);

    bool ok() const { return state_.ok(); }
    lua_State* L() const { return state_.L(); }

    // Compiles `source` (named `path` in messages and debug info) and runs it under the
    // budget. On success its first result is left on top of the stack; on failure `err`
    // is "file:line: message" (as Lua words it) and the stack is as before.
    bool run(const std::string& source, const std::string& path, std::string& err);

  private:
    LuaState state_;
};

}  // namespace kasi
