// PROXY protocol v1 and v2 headers: valid forms, partial input, and malformed input.
#include <catch2/catch.hpp>

#include <string>

#include "core/smtp/proxy_protocol.h"

using namespace kasi;

namespace {
ProxyParse parse(const std::string& s, ProxyHeader& h, size_t& used) {
    std::string err;
    return parse_proxy_header(s, h, used, err);
}
std::string v2(unsigned char cmd, unsigned char fam, const std::string& addr) {
    std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
    s += char(0x20 | cmd);
    s += char(fam);
    s += char(addr.size() >> 8);
    s += char(addr.size() & 0xff);
    return s + addr;
}
}  // namespace

TEST_CASE("PROXY v1 TCP4 and TCP6 with trailing SMTP bytes") {
    ProxyHeader h;
    size_t used;
    std::string in = "PROXY TCP4 203.0.113.9 192.0.2.1 56324 25\r\nEHLO x\r\n";
    REQUIRE(parse(in, h, used) == ProxyParse::ok);
    CHECK(used == in.find("EHLO"));
    CHECK(h.has_addresses);
    CHECK(h.src.str() == "203.0.113.9");
    CHECK(h.dst.str() == "192.0.2.1");
    CHECK(h.src_port == 56324);
    CHECK(h.dst_port == 25);
    REQUIRE(parse("PROXY TCP6 2001:db8::9 2001:db8::1 1 587\r\n", h, used) == ProxyParse::ok);
    CHECK(h.src.str() == "2001:db8::9");
    REQUIRE(parse("PROXY UNKNOWN\r\n", h, used) == ProxyParse::ok);
    CHECK_FALSE(h.has_addresses);
}

TEST_CASE("PROXY v1 partial and malformed") {
    ProxyHeader h;
    size_t used;
    CHECK(parse("PRO", h, used) == ProxyParse::need_more);
    CHECK(parse("PROXY TCP4 1.2.3.4", h, used) == ProxyParse::need_more);
    CHECK(parse("EHLO x\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", h, used) == ProxyParse::error);
    CHECK(parse("PROXY " + std::string(200, 'x'), h, used) == ProxyParse::error);
}

TEST_CASE("PROXY v2 binary headers") {
    ProxyHeader h;
    size_t used;
    std::string a4 = {char(203), 0, 113, 9, char(192), 0, 2, 1, char(0xdc), 0x04, 0, 25};
    std::string in = v2(1, 0x11, a4) + "EHLO";
    REQUIRE(parse(in, h, used) == ProxyParse::ok);
    CHECK(used == 28);
    CHECK(h.src.str() == "203.0.113.9");
    CHECK(h.src_port == 0xdc04);
    CHECK(h.dst_port == 25);
    std::string a6(36, '\0');
    a6[0] = 0x20;
    a6[1] = 0x01;
    a6[2] = 0x0d;
    a6[3] = char(0xb8);
    a6[15] = 9;
    a6[16] = 0x20;
    a6[17] = 0x01;
    a6[18] = 0x0d;
    a6[19] = char(0xb8);
    a6[31] = 1;
    a6[35] = 25;
    REQUIRE(parse(v2(1, 0x21, a6 + "TLVs"), h, used) == ProxyParse::ok);
    CHECK(h.src.str() == "2001:db8::9");
    CHECK(used == 16 + 40);
    REQUIRE(parse(v2(0, 0x00, ""), h, used) == ProxyParse::ok);  // LOCAL
    CHECK_FALSE(h.has_addresses);
    CHECK(parse(v2(1, 0x11, a4).substr(0, 20), h, used) == ProxyParse::need_more);
    CHECK(parse(std::string("\r\n\r\n\0\r", 6), h, used) == ProxyParse::need_more);
    CHECK(parse(std::string("\r\n\r\nX", 5), h, used) == ProxyParse::error);
    CHECK(parse(v2(1, 0x11, a4.substr(0, 8)), h, used) == ProxyParse::error);  // too short
    std::string bad = v2(1, 0x11, a4);
    bad[12] = 0x11;  // version 1 in a v2 signature
    CHECK(parse(bad, h, used) == ProxyParse::error);
}
