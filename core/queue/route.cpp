#include "core/queue/route.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/hooks/plugin.h"

namespace kasi {

std::string queue_key(const Route& r, const std::string& source) {
    std::string key = source + "->" + r.site;
    if (r.tls == TlsMode::required) key += " (tls required)";
    if (r.tls == TlsMode::off) key += " (no tls)";
    if (!r.auth_user.empty())
        key += fmt::format(" (auth {}{})", r.auth_user,
                           r.auth_allow_cleartext ? ", cleartext allowed" : "");
    return key;
}

void apply_source(Route& r, const EgressSource& s, bool hop_bind, bool hop_helo) {
    r.source = s.name;
    if (!hop_bind && s.address) r.bind = *s.address;
    if (!hop_helo && !s.ehlo.empty()) r.helo = s.ehlo;
}

Route route_for_mx(const std::string& domain, const MxResult& r, const OutboundConfig& cfg,
                   const std::string& me) {
    Route route;
    route.helo = me;
    std::vector<std::string> names;
    for (const auto& h : r.hosts) {
        std::string name =
            h.name.empty() && !h.addrs.empty() ? "[" + h.addrs[0].str() + "]" : h.name;
        names.push_back(name);
        for (const auto& a : h.addrs)
            route.endpoints.push_back(Endpoint{a, uint16_t(cfg.smtp_port), h.name});
    }
    route.mx_hosts = names;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const auto& n : names) route.site += (route.site.empty() ? "" : ",") + n;
    route.tls = cfg.enable_tls ? TlsMode::opportunistic : TlsMode::off;
    auto listed = [&](const std::vector<std::string>& list) {
        for (const auto& p : list) {
            if (host_pattern_match(p, domain)) return true;
            for (const auto& h : route.mx_hosts)
                if (host_pattern_match(p, h)) return true;
            for (const auto& ep : route.endpoints)
                if (p == ep.ip.str()) return true;
        }
        return false;
    };
    if (listed(cfg.no_tls_hosts)) route.tls = TlsMode::off;
    if (listed(cfg.force_tls_hosts)) route.tls = TlsMode::required;
    return route;
}

Route route_for_hops(const std::vector<NextHop>& hops, const MxResult& r, const EgressSource* src,
                     const OutboundConfig& cfg, const std::string& me) {
    Route route;
    const NextHop& first = hops[r.hosts.front().tag];
    route.helo = first.bind_helo.empty() ? me : first.bind_helo;
    if (!first.bind.empty()) route.bind = IpAddr::parse(first.bind);
    if (src) apply_source(route, *src, !first.bind.empty(), !first.bind_helo.empty());
    route.lmtp = first.lmtp;
    route.auth_user = first.auth_user;
    route.auth_pass = first.auth_pass;
    route.auth_allow_cleartext = first.auth_allow_cleartext;
    for (const auto& h : r.hosts) {
        const NextHop& hop = hops[h.tag];
        std::string name = fmt::format("{}{}:{}", hop.lmtp ? "lmtp:" : "", hop.host, hop.port);
        route.mx_hosts.push_back(name);
        route.site += (route.site.empty() ? "" : ",") + name;
        for (const auto& a : h.addrs)
            route.endpoints.push_back(
                Endpoint{a, hop.port, IpAddr::parse(hop.host) ? std::string() : hop.host});
    }
    route.tls = cfg.enable_tls ? TlsMode::opportunistic : TlsMode::off;
    for (const auto& p : cfg.no_tls_hosts)
        for (const auto& h : hops)
            if (host_pattern_match(p, h.host)) route.tls = TlsMode::off;
    for (const auto& p : cfg.force_tls_hosts)
        for (const auto& h : hops)
            if (host_pattern_match(p, h.host)) route.tls = TlsMode::required;
    return route;
}

}  // namespace kasi
