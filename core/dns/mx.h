// Where mail for a domain goes: the MX rules of RFC 5321 §5.1 and RFC 7505 on top of the
// resolver.
//   - the domain is converted to its IDNA A-label form (IDNA2008 + UTS #46, libidn2);
//   - MX hosts sorted by preference, equal preferences shuffled, duplicates dropped, and
//     only the first dns.ini mx_host_limit of them kept (10 by default; Postfix caps
//     addresses, smtp_mx_address_limit 5): a domain listing hundreds of MX hosts costs
//     at most 1 + 2 × limit queries, not two per host;
//   - no MX record (NODATA): the domain itself is the implicit MX (its A/AAAA);
//   - a null MX ("0 .") : permanent failure 5.1.10; NXDOMAIN: permanent 5.1.2;
//   - SERVFAIL, timeout or a malformed answer: temporary (4.4.3), so the message is
//     retried; the message names the failure (and for a malformed answer, the server);
//   - each host's addresses by inet_prefer (v4 first, v6 first, or only one family);
//   - addresses of this machine (loopback, unspecified, a local interface) are skipped
//     unless local_mx_ok; if that leaves nothing: 5.4.6 (mail would loop back).
// A domain literal ([192.0.2.1]) is delivered to that address directly.
#pragma once

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/dns/resolver.h"
#include "core/util/ip.h"

namespace kasi {

enum class InetPrefer { v4, v6, only_v4, only_v6 };

struct MxOptions {
    InetPrefer prefer = InetPrefer::v4;
    bool local_mx_ok = false;
};

struct MxHost {
    std::string name;  // "" for a domain literal
    int priority = 0;
    std::vector<IpAddr> addrs;
    bool implicit = false;
    size_t tag = 0;  // resolve_hosts: the index of the host in the caller's list
};

struct MxResult {
    enum class Kind { ok, temporary, permanent } kind = Kind::temporary;
    std::vector<MxHost> hosts;  // ok: at least one with addresses
    std::string ascii_domain;
    std::string enhanced;  // "5.1.10", "4.4.3", ...
    std::string message;
};

// IDNA A-label form of `domain` (lower case, no trailing dot); false on an invalid name.
bool idna_to_ascii(const std::string& domain, std::string& out, std::string& err);

// The PTR query name of an address: d.c.b.a.in-addr.arpa, or the nibbles under ip6.arpa.
std::string reverse_name(const IpAddr& ip);

// True for loopback, unspecified and this machine's interface addresses.
bool is_local_address(const IpAddr& ip);

// The MX hosts to use from an MX answer without null MX records: by preference, equal
// preferences in random order (rng), each name once, at most `limit` of them.
std::vector<MxHost> select_mx_hosts(std::vector<DnsRecord> recs, size_t limit, std::mt19937& rng);

// "DNS MALFORMED (malformed answer from 127.0.0.1:53 for example.net/MX: <why>)" and the
// like: a failed lookup in words, for the delivery's last error.
std::string describe_dns_failure(const DnsResponse& d, const std::string& name, DnsType type);

void resolve_mx(Resolver& r, const std::string& domain, const MxOptions& opt,
                std::function<void(MxResult)> done);

// Addresses for explicit next hops (a get_mx answer, a smarthost): names get their A/AAAA
// by `opt`, addresses are used as they are; hosts without an address are dropped.
void resolve_hosts(Resolver& r, std::vector<MxHost> hosts, const MxOptions& opt,
                   std::function<void(MxResult)> done);

}  // namespace kasi
