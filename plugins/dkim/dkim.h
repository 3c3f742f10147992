// dkim: signs relayed mail as haraka-plugin-dkim does, and more (dkim_config.h): per-domain
// RSA and Ed25519 keys, dual signing, several signing domains, rotation. Signing is the
// last step before the spool write (a Sealer at the sign stage), so no hook or header
// addition can alter a signed message. Policies steer it with transaction notes:
//   dkim.domain = "a.example, b.example"  sign as these domains instead of the chosen one
//   dkim.skip   = "1"                     do not sign this message
//   forward     (Haraka's)                 choose the envelope sender's domain
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_dkim_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                         HookTable& table, uint32_t timeout_ms);

}  // namespace kasi
