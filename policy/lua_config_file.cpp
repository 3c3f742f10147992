#include "policy/lua_config_file.h"

namespace kasi {

LuaConfigFile::LuaConfigFile(const LuaEnv& env)
    : state_(env.limits, env.search_path, env.modules) {}

bool LuaConfigFile::run(const std::string& source, const std::string& path, std::string& err) {
    lua_State* L = state_.L();
    if (!L) {
        err = path + ": cannot create a Lua state";
        return false;
    }
    if (!state_.load(source, path, err)) return false;
    state_.begin_slice(state_.limits().instructions);
    int rc = lua_pcall(L, 0, 1, 0);
    state_.end_slice();
    if (rc == 0) return true;
    if (rc == LUA_ERRMEM)  // raised where it happened, with no position: name the file
        err = path + ": not enough memory (lua.ini memory_mb, call_memory_mb)";
    else
        err = lua_tostring(L, -1) ? lua_tostring(L, -1) : path + ": error (not a string)";
    lua_pop(L, 1);
    return false;
}

}  // namespace kasi
