#include "core/dns/mx.h"

#include <idn2.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "core/util/clock.h"

namespace kasi {

bool idna_to_ascii(const std::string& domain, std::string& out, std::string& err) {
    std::string d = dns_normalize_name(domain);
    bool ascii = std::all_of(d.begin(), d.end(), [](char c) { return uint8_t(c) < 0x80; });
    if (ascii) {
        out = d;
    } else {
        char* res = nullptr;
        int rc = idn2_to_ascii_8z(d.c_str(), &res, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        if (rc != IDN2_OK) {
            err = idn2_strerror(rc);
            return false;
        }
        out = dns_normalize_name(res);
        idn2_free(res);
    }
    if (out.empty() || out.size() > 253) {
        err = "invalid domain length";
        return false;
    }
    size_t start = 0;
    while (start <= out.size()) {
        size_t dot = out.find('.', start);
        if (dot == std::string::npos) dot = out.size();
        size_t len = dot - start;
        if (len == 0 || len > 63) {
            err = "empty or over-long label";
            return false;
        }
        start = dot + 1;
    }
    return true;
}

namespace {

std::vector<IpAddr> local_interface_addresses() {
    std::vector<IpAddr> v;
    uv_interface_address_t* ifs = nullptr;
    int n = 0;
    if (uv_interface_addresses(&ifs, &n) == 0) {
        for (int i = 0; i < n; ++i)
            v.push_back(IpAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ifs[i].address)));
        uv_free_interface_addresses(ifs, n);
    }
    return v;
}

}  // namespace

std::string reverse_name(const IpAddr& raw) {
    IpAddr ip = raw.unmapped();
    std::string out;
    if (!ip.v6) {
        for (int i = 3; i >= 0; --i) out += fmt::format("{}.", ip.b[size_t(i)]);
        return out + "in-addr.arpa";
    }
    static const char* hex = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        out += hex[ip.b[size_t(i)] & 0xf];
        out += '.';
        out += hex[ip.b[size_t(i)] >> 4];
        out += '.';
    }
    return out + "ip6.arpa";
}

bool is_local_address(const IpAddr& raw) {
    IpAddr ip = raw.unmapped();
    if (ip.is_loopback()) return true;
    if (std::all_of(ip.b.begin(), ip.b.begin() + (ip.v6 ? 16 : 4), [](uint8_t x) { return !x; }))
        return true;  // 0.0.0.0, ::
    static std::mutex m;
    static std::vector<IpAddr> cached;
    static int64_t cached_at = -1;
    std::lock_guard lk(m);
    int64_t now = now_ms();
    if (cached_at < 0 || now - cached_at > 60000) {
        cached = local_interface_addresses();
        cached_at = now;
    }
    for (const auto& a : cached)
        if (a.unmapped() == ip) return true;
    return false;
}

std::vector<MxHost> select_mx_hosts(std::vector<DnsRecord> recs, size_t limit, std::mt19937& rng) {
    std::shuffle(recs.begin(), recs.end(), rng);
    std::stable_sort(recs.begin(), recs.end(),
                     [](const auto& a, const auto& b) { return a.pref < b.pref; });
    std::vector<MxHost> hosts;
    for (const auto& rec : recs) {
        if (hosts.size() >= limit) break;
        bool dup = false;
        for (const auto& h : hosts) dup |= h.name == rec.name;
        if (!dup) hosts.push_back({rec.name, rec.pref, {}, false});
    }
    return hosts;
}

std::string describe_dns_failure(const DnsResponse& d, const std::string& name, DnsType type) {
    if (d.status == DnsStatus::malformed)
        return fmt::format("DNS: malformed answer from {} for {}/{} ({})",
                           d.server.empty() ? std::string("the resolver") : d.server, name,
                           dns_type_name(type), d.detail);
    return fmt::format("DNS {} looking up {} for {}", dns_status_name(d.status),
                       dns_type_name(type), name);
}

namespace {

// One resolution in progress; owned by the callbacks it has outstanding.
struct MxJob : std::enable_shared_from_this<MxJob> {
    Resolver* r;
    MxOptions opt;
    MxResult res;
    std::function<void(MxResult)> done;
    int outstanding = 0;
    bool any_temp = false;
    std::string temp_reason;  // the first temporary failure of an address lookup
    bool any_local_skipped = false;

    void fail(MxResult::Kind k, std::string enh, std::string msg) {
        res.kind = k;
        res.enhanced = std::move(enh);
        res.message = std::move(msg);
        res.hosts.clear();
        done(std::move(res));
    }

    bool want_v4() const { return opt.prefer != InetPrefer::only_v6; }
    bool want_v6() const { return opt.prefer != InetPrefer::only_v4; }

    void on_mx(const DnsResponse& d) {
        switch (d.status) {
            case DnsStatus::nxdomain:
                return fail(MxResult::Kind::permanent, "5.1.2",
                            fmt::format("domain {} does not exist (NXDOMAIN)", res.ascii_domain));
            case DnsStatus::nodata:
                res.hosts.push_back({res.ascii_domain, 0, {}, true});
                return resolve_addresses();
            case DnsStatus::ok:
                break;
            default:
                return fail(MxResult::Kind::temporary, "4.4.3",
                            describe_dns_failure(d, res.ascii_domain, DnsType::mx));
        }
        bool null_mx = false;
        std::vector<DnsRecord> recs;
        for (const auto& rec : d.records) {
            if (rec.name.empty())
                null_mx = true;  // "." exchange
            else
                recs.push_back(rec);
        }
        if (recs.empty() && null_mx)
            return fail(MxResult::Kind::permanent, "5.1.10",
                        fmt::format("domain {} does not accept mail (null MX, RFC 7505)",
                                    res.ascii_domain));
        std::mt19937 rng(std::random_device{}());
        res.hosts = select_mx_hosts(std::move(recs), r->config().mx_host_limit, rng);
        resolve_addresses();
    }

