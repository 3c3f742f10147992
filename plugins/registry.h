// Native plugins by name. Reads config/plugins (one name per line, run order), maps
// Haraka's deprecated names as Haraka does, and lets each plugin read its own config files
// and register its hooks; a name that is no native plugin is a Lua plugin
// (plugins/NAME.lua: policy/lua_runtime.h). An unknown name is an error naming the line.
// The server reaches this through core/server/extensions.h; the kasictl commands plugins
// bring are in ctl_registry.h.
#pragma once

#include <memory>
#include <string>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"
#include "core/server/extensions.h"

namespace kasi {

// Haraka's plugins.deprecated map (rate_limit -> limit, relay_acl -> relay, ...).
std::string canonical_plugin_name(const std::string& name);

bool build_plugins(const ConfigDir& cfg, const Settings& s, Diagnostics& d, HookTable& table);

// Sets e.build_plugins to build_plugins.
void add_plugin_extensions(Extensions& e);

}  // namespace kasi
