// DNS wire parsing against packets built with ldns (answers, CNAME chains, TXT, null MX,
// negative TTL from the SOA; wrong id, wrong question, garbage), hand-built malformed
// answers (pointer loops, lengths past the end, bad labels, counts that do not match,
// rdata of the wrong shape), the answer cache, and the choice of MX hosts.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/dns/dns_cache.h"
#include "core/dns/dns_message.h"
#include "core/dns/dns_wire.h"
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
    CHECK_FALSE(dns_parse_response(w, 10, "a.test", DnsType::a));    // wrong id
    CHECK_FALSE(dns_parse_response(w, 9, "b.test", DnsType::a));     // wrong name
    CHECK_FALSE(dns_parse_response(w, 9, "a.test", DnsType::aaaa));  // wrong type
    // cut inside the question: the right id, but not readable: malformed, not ignored
    CHECK(dns_parse_response(w.substr(0, 20), 9, "a.test", DnsType::a)->status ==
          DnsStatus::malformed);
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

// Hand-built packets: the answer to "d.test MX" (id 77) with whatever follows.
namespace {

struct Wire {
    std::string b;
    Wire& u8(int v) {
        b.push_back(char(v & 0xff));
        return *this;
    }
    Wire& u16(int v) { return u8(v >> 8).u8(v); }
    Wire& u32(uint32_t v) { return u16(int(v >> 16)).u16(int(v & 0xffff)); }
    Wire& name(const std::string& dotted) {  // uncompressed, root-terminated
        size_t start = 0;
        while (start < dotted.size()) {
            size_t dot = dotted.find('.', start);
            if (dot == std::string::npos) dot = dotted.size();
            u8(int(dot - start));
            b += dotted.substr(start, dot - start);
            start = dot + 1;
        }
        return u8(0);
    }
    Wire& raw(const std::string& s) {
        b += s;
        return *this;
    }
};

// Header + question (the qname "d.test" sits at offset 12: a pointer to it is 0xc00c).
Wire answer_head(int an, int ns = 0, int ar = 0, int flags = 0x8180, int qd = 1,
                 const char* qname = "d.test", int qtype = 15, int qclass = 1) {
    Wire w;
    w.u16(77).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
    if (qd) w.name(qname).u16(qtype).u16(qclass);
    return w;
}

std::string mx_rdata(int pref, const std::string& exchange) {
    Wire r;
    r.u16(pref).name(exchange);
    return r.b;
}

// One record owned by the question's name (a pointer), with the given rdata.
Wire& rr(Wire& w, int type, const std::string& rdata, int rdlen = -1) {
    w.u16(0xc00c).u16(type).u16(1).u32(300);
    w.u16(rdlen < 0 ? int(rdata.size()) : rdlen);
    return w.raw(rdata);
}

DnsResponse parse77(const std::string& wire) {
    auto r = dns_parse_response(wire, 77, "d.test", DnsType::mx);
    REQUIRE(r);
    return *r;
}

}  // namespace

TEST_CASE("a hand-built well-formed answer parses (the baseline of the malformed cases)") {
    Wire w = answer_head(2);
    rr(w, 15, mx_rdata(10, "mx1.d.test"));
    w.u16(0xc00c).u16(15).u16(1).u32(300).u16(4).u16(20).u16(0xc00c);  // 20 d.test (compressed)
    auto r = parse77(w.b);
    CHECK(r.status == DnsStatus::ok);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[0].name == "mx1.d.test");
    CHECK(r.records[1].name == "d.test");
    CHECK(dns_check_wire(reinterpret_cast<const uint8_t*>(w.b.data()), w.b.size()).ok);
}

