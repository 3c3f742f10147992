// kasictl dkim: DKIM keys for the dkim plugin (plugins/dkim).
//   kasictl -c DIR dkim keygen DOMAIN SELECTOR [--ed25519] [--bits N]
//       writes DIR/config/dkim/DOMAIN/SELECTOR.private (mode 600, never over an existing
//       file) and SELECTOR.dns, and prints the TXT record to publish
//   kasictl -c DIR dkim records [DOMAIN]
//       the TXT record of every key configured (the ones kasi would load)
#pragma once

#include <string>
#include <vector>

namespace kasi {

int ctl_dkim(const std::string& dir, const std::vector<std::string>& args);
// The zone-file line for a key record: strings of at most 255 octets (RFC 1035 §3.3).
std::string dkim_zone_line(const std::string& selector, const std::string& domain,
                           const std::string& record);

}  // namespace kasi
