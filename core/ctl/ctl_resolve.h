// kasictl resolve: ask Kasi's own resolver (config/dns.ini), to see what Kasi sees.
//   kasictl -c DIR resolve TYPE NAME... [--again]   TYPE: A AAAA MX TXT PTR CNAME
//   kasictl -c DIR resolve route DOMAIN [--prefer v4|v6|only_v4|only_v6] [--local-mx-ok]
// All names are asked at once (identical ones share a query); --again asks them a second
// time once the first round is answered (from the cache). The last line is the
// resolver's counters.
#pragma once

#include <string>
#include <vector>

namespace kasi {

int ctl_resolve(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
