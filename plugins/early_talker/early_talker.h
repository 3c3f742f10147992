// early_talker: as haraka-plugin-early_talker. Delays the banner by `pause` seconds at
// connect_init (a client that speaks first shows itself), and refuses DATA from a client
// that talked before its turn with "554 You talk too soon" and a disconnect.
//   early_talker.ini [main] pause (seconds, default 5; 0 = no delay), reject (true)
//                    [ip_whitelist] CIDRs, one per line (valueless keys): never delayed or refused
// Clients that relay are exempt too.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_early_talker_plugin(const ConfigDir& cfg, const Settings& s,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms);

}  // namespace kasi
