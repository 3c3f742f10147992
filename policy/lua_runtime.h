// Lua plugins of one config generation. build_plugins() hands each `NAME` of
// config/plugins that is not a native plugin to add_lua_plugin(): DIR/plugins/NAME.lua is
// read, loaded and validated (it must return a table whose hook_<name> fields are
// functions named after known hooks), and each hook is registered in the HookTable in
// config/plugins order like any native handler.
//
// At run time every loop gets its own LuaLoop (its own state), created on that loop's
// thread the first time one of its hooks runs. A reload builds a new generation with new
// states; sessions and deliveries pick the new HookTable up for their next hook, and the
// old states go away with the last hook that used them.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"
#include "core/hooks/plugin.h"
#include "policy/lua_loop.h"

namespace kasi {

class LuaRuntime : public Plugin {
  public:
    explicit LuaRuntime(LuaEnv env) : env_(std::make_shared<LuaEnv>(std::move(env))) {}
    std::string name() const override { return "lua"; }
    // The state of `loop`, created on first use; null (logged once) if it cannot be built.
    std::shared_ptr<LuaLoop> loop_state(uv_loop_t* loop);
    size_t plugin_count() const { return env_->plugins.size(); }
    LuaEnv& env_for_building() { return *env_; }

  private:
    std::shared_ptr<LuaEnv> env_;
    std::mutex mu_;
    std::map<uv_loop_t*, std::shared_ptr<LuaLoop>> loops_;
    bool failed_logged_ = false;
};

// The installed Lua library (lua/ of the source tree, installed to <datadir>/kasi/lua):
// $KASI_LUA_DIR if set, else the installed directory if it exists, else the source tree the
// binary was built from (as default_rules_dir() does for rules/).
std::string default_lua_dir();

// config/lua.ini: the limits and the require() path (DIR/plugins, DIR/lua, library_path[],
// default_lua_dir()) of the generation's Lua, for Lua plugins and Lua config files alike.
LuaEnv load_lua_env(const ConfigDir& cfg, Diagnostics& d);

// True if `name` is a Lua plugin of this config dir (DIR/plugins/NAME.lua exists).
bool is_lua_plugin(const ConfigDir& cfg, const std::string& name);

// Loads, validates and registers DIR/plugins/NAME.lua. `line` is its config/plugins line.
void add_lua_plugin(const ConfigDir& cfg, const std::string& name, int line, uint32_t timeout_ms,
                    Diagnostics& d, HookTable& table);

}  // namespace kasi