    void resolve_addresses() {
        auto self = shared_from_this();
        // count first: callbacks may run at once (cache hits)
        for (auto& h : res.hosts) {
            if (auto ip = IpAddr::parse(h.name)) {  // an MX naming an address (RFC-wrong)
                h.addrs.push_back(*ip);
                continue;
            }
            outstanding += int(want_v4()) + int(want_v6());
        }
        if (outstanding == 0) return finish();
        for (size_t i = 0; i < res.hosts.size(); ++i) {
            if (IpAddr::parse(res.hosts[i].name)) continue;
            std::string name = res.hosts[i].name;
            if (want_v4())
                r->query(name, DnsType::a,
                         [self, i](const DnsResponse& d) { self->on_addr(i, DnsType::a, d); });
            if (want_v6())
                r->query(name, DnsType::aaaa,
                         [self, i](const DnsResponse& d) { self->on_addr(i, DnsType::aaaa, d); });
        }
    }

    void on_addr(size_t i, DnsType type, const DnsResponse& d) {
        if (d.status == DnsStatus::ok) {
            for (const auto& rec : d.records) res.hosts[i].addrs.push_back(rec.addr);
        } else if (d.status != DnsStatus::nxdomain && d.status != DnsStatus::nodata) {
            if (!any_temp) temp_reason = describe_dns_failure(d, res.hosts[i].name, type);
            any_temp = true;
        }
        if (--outstanding == 0) finish();
    }

    void finish() {
        bool v6_first = opt.prefer == InetPrefer::v6;
        std::vector<MxHost> kept;
        for (auto& h : res.hosts) {
            std::stable_sort(h.addrs.begin(), h.addrs.end(), [&](const IpAddr& a, const IpAddr& b) {
                return v6_first ? (a.v6 && !b.v6) : (!a.v6 && b.v6);
            });
            std::vector<IpAddr> addrs;
            for (const auto& a : h.addrs) {
                if (std::find(addrs.begin(), addrs.end(), a) != addrs.end()) continue;
                if (!opt.local_mx_ok && is_local_address(a)) {
                    any_local_skipped = true;
                    continue;
                }
                addrs.push_back(a);
            }
            h.addrs = std::move(addrs);
            if (!h.addrs.empty()) kept.push_back(std::move(h));
        }
        if (!kept.empty()) {
            res.hosts = std::move(kept);
            res.kind = MxResult::Kind::ok;
            res.enhanced.clear();
            res.message.clear();
            return done(std::move(res));
        }
        if (any_temp)
            return fail(MxResult::Kind::temporary, "4.4.3",
                        fmt::format("DNS failure resolving the MX hosts of {}: {}",
                                    res.ascii_domain, temp_reason));
        if (any_local_skipped)
            return fail(MxResult::Kind::permanent, "5.4.6",
                        fmt::format("the MX of {} points to this host (mail would loop back)",
                                    res.ascii_domain));
        return fail(MxResult::Kind::permanent, "5.4.4",
                    fmt::format("no address for any mail host of {}", res.ascii_domain));
    }
};

}  // namespace

void resolve_hosts(Resolver& r, std::vector<MxHost> hosts, const MxOptions& opt,
                   std::function<void(MxResult)> done) {
    auto job = std::make_shared<MxJob>();
    job->r = &r;
    job->opt = opt;
    job->done = std::move(done);
    job->res.ascii_domain = hosts.empty() ? std::string() : hosts.front().name;
    for (size_t i = 0; i < hosts.size(); ++i) hosts[i].tag = i;
    job->res.hosts = std::move(hosts);
    job->resolve_addresses();
}

void resolve_mx(Resolver& r, const std::string& domain, const MxOptions& opt,
                std::function<void(MxResult)> done) {
    auto job = std::make_shared<MxJob>();
    job->r = &r;
    job->opt = opt;
    job->done = std::move(done);
    if (domain.size() > 2 && domain.front() == '[' && domain.back() == ']') {
        std::string lit = domain.substr(1, domain.size() - 2);
        if (lit.size() > 5 && (lit.compare(0, 5, "IPv6:") == 0 || lit.compare(0, 5, "ipv6:") == 0))
            lit = lit.substr(5);
        auto ip = IpAddr::parse(lit);
        job->res.ascii_domain = domain;
        if (!ip)
            return job->fail(MxResult::Kind::permanent, "5.1.2",
                             fmt::format("bad address literal {}", domain));
        job->res.hosts.push_back({"", 0, {*ip}, true});
        return job->finish();
    }
    std::string err;
    if (!idna_to_ascii(domain, job->res.ascii_domain, err))
        return job->fail(MxResult::Kind::permanent, "5.1.2",
                         fmt::format("invalid domain {}: {}", domain, err));
    std::string d = job->res.ascii_domain;
    r.query(d, DnsType::mx, [job](const DnsResponse& resp) { job->on_mx(resp); });
}

}  // namespace kasi
