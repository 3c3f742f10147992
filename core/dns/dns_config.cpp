#include "core/dns/dns_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

std::string DnsServer::str() const {
    return ip.v6 ? fmt::format("[{}]:{}", ip.str(), port) : fmt::format("{}:{}", ip.str(), port);
}

namespace {

bool parse_server(std::string_view s, DnsServer& out) {
    s = trim(s);
    std::string_view host = s, port;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return false;
        host = s.substr(1, close - 1);
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return false;
            port = rest.substr(1);
        }
    } else if (std::count(s.begin(), s.end(), ':') == 1) {
        auto colon = s.find(':');
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    auto ip = IpAddr::parse(host);
    if (!ip) return false;
    out.ip = *ip;
    out.port = 53;
    if (!port.empty()) {
        unsigned long long p;
        if (!parse_u64(port, p) || p == 0 || p > 65535) return false;
        out.port = int(p);
    }
    return true;
}

void read_resolv_conf(const std::string& path, DnsConfig& c) {
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        auto words = split_list(line, " \t");
        if (words.size() >= 2 && words[0] == "nameserver") {
            DnsServer s;
            if (auto ip = IpAddr::parse(words[1])) {
                s.ip = *ip;
                c.servers.push_back(s);
            }
        } else if (!words.empty() && words[0] == "options") {
            for (size_t i = 1; i < words.size(); ++i) {
                unsigned long long v;
                if (words[i].starts_with("timeout:") && parse_u64(words[i].substr(8), v) && v)
                    c.timeout_ms = uint32_t(std::min<unsigned long long>(v, 30) * 1000);
                if (words[i].starts_with("attempts:") && parse_u64(words[i].substr(9), v) && v)
                    c.attempts = int(std::min<unsigned long long>(v, 5));
            }
        }
    }
}

}  // namespace

DnsConfig load_dns_config(const ConfigDir& cfg, Diagnostics& d, const std::string& resolv_conf) {
    DnsConfig c;
    Ini ini = cfg.ini("dns.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main"});
    r.check_known("main", {"servers", "timeout", "attempts", "cache_entries", "max_ttl",
                           "negative_ttl", "edns_udp_size", "mx_host_limit"});
    auto line_of = [&](const char* key) {
        const auto* e = ini.find("main", key);
        return e ? e->line : 0;
    };
    auto servers = r.get_list("main", "servers");
    for (const auto& s : servers) {
        DnsServer srv;
        if (!parse_server(s, srv)) {
            d.error(ini.path, line_of("servers"),
                    fmt::format("servers: '{}' is not ip[:port] ([ipv6]:port)", s));
            continue;
        }
        c.servers.push_back(srv);
    }
    if (servers.empty()) read_resolv_conf(resolv_conf, c);
    if (auto t = r.get_str("main", "timeout", ""); !t.empty()) {
        char* end = nullptr;
        double v = std::strtod(t.c_str(), &end);
        if (!end || *end || v < 0.05 || v > 60)
            d.error(ini.path, line_of("timeout"),
                    fmt::format("timeout: '{}' is not a number of seconds in 0.05..60", t));
        else
            c.timeout_ms = uint32_t(v * 1000);
    }
    c.attempts = int(r.get_int("main", "attempts", c.attempts, 1, 10));
    c.cache_entries = size_t(r.get_int("main", "cache_entries", 100000, 0, 100000000));
    c.max_ttl = uint32_t(r.get_int("main", "max_ttl", 86400, 0, 604800));
    c.negative_ttl = uint32_t(r.get_int("main", "negative_ttl", 3600, 0, 86400));
    c.edns_udp_size = uint16_t(r.get_int("main", "edns_udp_size", 1232, 0, 4096));
    if (c.edns_udp_size && c.edns_udp_size < 512) c.edns_udp_size = 512;
    c.mx_host_limit = size_t(r.get_int("main", "mx_host_limit", 10, 1, 100));
    if (c.servers.empty())
        d.error(ini.path, 0,
                "no DNS server: set [main] servers or give /etc/resolv.conf a nameserver");
    return c;
}

}  // namespace kasi