TEST_CASE("malformed answers to the right question are MALFORMED, never NXDOMAIN/NODATA") {
    struct Case {
        const char* what;
        std::string wire;
        const char* detail;  // a word of the reason
    };
    std::vector<Case> cases;
    {  // the owner name of the answer points at itself
        Wire w = answer_head(1);
        w.u16(0xc000 | int(w.b.size())).u16(15).u16(1).u32(300).u16(0);
        cases.push_back({"self pointer", w.b, "pointer"});
    }
    {  // two names pointing at each other: each jump must go further back
        Wire w = answer_head(1);
        size_t at = w.b.size();
        w.u8(1).raw("x").u16(0xc000 | int(at)).u16(15).u16(1).u32(300).u16(0);
        cases.push_back({"pointer loop through a label", w.b, "pointer"});
    }
    {  // a pointer past the end of the packet
        Wire w = answer_head(1);
        w.u16(0xcfff).u16(15).u16(1).u32(300).u16(0);
        cases.push_back({"forward pointer", w.b, "pointer"});
    }
    {  // rdata length past the end of the packet
        Wire w = answer_head(1);
        rr(w, 15, mx_rdata(10, "mx.d.test"), 200);
        cases.push_back({"rdlength past the end", w.b, "past the end"});
    }
    {  // a record cut in its fixed fields
        Wire w = answer_head(1);
        w.u16(0xc00c).u16(15).u16(1);
        cases.push_back({"record cut short", w.b, "past the end"});
    }
    {  // MX rdata holding only the preference (ldns would give a record without exchange)
        Wire w = answer_head(1);
        rr(w, 15, std::string("\0\x0a", 2));
        cases.push_back({"MX rdata without exchange", w.b, "MX rdata"});
    }
    {  // MX exchange running past its rdata into the next bytes
        Wire w = answer_head(1);
        std::string rd = mx_rdata(10, "mx.d.test");
        rr(w, 15, rd, int(rd.size()) - 3);
        cases.push_back({"MX exchange past its rdata", w.b, ""});
    }
    {  // a label of the reserved type 0x40
        Wire w = answer_head(1);
        rr(w, 15, std::string("\0\x0a\x41x\0", 5));
        cases.push_back({"bad label type", w.b, "label type"});
    }
    {  // a label running past the end of the packet
        Wire w = answer_head(1);
        rr(w, 15, std::string("\0\x0a\x3fxyz", 6));
        cases.push_back({"label past the end", w.b, "past the end"});
    }
    {  // the header counts two answers, the packet holds one
        Wire w = answer_head(2);
        rr(w, 15, mx_rdata(10, "mx.d.test"));
        cases.push_back({"count larger than the section", w.b, "answer record 1"});
    }
    {  // the header counts no answer, the packet holds one
        Wire w = answer_head(0);
        rr(w, 15, mx_rdata(10, "mx.d.test"));
        cases.push_back({"bytes after the last record", w.b, "after the last record"});
    }
    {  // an A record of 5 octets in the additional section
        Wire w = answer_head(1, 0, 1);
        rr(w, 15, mx_rdata(10, "mx.d.test"));
        w.name("mx.d.test").u16(1).u16(1).u32(300).u16(5).raw("abcde");
        cases.push_back({"A rdata of 5 octets", w.b, "A rdata"});
    }
    {  // NXDOMAIN whose SOA is cut: not a negative answer to cache
        Wire w = answer_head(0, 1, 0, 0x8183);
        w.name("test").u16(6).u16(1).u32(300).u16(3).raw("\x02ns");
        cases.push_back({"NXDOMAIN with a broken SOA", w.b, "authority record 0"});
    }
    {  // no question at all, right id
        Wire w = answer_head(0, 0, 0, 0x8180, 0);
        cases.push_back({"no question", w.b, "0 questions"});
    }
    {  // a question name that loops
        Wire w;
        w.u16(77).u16(0x8180).u16(1).u16(0).u16(0).u16(0).u16(0xc00c).u16(15).u16(1);
        cases.push_back({"question pointer loop", w.b, "pointer"});
    }
    for (const auto& c : cases) {
        INFO(c.what);
        auto r = parse77(c.wire);
        CHECK(r.status == DnsStatus::malformed);
        CHECK(r.records.empty());
        CHECK(r.detail.find(c.detail) != std::string::npos);
        CHECK_FALSE(r.truncated);
        auto w = dns_check_wire(reinterpret_cast<const uint8_t*>(c.wire.data()), c.wire.size());
        CHECK_FALSE(w.ok);
        CHECK_FALSE(w.error.empty());
        // never cached: a later good answer is asked for again
        DnsCache cache(10, 3600, 3600);
        cache.put("d.test", DnsType::mx, r, 0);
        CHECK_FALSE(cache.get("d.test", DnsType::mx, 1));
    }
    CHECK(dns_status_name(DnsStatus::malformed) == "MALFORMED");
}

