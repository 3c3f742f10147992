#include "core/ctl/ctl_resolve.h"

#include <uv.h>

#include <cstdio>

#include <fmt/format.h>

#include "core/config/config_dir.h"
#include "core/dns/dns_config.h"
#include "core/dns/mx.h"
#include "core/dns/resolver.h"

namespace kasi {

namespace {

std::string record_text(const DnsRecord& r) {
    switch (r.type) {
        case DnsType::a:
        case DnsType::aaaa:
            return r.addr.str();
        case DnsType::mx:
            return fmt::format("{} {}", r.pref, r.name.empty() ? "." : r.name);
        case DnsType::txt:
            return "\"" + r.text + "\"";
        default:
            return r.name;
    }
}

void print_stats(Resolver& r) {
    const auto& s = r.stats();
    std::printf(
        "stats queries=%llu cache_hits=%llu udp_sent=%llu tcp_fallbacks=%llu "
        "timeouts=%llu ignored_packets=%llu\n",
        (unsigned long long)s.queries, (unsigned long long)s.cache_hits,
        (unsigned long long)s.udp_sent, (unsigned long long)s.tcp_fallbacks,
        (unsigned long long)s.timeouts, (unsigned long long)s.ignored_packets);
}

}  // namespace

int ctl_resolve(const std::string& dir, const std::vector<std::string>& args) {
    std::vector<std::string> words;
    bool again = false, local_ok = false;
    MxOptions opt;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--again") {
            again = true;
        } else if (args[i] == "--local-mx-ok") {
            local_ok = true;
        } else if (args[i] == "--prefer") {
            const std::string p = i + 1 < args.size() ? args[++i] : "";
            if (p != "v4" && p != "v6" && p != "only_v4" && p != "only_v6") {
                std::fprintf(stderr,
                             "kasictl resolve: --prefer needs v4, v6, only_v4 or only_v6\n");
                return 2;
            }
            opt.prefer = p == "v6"        ? InetPrefer::v6
                         : p == "only_v4" ? InetPrefer::only_v4
                         : p == "only_v6" ? InetPrefer::only_v6
                                          : InetPrefer::v4;
        } else if (args[i].size() > 1 && args[i][0] == '-') {
            std::fprintf(stderr, "kasictl resolve: unknown option %s\n", args[i].c_str());
            return 2;
        } else {
            words.push_back(args[i]);
        }
    }
    opt.local_mx_ok = local_ok;
    if (words.size() < 2 || (words[0] == "route" && words.size() != 2)) {
        std::fprintf(stderr, "usage: kasictl -c DIR resolve TYPE NAME... | route DOMAIN\n");
        return 2;
    }
    Diagnostics d;
    ConfigDir cfg(dir + "/config");
    DnsConfig dc = load_dns_config(cfg, d);
    for (const auto& w : d.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (!d.ok()) {
        for (const auto& e : d.errors) std::fprintf(stderr, "%s\n", e.c_str());
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 0;
    {
        Resolver r(&loop, dc);
        if (words[0] == "route") {
            resolve_mx(r, words[1], opt, [&](MxResult m) {
                if (m.kind != MxResult::Kind::ok) {
                    std::printf("%s %s %s\n",
                                m.kind == MxResult::Kind::permanent ? "permanent" : "temporary",
                                m.enhanced.c_str(), m.message.c_str());
                    rc = 3;
                    return;
                }
                std::printf("ok %s\n", m.ascii_domain.c_str());
                for (const auto& h : m.hosts) {
                    std::string addrs;
                    for (const auto& a : h.addrs) addrs += (addrs.empty() ? "" : ",") + a.str();
                    std::printf("%d %s%s %s\n", h.priority, h.name.empty() ? "-" : h.name.c_str(),
                                h.implicit ? " (implicit)" : "", addrs.c_str());
                }
            });
            uv_run(&loop, UV_RUN_DEFAULT);
        } else {
            auto type = dns_type_from_name(words[0]);
            if (!type) {
                std::fprintf(stderr, "kasictl: unknown record type %s\n", words[0].c_str());
                rc = 2;
            } else {
                for (int round = 0; round < (again ? 2 : 1); ++round) {
                    for (size_t i = 1; i < words.size(); ++i) {
                        std::string name = words[i];
                        r.query(name, *type, [name](const DnsResponse& resp) {
                            std::printf("%s %s%s\n", name.c_str(),
                                        std::string(dns_status_name(resp.status)).c_str(),
                                        resp.authenticated ? " AD" : "");
                            for (const auto& rec : resp.records)
                                std::printf("  %s %s ttl=%u\n",
                                            std::string(dns_type_name(rec.type)).c_str(),
                                            record_text(rec).c_str(), rec.ttl);
                        });
                    }
                    uv_run(&loop, UV_RUN_DEFAULT);
                }
            }
        }
        print_stats(r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

}  // namespace kasi
