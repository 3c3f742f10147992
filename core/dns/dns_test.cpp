// DNS wire parsing against packets built with ldns (answers, CNAME chains, TXT, null MX,
// negative TTL from the SOA; wrong id, wrong question, garbage), and the answer cache.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/dns/dns_cache.h"
#include "core/dns/dns_message.h"
#include "core/dns/mx.h"

// after the C++ headers: ldns's common.h redefines bool/true/false for C
#include <ldns/ldns.h>

using namespace kasi;

namespace {

std::string response(uint16_t id, const char* qname, ldns_rr_type qtype,
                     const std::vector<const char*>& answers,
                     ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR, const char* authority = nullptr) {
    ldns_pkt* p =
        ldns_pkt_query_new(ldns_dname_new_frm_str(qname), qtype, LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(p, id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_rcode(p, uint8_t(rcode));
    for (const char* a : answers) {
        ldns_rr* rr = nullptr;
        REQUIRE(ldns_rr_new_frm_str(&rr, a, 300, nullptr, nullptr) == LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    if (authority) {
        ldns_rr* rr = nullptr;
        REQUIRE(ldns_rr_new_frm_str(&rr, authority, 300, nullptr, nullptr) == LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
    }
    uint8_t* wire = nullptr;
    size_t len = 0;
    REQUIRE(ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK);
    std::string out(reinterpret_cast<char*>(wire), len);
    std::free(wire);
    ldns_pkt_free(p);
    return out;
}

}  // namespace

TEST_CASE("a query round-trips through our parser's checks") {
    std::string q = dns_build_query("Example.TEST", DnsType::mx, 4242, 1232);
    REQUIRE(q.size() > 12);
    CHECK(uint8_t(q[0]) == (4242 >> 8));
    CHECK(uint8_t(q[1]) == (4242 & 0xff));
    CHECK((uint8_t(q[2]) & 0x01) == 1);  // RD
    CHECK(uint8_t(q[11]) == 1);          // ARCOUNT: the EDNS0 OPT record
    std::string plain = dns_build_query("example.test", DnsType::a, 1, 0);
    CHECK(uint8_t(plain[11]) == 0);
}

TEST_CASE("answers, CNAME chains and the asked type only") {
    auto w = response(7, "alias.test.", LDNS_RR_TYPE_A,
                      {"alias.test. 60 IN CNAME mid.test.", "mid.test. 60 IN CNAME end.test.",
                       "end.test. 30 IN A 192.0.2.7", "unrelated.test. 30 IN A 192.0.2.99"});
    auto r = dns_parse_response(w, 7, "ALIAS.test.", DnsType::a);
    REQUIRE(r);
    CHECK(r->status == DnsStatus::ok);
    REQUIRE(r->records.size() == 1);
    CHECK(r->records[0].addr.str() == "192.0.2.7");
    CHECK(r->records[0].ttl == 30);
}

TEST_CASE("MX, null MX and TXT records") {
    auto w = response(1, "d.test.", LDNS_RR_TYPE_MX,
                      {"d.test. 300 IN MX 10 Mx1.D.test.", "d.test. 300 IN MX 0 ."});
    auto r = dns_parse_response(w, 1, "d.test", DnsType::mx);
    REQUIRE(r);
    REQUIRE(r->records.size() == 2);
    CHECK(r->records[0].pref == 10);
    CHECK(r->records[0].name == "mx1.d.test");
    CHECK(r->records[1].name.empty());
    auto t =
        response(2, "t.test.", LDNS_RR_TYPE_TXT, {"t.test. 300 IN TXT \"v=DKIM1; \" \"p=abc\""});
    auto rt = dns_parse_response(t, 2, "t.test", DnsType::txt);
    REQUIRE(rt);
    REQUIRE(rt->records.size() == 1);
    CHECK(rt->records[0].text == "v=DKIM1; p=abc");
}

TEST_CASE("negative answers carry the SOA's negative TTL") {
    auto w = response(3, "no.test.", LDNS_RR_TYPE_A, {}, LDNS_RCODE_NXDOMAIN,
                      "test. 900 IN SOA ns.test. h.test. 1 3600 600 86400 120");
    auto r = dns_parse_response(w, 3, "no.test", DnsType::a);
    REQUIRE(r);
    CHECK(r->status == DnsStatus::nxdomain);
    CHECK(r->negative_ttl == 120);
    auto n = response(4, "t.test.", LDNS_RR_TYPE_A, {});
    CHECK(dns_parse_response(n, 4, "t.test", DnsType::a)->status == DnsStatus::nodata);
}

TEST_CASE("packets that do not answer the question are rejected") {
    auto w = response(9, "a.test.", LDNS_RR_TYPE_A, {"a.test. 1 IN A 192.0.2.1"});
    CHECK_FALSE(dns_parse_response(w, 10, "a.test", DnsType::a));               // wrong id
    CHECK_FALSE(dns_parse_response(w, 9, "b.test", DnsType::a));                // wrong name
    CHECK_FALSE(dns_parse_response(w, 9, "a.test", DnsType::aaaa));             // wrong type
    CHECK_FALSE(dns_parse_response(w.substr(0, 20), 9, "a.test", DnsType::a));  // truncated
    CHECK_FALSE(dns_parse_response("garbage-garbage", 9, "a.test", DnsType::a));
    std::string query = dns_build_query("a.test", DnsType::a, 9, 0);
    CHECK_FALSE(dns_parse_response(query, 9, "a.test", DnsType::a));  // a query, not an answer
}

TEST_CASE("cache: TTLs age, negative entries expire, LRU bound") {
    DnsCache c(2, 3600, 60);
    DnsResponse ok;
    ok.status = DnsStatus::ok;
    DnsRecord rec;
    rec.ttl = 100;
    ok.records.push_back(rec);
    c.put("a", DnsType::a, ok, 0);
    auto g = c.get("a", DnsType::a, 40000);
    REQUIRE(g);
    CHECK(g->records[0].ttl == 60);
    CHECK_FALSE(c.get("a", DnsType::a, 100000));
    DnsResponse nx;
    nx.status = DnsStatus::nxdomain;
    nx.negative_ttl = 3000;  // capped at 60
    c.put("n", DnsType::a, nx, 0);
    CHECK(c.get("n", DnsType::a, 59000));
    CHECK_FALSE(c.get("n", DnsType::a, 61000));
    DnsResponse sf;
    sf.status = DnsStatus::servfail;
    c.put("s", DnsType::a, sf, 0);
    CHECK_FALSE(c.get("s", DnsType::a, 1));
    c.put("x", DnsType::a, ok, 0);
    c.put("y", DnsType::a, ok, 0);
    c.put("z", DnsType::a, ok, 0);
    CHECK(c.size() == 2);
    CHECK_FALSE(c.get("x", DnsType::a, 1));
}

TEST_CASE("IDNA A-labels and invalid names") {
    std::string out, err;
    REQUIRE(idna_to_ascii("Bücher.Example.", out, err));
    CHECK(out == "xn--bcher-kva.example");
    REQUIRE(idna_to_ascii("EXAMPLE.com", out, err));
    CHECK(out == "example.com");
    CHECK_FALSE(idna_to_ascii("a..b", out, err));
    CHECK_FALSE(idna_to_ascii(std::string(64, 'a') + ".com", out, err));
}
