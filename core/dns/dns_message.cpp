#include "core/dns/dns_message.h"

#include <ldns/ldns.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "core/dns/dns_wire.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct PktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

std::string rdf_name(const ldns_rdf* rdf) {
    if (!rdf) return {};
    char* s = ldns_rdf2str(rdf);
    if (!s) return {};
    std::string out = dns_normalize_name(s);
    std::free(s);
    return out;
}

}  // namespace

std::string_view dns_type_name(DnsType t) {
    switch (t) {
        case DnsType::a:
            return "A";
        case DnsType::cname:
            return "CNAME";
        case DnsType::soa:
            return "SOA";
        case DnsType::ptr:
            return "PTR";
        case DnsType::mx:
            return "MX";
        case DnsType::txt:
            return "TXT";
        case DnsType::aaaa:
            return "AAAA";
    }
    return "?";
}

std::optional<DnsType> dns_type_from_name(std::string_view s) {
    for (DnsType t : {DnsType::a, DnsType::cname, DnsType::soa, DnsType::ptr, DnsType::mx,
                      DnsType::txt, DnsType::aaaa})
        if (iequals(s, dns_type_name(t))) return t;
    return std::nullopt;
}

std::string_view dns_status_name(DnsStatus s) {
    switch (s) {
        case DnsStatus::ok:
            return "NOERROR";
        case DnsStatus::nxdomain:
            return "NXDOMAIN";
        case DnsStatus::nodata:
            return "NODATA";
        case DnsStatus::servfail:
            return "SERVFAIL";
        case DnsStatus::refused:
            return "REFUSED";
        case DnsStatus::timeout:
            return "TIMEOUT";
        case DnsStatus::error:
            return "ERROR";
        case DnsStatus::malformed:
            return "MALFORMED";
    }
    return "?";
}

