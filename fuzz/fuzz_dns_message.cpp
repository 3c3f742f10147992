// DNS answers as the resolver receives them from the network (core/dns/dns_message.h).
// dns_parse_response only looks inside a packet that answers exactly the question asked,
// so the target reads the packet's own id and question first (with ldns, as the parser
// does) and asks dns_parse_response for that question: every well-formed mutation reaches
// the answer, CNAME and SOA handling. It also asks a fixed question (example.com MX), and
// builds a query for the first bytes taken as a name.
// Properties: the records returned are of the asked type; names are lower case without a
// trailing dot; a query that dns_build_query makes parses back with the same id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/dns/dns_message.h"
#include "core/dns/dns_wire.h"
#include "fuzz/fuzz_check.h"

// After the standard headers: ldns.h defines macros that break them.
#include <ldns/ldns.h>

namespace {

using namespace kasi;

struct PktFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

PktPtr parse(const std::string& wire) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
        LDNS_STATUS_OK)
        return nullptr;
    return PktPtr(raw);
}

void check(const std::optional<DnsResponse>& r, DnsType type) {
    if (!r) return;
    for (const auto& rec : r->records) {
        FUZZ_CHECK(rec.type == type);
        FUZZ_CHECK(rec.name.empty() || rec.name.back() != '.');
        for (char c : rec.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    }
}

void ask_own_question(const std::string& wire) {
    PktPtr pkt = parse(wire);
    if (!pkt) return;
    ldns_rr_list* q = ldns_pkt_question(pkt.get());
    if (!q || ldns_rr_list_rr_count(q) != 1) return;
    ldns_rr* qrr = ldns_rr_list_rr(q, 0);
    char* owner = ldns_rdf2str(ldns_rr_owner(qrr));
    if (!owner) return;
    std::string name(owner);
    std::free(owner);
    for (DnsType t : {DnsType::a, DnsType::aaaa, DnsType::mx, DnsType::txt, DnsType::cname,
                      DnsType::ptr, DnsType::soa})
        if (ldns_rr_get_type(qrr) == ldns_rr_type(t))
            check(dns_parse_response(wire, ldns_pkt_id(pkt.get()), name, t), t);
}

// The structural check names what is wrong with every message it refuses. (What it accepts
// ldns may still refuse: it checks the rdata shape of the types Kasi reads only, and
// dns_parse_response reports ldns's refusal as malformed too.)
void check_wire(const std::string& wire) {
    DnsWireInfo w = dns_check_wire(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    FUZZ_CHECK(w.ok == w.error.empty());
    FUZZ_CHECK(!w.ok || (w.header && w.question));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string wire(reinterpret_cast<const char*>(data), size);
    check_wire(wire);
    ask_own_question(wire);
    uint16_t id = size >= 2 ? uint16_t(data[0] << 8 | data[1]) : 0;
    check(dns_parse_response(wire, id, "example.com", DnsType::mx), DnsType::mx);

    std::string name = wire.substr(0, std::min<size_t>(size, 300));
    (void)dns_normalize_name(name);
    std::string query = dns_build_query(name, DnsType::mx, 4242, 1232);
    if (!query.empty()) {
        PktPtr q = parse(query);
        FUZZ_CHECK(q != nullptr);
        FUZZ_CHECK(ldns_pkt_id(q.get()) == 4242);
    }
    return 0;
}