TEST_CASE("a malformed answer with TC=1 still asks for TCP; other questions are ignored") {
    Wire tc = answer_head(3, 0, 0, 0x8380);  // TC: the sections were cut
    rr(tc, 15, mx_rdata(10, "mx.d.test"));
    auto r = parse77(tc.b);
    CHECK(r.status == DnsStatus::malformed);
    CHECK(r.truncated);
    // right id, but a question for another name, type or class: stray or spoofed
    for (Wire w :
         {answer_head(0, 0, 0, 0x8180, 1, "e.test"), answer_head(0, 0, 0, 0x8180, 1, "d.test", 1),
          answer_head(0, 0, 0, 0x8180, 1, "d.test", 15, 3)}) {
        rr(w, 15, "\x01");  // a broken record too: still not ours
        w.b[7] = 1;         // ANCOUNT 1
        CHECK_FALSE(dns_parse_response(w.b, 77, "d.test", DnsType::mx));
    }
    // a query (QR clear) or another id: ignored whatever follows
    Wire q = answer_head(1, 0, 0, 0x0100);
    CHECK_FALSE(dns_parse_response(q.b, 77, "d.test", DnsType::mx));
    CHECK_FALSE(dns_parse_response(answer_head(0).b, 78, "d.test", DnsType::mx));
    // the question's case does not matter (0x20 mixing)
    CHECK(parse77(answer_head(0, 0, 0, 0x8180, 1, "D.Test").b).status == DnsStatus::nodata);
}

TEST_CASE("MX selection: lowest preferences first, ties shuffled, names once, capped") {
    std::vector<DnsRecord> recs;
    for (int i = 0; i < 400; ++i) {
        DnsRecord r;
        r.type = DnsType::mx;
        r.pref = uint16_t(400 - i);  // 400 .. 1
        r.name = "mx" + std::to_string(i) + ".big.test";
        recs.push_back(r);
    }
    recs.push_back(recs.back());  // a duplicate of the best one (pref 1)
    std::mt19937 rng(1);
    auto hosts = select_mx_hosts(recs, 10, rng);
    REQUIRE(hosts.size() == 10);
    for (int i = 0; i < 10; ++i) {
        CHECK(hosts[size_t(i)].priority == i + 1);
        CHECK(hosts[size_t(i)].name == "mx" + std::to_string(399 - i) + ".big.test");
    }
    CHECK(select_mx_hosts(recs, 1000, rng).size() == 400);
    // equal preferences: every one of them comes first sometimes, and all stay before
    // the worse preference
    std::vector<DnsRecord> ties;
    for (const char* n : {"a.test", "b.test", "c.test"}) {
        DnsRecord r;
        r.pref = 10;
        r.name = n;
        ties.push_back(r);
    }
    DnsRecord worse;
    worse.pref = 20;
    worse.name = "z.test";
    ties.insert(ties.begin(), worse);
    std::set<std::string> firsts;
    for (int i = 0; i < 60; ++i) {
        auto h = select_mx_hosts(ties, 10, rng);
        REQUIRE(h.size() == 4);
        CHECK(h[3].name == "z.test");
        firsts.insert(h[0].name);
    }
    CHECK(firsts.size() == 3);
    auto two = select_mx_hosts(ties, 2, rng);
    REQUIRE(two.size() == 2);
    CHECK(two[0].priority == 10);
    CHECK(two[1].priority == 10);
}
