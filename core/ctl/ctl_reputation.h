// kasictl -c DIR reputation [--source S] [--domain D] [--provider P] [--tenant T]
//                           [--rollups] [--limit N] [--json]
// The reputation matrix (docs/reputation.md) as a table, or its JSON with --json. Asked of
// the running kasi through the admin API (GET /api/v1/admin/reputation) when http.ini has a
// plain listener, else through the control socket; with kasi stopped, read from the
// snapshot on disk (reputation.ini [main] snapshot), as of its last write. A filter given
// as "" (--domain '') names a roll-up's wildcard: `--source S --domain ''` shows S at each
// provider over every sending domain.
#pragma once

#include <string>
#include <vector>

namespace kasi {

int ctl_reputation(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
