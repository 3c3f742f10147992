#include <catch2/catch.hpp>

#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/smtp/reply.h"

#include <algorithm>
#include <string>
#include <vector>

using namespace kasi;

TEST_CASE("paths: valid forms") {
    auto p = parse_path("<User@Example.COM.>", false, false);
    REQUIRE(p.address);
    CHECK(p.address->local == "User");
    CHECK(p.address->domain == "example.com");
    CHECK(parse_path("<>", true, false).address->null);
    CHECK_FALSE(parse_path("<>", false, false).address);
    auto q = parse_path("<\"john doe\"@example.com> SIZE=100", false, false);
    REQUIRE(q.address);
    CHECK(q.rest == "SIZE=100");
    auto lit = parse_path("<u@[127.0.0.1]>", false, false);
    REQUIRE(lit.address);
    CHECK(lit.address->literal);
    CHECK(parse_path("<u@[IPv6:::1]>", false, false).address);
}

TEST_CASE("paths: source routes are ignored, the final mailbox counts") {
    auto p = parse_path("<@local.test,@relay.test:victim@remote.example>", false, false);
    REQUIRE(p.address);
    CHECK(p.address->had_route);
    CHECK(p.address->domain == "remote.example");
}

TEST_CASE("paths: routing characters in the local part are flagged") {
    CHECK(
        parse_path("<victim%remote.example@local.test>", false, false).address->has_routing_chars);
    CHECK(
        parse_path("<remote.example!victim@local.test>", false, false).address->has_routing_chars);
    CHECK(parse_path("<\"victim@remote.example\"@local.test>", false, false)
              .address->has_routing_chars);
    CHECK_FALSE(parse_path("<plain@local.test>", false, false).address->has_routing_chars);
}

TEST_CASE("paths: malformed input is refused") {
    for (const char* bad :
         {"user@example.com", "<user@example.com", "<user>", "<@example.com>", "<user@>",
          "<a..b@example.com>", "<.a@example.com>", "<u@exa mple.com>", "<u@-bad.com>",
          "<u@[1.2.3]>", "<u@[IPv6:zz]>", "<u@example.com>x", "<\"unterminated@example.com>",
          "<u@b\xc3\xa4"
          "d.example>"}) {
        INFO(bad);
        CHECK_FALSE(parse_path(bad, true, false).address);
    }
    // UTF-8 only with SMTPUTF8
    CHECK(parse_path("<j\xc3\xb6"
                     "rg@b\xc3\xa4"
                     "d.example>",
                     false, true)
              .address);
}

TEST_CASE("paths: address literals hold only an address (found by fuzz_smtp_command)") {
    // IpAddr::parse trims blanks and inet_pton stops at a NUL: these passed and the CR, NUL
    // or blank went on into the spool, the next hop's RCPT TO and the DSNs.
    for (std::string_view bad :
         {std::string_view("<u@[192.0.2.7\r]>"), std::string_view("<u@[192.0.2.7\0x]>", 17),
          std::string_view("<u@[ 192.0.2.7]>"), std::string_view("<u@[192.0.2.7\t]>"),
          std::string_view("<u@[IPv6:::1 ]>"), std::string_view("<u@[IPv6:]>")}) {
        INFO(bad);
        CHECK_FALSE(parse_path(bad, false, false).address);
        CHECK_FALSE(parse_path(bad, true, true).address);
    }
    CHECK(parse_path("<u@[192.0.2.7]>", false, false).address);
    CHECK(parse_path("<u@[IPv6:::ffff:192.0.2.7]>", false, false).address);
}

TEST_CASE("paths: an escaped 8-bit byte in a quoted local part needs SMTPUTF8") {
    // RFC 5321 quoted-pairSMTP is a backslash and printable ASCII; without SMTPUTF8 the
    // escape let a non-ASCII recipient through (found by fuzz_smtp_command).
    CHECK_FALSE(parse_path("<\"a\\\xe9\"@example.com>", false, false).address);
    CHECK_FALSE(parse_path("<\"a\\\xc3\xa9\"@example.com>", false, false).address);
    CHECK(parse_path("<\"a\\\"b\"@example.com>", false, false).address);
    CHECK(parse_path("<\"a\\\xc3\xa9\"@example.com>", false, true).address);
}

TEST_CASE("commands and parameters") {
    auto c = split_command("mail FROM:<a@b.c> SIZE=10");
    CHECK(c.verb == "MAIL");
    CHECK(c.arg == "FROM:<a@b.c> SIZE=10");
    CHECK(strip_path_prefix("FROM: <a@b>", "FROM") == std::string_view("<a@b>"));
    CHECK_FALSE(strip_path_prefix("FRUM:<a@b>", "FROM"));
    std::vector<EsmtpParam> ps;
    std::string err;
    REQUIRE(parse_esmtp_params("size=10 BODY=8BITMIME SMTPUTF8", ps, err));
    REQUIRE(ps.size() == 3);
    CHECK(ps[0].key == "SIZE");
    CHECK(*ps[0].value == "10");
    CHECK_FALSE(ps[2].value);
    CHECK_FALSE(parse_esmtp_params("=x", ps, err));
}