std::string dns_normalize_name(std::string_view name) {
    std::string s = to_lower(name);
    while (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

std::string dns_build_query(const std::string& name, DnsType type, uint16_t id, uint16_t udp_size) {
    ldns_rdf* dname = ldns_dname_new_frm_str((name.empty() ? std::string(".") : name).c_str());
    if (!dname) return {};
    PktPtr pkt(ldns_pkt_query_new(dname, ldns_rr_type(type), LDNS_RR_CLASS_IN, LDNS_RD));
    if (!pkt) return {};
    ldns_pkt_set_id(pkt.get(), id);
    if (udp_size) ldns_pkt_set_edns_udp_size(pkt.get(), udp_size);
    uint8_t* wire = nullptr;
    size_t len = 0;
    if (ldns_pkt2wire(&wire, pkt.get(), &len) != LDNS_STATUS_OK) return {};
    std::string out(reinterpret_cast<char*>(wire), len);
    std::free(wire);
    return out;
}

std::optional<DnsResponse> dns_parse_response(const std::string& wire, uint16_t id,
                                              const std::string& name, DnsType type) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(wire.data());
    DnsWireInfo w = dns_check_wire(bytes, wire.size());
    if (!w.header || w.id != id || !(w.flags & dns_flag_qr)) return std::nullopt;
    auto malformed = [&](std::string why) {
        DnsResponse m;
        m.status = DnsStatus::malformed;
        m.detail = std::move(why);
        m.truncated = w.flags & dns_flag_tc;  // TC: the full answer may still come over TCP
        return m;
    };
    if (!w.question) return malformed(w.error);
    if (w.qname != dns_normalize_name(name) || w.qtype != uint16_t(type) ||
        w.qclass != LDNS_RR_CLASS_IN)
        return std::nullopt;  // an answer to another question: stray or spoofed
    if (!w.ok) return malformed(w.error);
    ldns_pkt* raw = nullptr;
    if (ldns_status st = ldns_wire2pkt(&raw, bytes, wire.size()); st != LDNS_STATUS_OK)
        return malformed(ldns_get_errorstr_by_id(st));
    PktPtr pkt(raw);
    DnsResponse r;
    r.truncated = ldns_pkt_tc(pkt.get());
    r.authenticated = ldns_pkt_ad(pkt.get());
    switch (ldns_pkt_get_rcode(pkt.get())) {
        case LDNS_RCODE_NOERROR:
            r.status = DnsStatus::ok;
            break;
        case LDNS_RCODE_NXDOMAIN:
            r.status = DnsStatus::nxdomain;
            break;
        case LDNS_RCODE_SERVFAIL:
            r.status = DnsStatus::servfail;
            break;
        case LDNS_RCODE_REFUSED:
            r.status = DnsStatus::refused;
            break;
        default:
            r.status = DnsStatus::error;
            break;
    }
    if (ldns_rr_list* auth = ldns_pkt_authority(pkt.get())) {
        for (size_t i = 0; i < ldns_rr_list_rr_count(auth); ++i) {
            ldns_rr* rr = ldns_rr_list_rr(auth, i);
            if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7) continue;
            const ldns_rdf* min = ldns_rr_rdf(rr, 6);
            uint32_t minimum = ldns_rdf_size(min) == 4 ? ldns_rdf2native_int32(min) : 0;
            r.negative_ttl = std::min(minimum, ldns_rr_ttl(rr));
        }
    }
    if (r.status != DnsStatus::ok) return r;
    // Follow the CNAME chain from the question name (bounded), then keep the records of
    // the asked type owned by a name on that chain.
    std::set<std::string> chain{dns_normalize_name(name)};
    ldns_rr_list* ans = ldns_pkt_answer(pkt.get());
    size_t n = ans ? ldns_rr_list_rr_count(ans) : 0;
    for (int round = 0; round < 8; ++round) {
        bool grew = false;
        for (size_t i = 0; i < n; ++i) {
            ldns_rr* rr = ldns_rr_list_rr(ans, i);
            if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || ldns_rr_rd_count(rr) < 1) continue;
            if (!chain.count(rdf_name(ldns_rr_owner(rr)))) continue;
            grew |= chain.insert(rdf_name(ldns_rr_rdf(rr, 0))).second;
        }
        if (!grew) break;
    }
    for (size_t i = 0; i < n; ++i) {
        ldns_rr* rr = ldns_rr_list_rr(ans, i);
        if (ldns_rr_get_type(rr) != ldns_rr_type(type) ||
            ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || !chain.count(rdf_name(ldns_rr_owner(rr))))
            continue;
        DnsRecord rec;
        rec.type = type;
        rec.ttl = ldns_rr_ttl(rr);
        size_t rd = ldns_rr_rd_count(rr);
        bool ok = true;
        switch (type) {
            case DnsType::a:
            case DnsType::aaaa: {
                const ldns_rdf* f = rd ? ldns_rr_rdf(rr, 0) : nullptr;
                size_t want = type == DnsType::a ? 4 : 16;
                if (!f || ldns_rdf_size(f) != want) {
                    ok = false;
                    break;
                }
                rec.addr.v6 = type == DnsType::aaaa;
                std::memcpy(rec.addr.b.data(), ldns_rdf_data(f), want);
                break;
            }
            case DnsType::mx:
                if (rd < 2 || ldns_rdf_size(ldns_rr_rdf(rr, 0)) != 2) {
                    ok = false;
                    break;
                }
                rec.pref = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
                rec.name = rdf_name(ldns_rr_rdf(rr, 1));
                break;
            case DnsType::txt:
                for (size_t k = 0; k < rd; ++k) {
                    const ldns_rdf* f = ldns_rr_rdf(rr, k);
                    const uint8_t* d = ldns_rdf_data(f);
                    size_t len = ldns_rdf_size(f);
                    if (len == 0 || size_t(d[0]) + 1 != len) {
                        ok = false;
                        break;
                    }
                    rec.text.append(reinterpret_cast<const char*>(d + 1), len - 1);
                }
                break;
            case DnsType::ptr:
            case DnsType::cname:
                if (rd < 1) {
                    ok = false;
                    break;
                }
                rec.name = rdf_name(ldns_rr_rdf(rr, 0));
                break;
            case DnsType::soa:
                break;
        }
        if (!ok)
            return malformed(fmt::format("answer record {}: bad {} rdata", i, dns_type_name(type)));
        r.records.push_back(std::move(rec));
    }
    if (r.records.empty()) r.status = DnsStatus::nodata;
    return r;
}

}  // namespace kasi
