// DNS wire format through ldns: building a query and turning a response into typed
// records. Responses are checked against the query (id, QR, and the question's name, type
// and class); a packet that does not match is rejected so that the transport ignores it (a
// spoofed or stray packet never completes a query). A packet that does match but is broken
// anywhere else (dns_wire.h: a record cut short, an rdata length past the end, a pointer
// loop, a bad label, counts that do not match the sections, rdata of the wrong shape) is a
// MALFORMED answer: a failure of the server, never NXDOMAIN or NODATA, so mail is retried.
// So is an answer with the right id whose question cannot be read or is not exactly one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/util/ip.h"

namespace kasi {

enum class DnsType : uint16_t { a = 1, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28 };
std::string_view dns_type_name(DnsType t);
std::optional<DnsType> dns_type_from_name(std::string_view s);  // "MX", case-insensitive

enum class DnsStatus { ok, nxdomain, nodata, servfail, refused, timeout, error, malformed };
std::string_view dns_status_name(DnsStatus s);

struct DnsRecord {
    DnsType type = DnsType::a;
    uint32_t ttl = 0;
    IpAddr addr;        // A, AAAA
    uint16_t pref = 0;  // MX
    std::string name;   // MX exchange, CNAME/PTR target: lower case, no trailing dot
    std::string text;   // TXT: the character-strings concatenated
};

struct DnsResponse {
    DnsStatus status = DnsStatus::error;
    std::vector<DnsRecord> records;  // of the asked type, following CNAMEs from the qname
    uint32_t negative_ttl = 0;       // from the SOA in the authority section (RFC 2308)
    bool truncated = false;
    bool authenticated = false;  // AD bit from a validating resolver
    std::string detail;          // malformed: what is wrong with the packet
    std::string server;          // the resolver ("127.0.0.1:53") that answered, if one did
};

// Lower-case, no trailing dot; "" for the root.
std::string dns_normalize_name(std::string_view name);

// Wire-format query with recursion desired and EDNS0 (udp_size > 0). Empty on a bad name.
std::string dns_build_query(const std::string& name, DnsType type, uint16_t id, uint16_t udp_size);

// Parses `wire` as the answer to (id, name, type). nullopt if it is not an answer to
// exactly that question; status malformed (with `detail`) if it is, but broken. A pure
// function of its arguments (fuzzed with the bytes as input).
std::optional<DnsResponse> dns_parse_response(const std::string& wire, uint16_t id,
                                              const std::string& name, DnsType type);

}  // namespace kasi
