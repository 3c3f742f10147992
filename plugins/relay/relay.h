// relay: who may relay, as haraka-plugin-relay decides it.
//   relay.ini [relay] acl (true), force_routing (true), dest_domains (false), all (false)
//   relay_acl_allow: CIDRs (a missing mask means a host); "#" starts a comment
//   relay_dest_domains.ini [domains] domain = {"action": "accept|continue|deny", "nexthop": ...}
// connect_init marks ACL clients as relaying; connect answers OK for them (skipping later
// connect plugins); rcpt applies dest_domains for clients that do not relay.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_relay_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                          HookTable& table, uint32_t timeout_ms);

}  // namespace kasi
