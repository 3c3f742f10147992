// Native plugins by name. Reads config/plugins (one name per line, run order), maps
// Haraka's deprecated names as Haraka does, and lets each plugin read its own config files
// and register its hooks. An unknown name is an error naming the line.
#pragma once

#include <memory>
#include <string>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

// Haraka's plugins.deprecated map (rate_limit -> limit, relay_acl -> relay, ...).
std::string canonical_plugin_name(const std::string& name);

bool build_plugins(const ConfigDir& cfg, const Settings& s, Diagnostics& d, HookTable& table);

}  // namespace kasi