TEST_CASE("bracket_path: Haraka's reading of a sloppy MAIL FROM / RCPT TO") {
    CHECK(bracket_path("a@b.example", true) == "<a@b.example>");
    CHECK(bracket_path("  a@b.example SIZE=10 BODY=8BITMIME", true) ==
          "<a@b.example> SIZE=10 BODY=8BITMIME");
    CHECK(bracket_path("", true) == "<>");
    CHECK(bracket_path("  ", true) == "<>");
    CHECK(bracket_path("", false) == "");
    CHECK(bracket_path("<a@b.example> SIZE=1", true) == "<a@b.example> SIZE=1");
    CHECK(bracket_path("\t <a@b.example>", true) == "<a@b.example>");
    // what the path parser then makes of it
    auto p = parse_path(bracket_path("user@Example.NET.", false), false, false);
    REQUIRE(p.address);
    CHECK(p.address->str() == "user@example.net");
    CHECK_FALSE(parse_path(bracket_path("", false), false, false).address);
    CHECK_FALSE(parse_path(bracket_path("<a@b> junk@x", false), false, false).rest.empty());
}

TEST_CASE("replies: multi-line and enhanced codes") {
    std::string out;
    format_reply(out, 250, "", "host Hello\nPIPELINING\nSIZE 10");
    CHECK(out == "250-host Hello\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
    out.clear();
    format_reply(out, 550, "5.7.1", "denied");
    CHECK(out == "550 5.7.1 denied\r\n");
    out.clear();
    format_reply(out, 550, "5.7.1", "5.1.1 No such user");
    CHECK(out == "550 5.1.1 No such user\r\n");
    CHECK(starts_with_enhanced("4.3.1 x"));
    CHECK_FALSE(starts_with_enhanced("4.3 x"));
}

namespace {
std::vector<std::string> wire_lines(const std::string& out) {
    std::vector<std::string> v;
    size_t start = 0;
    for (size_t crlf; (crlf = out.find("\r\n", start)) != std::string::npos; start = crlf + 2)
        v.push_back(out.substr(start, crlf - start));
    CHECK(start == out.size());  // everything ends in CRLF
    return v;
}

bool valid_utf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}
}  // namespace

TEST_CASE("replies: a long text is folded into lines of at most 512 octets") {
    std::string words;
    while (words.size() < 5000) words += "word" + std::to_string(words.size()) + " ";
    for (const std::string& text : {std::string(100000, 'x'), words, std::string(3000, ' '), [] {
                                        std::string s;
                                        for (int i = 0; i < 2000; ++i) s += "\xc3\xa9";  // é
                                        return s;
                                    }()}) {
        for (const char* enh : {"", "5.7.1"}) {
            std::string out;
            format_reply(out, 550, enh, text);
            auto lines = wire_lines(out);
            REQUIRE(lines.size() > 1);
            std::string joined;
            for (size_t i = 0; i < lines.size(); ++i) {
                INFO(i);
                CHECK(lines[i].size() + 2 <= max_reply_line);
                CHECK(lines[i].substr(0, 4) == (i + 1 < lines.size() ? "550-" : "550 "));
                std::string body = lines[i].substr(4);
                if (*enh) {
                    CHECK(body.rfind("5.7.1 ", 0) == 0);
                    body = body.substr(6);
                }
                CHECK(valid_utf8(body));
                joined += body;
            }
            // nothing but the spaces at the folds is lost
            auto non_space = [](const std::string& s) {
                return s.size() - size_t(std::count(s.begin(), s.end(), ' '));
            };
            CHECK(non_space(joined) == non_space(text));
        }
    }
    std::string out;
    format_reply(out, 550, "5.7.1", "5.1.1 " + std::string(1000, 'y'));
    for (const auto& l : wire_lines(out)) CHECK(l.rfind("5.1.1 ", 4) == 4);  // its own code
}

TEST_CASE("replies: CR, NUL and other controls inside a line never reach the wire raw") {
    std::string out;
    format_reply(out, 550, "",
                 std::string("a\rb\0c\x1b"
                             "d\r\n250 fake\r",
                             18));
    CHECK(out == "550-a b c d\r\n550 250 fake\r\n");
}

TEST_CASE("replies: a plugin's text is capped") {
    std::string t(1 << 20, 'z');
    cap_reply_text(t);
    CHECK(t.size() <= max_reply_text);
    CHECK(t.substr(t.size() - 3) == "...");
    std::string e;
    for (int i = 0; i < 1500; ++i) e += "\xc3\xa9";
    cap_reply_text(e);
    CHECK(valid_utf8(e));
    std::string s = "short";
    cap_reply_text(s);
    CHECK(s == "short");
}
