// kasictl dkim: DKIM keys for the dkim plugin (plugins/dkim).
//   kasictl -c DIR dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N] [--user NAME]
//       writes DIR/config/dkim/DOMAIN/SELECTOR.private (never over an existing file) and
//       SELECTOR.dns, and prints the TXT record to publish. The key is mode 0600 and
//       belongs to the user kasi runs as, so that only kasi (and root) can read it: run as
//       root, keygen gives it to --user NAME, else to the owner of the spool directory
//       when that is not root, else to the user `kasi` when it exists (the package's);
//       directories it creates are mode 0755 (they hold nothing secret but the keys).
//   kasictl -c DIR dkim records [DOMAIN]
//       the TXT record of every key configured (the ones kasi would load)
// The plugin's kasictl command (core/ctl/kasictl.h), declared in dkim/meson.build.
#pragma once

#include <string>
#include <vector>

#include "core/ctl/kasictl.h"

namespace kasi {

int ctl_dkim(const std::string& dir, const std::vector<std::string>& args);
extern const CtlCommand dkim_ctl_command;  // "dkim", its usage, ctl_dkim
// The zone-file line for a key record: strings of at most 255 octets (RFC 1035 §3.3).
std::string dkim_zone_line(const std::string& selector, const std::string& domain,
                           const std::string& record);

}  // namespace kasi
