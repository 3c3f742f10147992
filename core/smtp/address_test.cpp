#include <catch2/catch.hpp>

#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/smtp/reply.h"

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
