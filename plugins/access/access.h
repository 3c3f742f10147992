// access: haraka-plugin-access's precise ACLs for the connect, MAIL FROM and RCPT TO
// phases. Each phase has four list files, applied in order: whitelist (pass),
// whitelist_regex (pass), blacklist (DENY), blacklist_regex (DENY).
//   connect.rdns_access.{whitelist,whitelist_regex,blacklist,blacklist_regex}
//       matched against the client IP (entries may also be CIDR blocks, Kasi's addition)
//       and its rDNS name
//   mail_from.access.*   matched against the MAIL FROM address
//   rcpt_to.access.*     matched against each RCPT TO address
//   access.ini [check] conn, mail, rcpt (false); [rcpt] accept (false: a whitelisted
//       recipient is accepted, not just spared); [deny_msg] conn, mail, rcpt
// Regex entries are anchored (^…$) and case-insensitive. The "any" mode (access.domains)
// is not implemented; Kasi warns when that file exists.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_access_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                           HookTable& table, uint32_t timeout_ms);

}  // namespace kasi
