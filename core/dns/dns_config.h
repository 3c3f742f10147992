// Which resolvers Kasi asks, and how patiently: config/dns.ini, else /etc/resolv.conf.
//   dns.ini [main] servers (host:port list; [v6]:port; port 53 when absent),
//                  timeout (seconds per try, fractions allowed, 5), attempts (2),
//                  cache_entries (100000), max_ttl (86400), negative_ttl (3600: cap for
//                  NXDOMAIN/NODATA caching), edns_udp_size (1232; 0 = no EDNS),
//                  mx_host_limit (10: MX hosts used per domain, lowest preference first,
//                  so a domain with hundreds of MX records costs at most 1 + 2×10 queries)
// Every try goes to the next server in turn; a query gives up after attempts × servers
// tries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config_dir.h"
#include "core/util/ip.h"

namespace kasi {

struct DnsServer {
    IpAddr ip;
    int port = 53;
    std::string str() const;
};

struct DnsConfig {
    std::vector<DnsServer> servers;
    uint32_t timeout_ms = 5000;
    int attempts = 2;
    size_t cache_entries = 100000;
    uint32_t max_ttl = 86400;
    uint32_t negative_ttl = 3600;
    uint16_t edns_udp_size = 1232;
    size_t mx_host_limit = 10;
};

DnsConfig load_dns_config(const ConfigDir& cfg, Diagnostics& d,
                          const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace kasi
