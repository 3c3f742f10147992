// rcpt_to.in_host_list: accepts recipients in local domains (config/host_list, exact,
// case-insensitive; config/host_list_regex, anchored ^(?:re1|re2)$, case-insensitive), as
// Haraka's plugin does. Kasi is stricter for clients that do not relay: a local part with
// routing characters (%, !, a quoted @) is refused, so no local agent can be tricked into
// forwarding.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_in_host_list_plugin(const ConfigDir& cfg, const Settings& s,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms);

}  // namespace kasi
