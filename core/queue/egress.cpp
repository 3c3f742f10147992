#include "core/queue/egress.h"

#include <fmt/format.h>

#include <cstdio>
#include <tuple>

#include "core/util/strings.h"

namespace kasi {

const EgressSource* EgressConfig::source(std::string_view name) const {
    for (const auto& s : sources)
        if (s.name == name) return &s;
    return nullptr;
}

const EgressPool* EgressConfig::pool(std::string_view name) const {
    for (const auto& p : pools)
        if (p.name == name) return &p;
    return nullptr;
}

const EgressSource* EgressConfig::pick(std::string_view pool_name, uint64_t ticket) const {
    if (sources.empty()) return nullptr;
    const EgressPool* p = pool(pool_name.empty() ? "default" : pool_name);
    if (!p) p = pool("default");
    if (!p || p->members.empty()) return &sources[ticket % sources.size()];
    uint64_t total = 0;
    for (const auto& [_, w] : p->members) total += uint64_t(w);
    uint64_t at = ticket % total;
    for (const auto& [name, w] : p->members) {
        if (at < uint64_t(w)) return source(name);
        at -= uint64_t(w);
    }
    return source(p->members.back().first);
}

EgressConfig load_egress_config(const ConfigDir& cfg, Diagnostics& d) {
    EgressConfig e;
    Ini ini = cfg.ini("egress.ini", d);
    std::vector<std::tuple<std::string, std::string, int>> refs;  // (pool, source, line)
    for (const auto& sec : ini.sections) {
        if (sec.name == "main") {
            if (!sec.entries.empty())
                d.error(ini.path, sec.entries.front().line,
                        "egress.ini: put settings in [source:NAME] or [pool:NAME] sections");
            continue;
        }
        if (sec.name.rfind("source:", 0) == 0) {
            EgressSource s;
            s.name = sec.name.substr(7);
            for (const auto& en : sec.entries) {
                std::string v = en.value.value_or("");
                if (en.key == "address") {
                    s.address = IpAddr::parse(v);
                    if (!s.address)
                        d.error(ini.path, en.line,
                                fmt::format("[{}] address '{}' is not an IP address", sec.name, v));
                } else if (en.key == "ehlo") {
                    s.ehlo = v;
                } else if (en.key == "region") {
                    s.region = v;
                } else if (en.key == "warmup_start") {
                    int y = 0, m = 0, dd = 0;
                    char tail = 0;
                    if (std::sscanf(v.c_str(), "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3 || m < 1 ||
                        m > 12 || dd < 1 || dd > 31)
                        d.error(ini.path, en.line,
                                fmt::format("[{}] warmup_start '{}' is not a date (YYYY-MM-DD)",
                                            sec.name, v));
                    s.warmup_start = v;
                } else {
                    d.warn(ini.path, en.line,
                           fmt::format("[{}] unknown key '{}' (address, ehlo, region, "
                                       "warmup_start)",
                                       sec.name, en.key));
                }
            }
            if (s.name.empty() || e.source(s.name))
                d.error(ini.path, sec.line,
                        fmt::format("[{}]: source names must be unique and not empty", sec.name));
            e.sources.push_back(std::move(s));
        } else if (sec.name.rfind("pool:", 0) == 0) {
            EgressPool p;
            p.name = sec.name.substr(5);
            for (const auto& en : sec.entries) {
                unsigned long long w = 1;
                if (en.value && !parse_u64(*en.value, w)) w = 0;
                if (w == 0 || w > 1000000) {
                    d.error(
                        ini.path, en.line,
                        fmt::format("[{}] {}: the weight must be 1 to 1000000", sec.name, en.key));
                    continue;
                }
                p.members.emplace_back(en.key, int(w));
                refs.emplace_back(p.name, en.key, en.line);
            }
            e.pools.push_back(std::move(p));
        } else {
            d.warn(ini.path, sec.line,
                   fmt::format("unknown section [{}] ([source:NAME], [pool:NAME])", sec.name));
        }
    }
    for (const auto& [pool, name, line] : refs)
        if (!e.source(name))
            d.error(ini.path, line,
                    fmt::format("[pool:{}] names source '{}', which is not defined", pool, name));
    return e;
}

}  // namespace kasi
