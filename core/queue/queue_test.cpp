// Unit tests for the pure parts of outbound delivery: the reply parser (and its bounds),
// dot-stuffing, temp_fail_intervals, queue limit resolution, rates, egress pools, DSN
// structure and JSON.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/queue/dsn.h"
#include "core/queue/egress.h"
#include "core/queue/outbound_config.h"
#include "core/smtp/client/dot_stuff.h"
#include "core/smtp/client/reply_parser.h"
#include "core/util/json.h"

using namespace kasi;

TEST_CASE("reply parser: single, multi-line, split across reads") {
    ReplyParser p;
    REQUIRE(p.feed("250-mx.example.com hello\r\n250-PIPELINING\r\n25"));
    CHECK_FALSE(p.has_reply());
    REQUIRE(p.feed("0 SIZE 1000\r\n550 5.1.1 <x@y> no such user\r\n"));
    REQUIRE(p.ready_count() == 2);
    auto r = p.take();
    CHECK(r.code == 250);
    CHECK(r.lines.size() == 3);
    CHECK(r.lines[2] == "SIZE 1000");
    r = p.take();
    CHECK(r.code == 550);
    CHECK(r.enhanced == "5.1.1");
    CHECK(r.text() == "<x@y> no such user");
    CHECK_FALSE(p.has_reply());
}

TEST_CASE("reply parser: enhanced code only when its class matches") {
    ReplyParser p;
    REQUIRE(p.feed("451 5.1.1 odd\r\n250 2.0.0 ok\r\n250 1.2.3 not a code\r\n"));
    CHECK(p.take().enhanced.empty());
    CHECK(p.take().enhanced == "2.0.0");
    CHECK(p.take().enhanced.empty());
}

TEST_CASE("reply parser: bare code and LF-only lines") {
    ReplyParser p;
    REQUIRE(p.feed("220\n"));
    auto r = p.take();
    CHECK(r.code == 220);
    CHECK(r.lines.size() == 1);
}

TEST_CASE("reply parser rejects garbage and bounds its memory") {
    SECTION("invalid code") {
        ReplyParser p;
        CHECK_FALSE(p.feed("HTTP/1.1 400 Bad Request\r\n"));
        CHECK_FALSE(p.error().empty());
    }
    SECTION("1xx and 6xx are not SMTP replies") {
        ReplyParser p;
        CHECK_FALSE(p.feed("150 x\r\n"));
        ReplyParser q;
        CHECK_FALSE(q.feed("600 x\r\n"));
    }
    SECTION("code changes inside a multi-line reply") {
        ReplyParser p;
        CHECK_FALSE(p.feed("250-a\r\n251 b\r\n"));
    }
    SECTION("a line that never ends") {
        ReplyParser p(100, 10);
        std::string chunk(60, 'x');
        CHECK(p.feed("250 " + chunk));
        CHECK_FALSE(p.feed(chunk));
        CHECK(p.error().find("longer than 100") != std::string::npos);
    }
    SECTION("an endless multi-line reply") {
        ReplyParser p(100, 10);
        bool ok = true;
        for (int i = 0; i < 20 && ok; ++i) ok = p.feed("250-more\r\n");
        CHECK_FALSE(ok);
        CHECK(p.error().find("10 lines") != std::string::npos);
    }
    SECTION("bad separator") {
        ReplyParser p;
        CHECK_FALSE(p.feed("250xok\r\n"));
    }
}

TEST_CASE("dot-stuffing and line ends") {
    std::string out;
    append_dot_stuffed(out, ".start\r\nmid\r\n..two\r\nbare lf\nlast");
    CHECK(out == "..start\r\nmid\r\n...two\r\nbare lf\r\nlast\r\n.\r\n");
    out.clear();
    append_dot_stuffed(out, "");
    CHECK(out == ".\r\n");
    out.clear();
    append_dot_stuffed(out, "a\r\n.\r\n");
    CHECK(out == "a\r\n..\r\n.\r\n");
    CHECK(has_8bit("caf\xc3\xa9"));
    CHECK_FALSE(has_8bit("plain"));
}

TEST_CASE("temp_fail_intervals: Haraka's test vectors") {
    std::vector<int> v;
    std::string err;
    REQUIRE(parse_fail_intervals("10s, 1m*2", v, err));
    CHECK(v == std::vector<int>{10, 60, 60});
    REQUIRE(parse_fail_intervals("none", v, err));
    CHECK(v.empty());
    CHECK_FALSE(parse_fail_intervals("60 min", v, err));
    CHECK_FALSE(parse_fail_intervals("1s", v, err));  // under 5 s
    CHECK_FALSE(parse_fail_intervals("5m*0", v, err));
    REQUIRE(parse_fail_intervals("1m, 5m*2, 1h*3", v, err));
    CHECK(v == std::vector<int>{60, 300, 300, 3600, 3600, 3600});
    auto d = default_fail_intervals(13);
    REQUIRE(d.size() == 12);
    CHECK(d.front() == 64);
    CHECK(d.back() == 131072);
}

TEST_CASE("durations and host patterns") {
    int64_t ms = 0;
    REQUIRE(parse_duration_ms("5d", ms));
    CHECK(ms == 5ll * 86400 * 1000);
    REQUIRE(parse_duration_ms("90", ms));
    CHECK(ms == 90000);
    CHECK_FALSE(parse_duration_ms("5x", ms));
    CHECK(host_pattern_match("*.google.com", "aspmx.l.google.com"));
    CHECK_FALSE(host_pattern_match("*.google.com", "google.com"));
    CHECK(host_pattern_match("Example.COM", "example.com"));
}

TEST_CASE("queue limits: defaults, then site, source and domain overrides") {
    OutboundConfig c;
    c.defaults.max_connections = 10;
    LimitOverride site{LimitOverride::Kind::site, "*.google.com", "site"};
    site.max_connections = 5;
    site.max_message_rate = 100;
    LimitOverride dom{LimitOverride::Kind::domain, "gmail.com", "domain"};
    dom.max_connections = 2;
    c.overrides = {dom, site};
    auto l = c.limits_for("gmail.com", {"gmail-smtp-in.l.google.com"}, "default");
    CHECK(l.max_connections == 2);
    CHECK(l.max_message_rate == 100);
    CHECK(l.origin == "domain");
    l = c.limits_for("example.org", {"aspmx.l.google.com"}, "default");
    CHECK(l.max_connections == 5);
    CHECK(l.origin == "site");
    l = c.limits_for("example.net", {"mx.example.net"}, "default");
    CHECK(l.max_connections == 10);
    CHECK(l.origin == "default");
}

TEST_CASE("DSN: RFC 3464 structure") {
    DsnInput in;
    in.me = "mta.example";
    in.original_sender = "alice@example.org";
    in.arrival_ms = 1700000000000;
    in.reason = "550 5.1.1 no such user";
    in.original = "Message-ID: <orig@example.org>\r\nSubject: hi\r\n\r\nsecret body\r\n";
    DsnRecipient r;
    r.address = "bob@example.net";
    r.status = final_status(550, "5.1.1");
    r.remote_mta = "mx.example.net";
    r.diagnostic = "550 5.1.1 no such\r\nInjected: header";
    in.rcpts.push_back(r);
    std::string id;
    std::string m = build_dsn(in, 1700000100000, id);
    CHECK(m.find("Content-Type: multipart/report; report-type=delivery-status;") !=
          std::string::npos);
    CHECK(m.find("Reporting-MTA: dns; mta.example\r\n") != std::string::npos);
    CHECK(m.find("Final-Recipient: rfc822; bob@example.net\r\n") != std::string::npos);
    CHECK(m.find("Action: failed\r\nStatus: 5.1.1\r\n") != std::string::npos);
    CHECK(m.find("Remote-MTA: dns; mx.example.net\r\n") != std::string::npos);
    CHECK(m.find("Diagnostic-Code: smtp; 550 5.1.1 no such  Injected: header\r\n") !=
          std::string::npos);
    CHECK(m.find("\r\nInjected:") == std::string::npos);
    CHECK(m.find("References: <orig@example.org>") != std::string::npos);
    CHECK(m.find("text/rfc822-headers") != std::string::npos);
    CHECK(m.find("secret body") == std::string::npos);  // headers only by default
    CHECK(m.find("To: alice@example.org\r\n") != std::string::npos);
    CHECK(m.find("Message-Id: " + id) != std::string::npos);
    in.whole_message = true;
    m = build_dsn(in, 1700000100000, id);
    CHECK(m.find("message/rfc822") != std::string::npos);
    CHECK(m.find("secret body") != std::string::npos);
    CHECK(final_status(451, "4.2.0") == "5.2.0");
    CHECK(final_status(554, "") == "5.0.0");
}

TEST_CASE("DSN template placeholders stay on one line") {
    DsnInput in;
    in.me = "m";
    in.original_sender = "a@b";
    in.reason = "x\r\nBcc: evil@x";
    in.template_text = "From: MAILER-DAEMON@{me}\nSubject: failed {nosuch}\n\n{reason}\n";
    std::string id;
    std::string m = build_dsn(in, 0, id);
    CHECK(m.find("Subject: failed ?\r\n") != std::string::npos);
    CHECK(m.find("\r\nBcc:") == std::string::npos);
}

TEST_CASE("JSON escaping keeps every record valid") {
    std::string out;
    json_escape(out, "a\"b\\c\n\x01 caf\xc3\xa9 bad\xff");
    CHECK(out == "\"a\\\"b\\\\c\\n\\u0001 caf\xc3\xa9 bad\\ufffd\"");
    JsonObject o;
    o.str("k", "v").num("n", -3).boolean("b", true);
    CHECK(o.done() == "{\"k\":\"v\",\"n\":-3,\"b\":true}");
}

TEST_CASE("rates: N, N/s, N/min, N/h, N/d") {
    double r = -1;
    CHECK((parse_rate("100/min", r) && std::abs(r - 100.0 / 60) < 1e-9));
    CHECK((parse_rate(" 5 / s ", r) && r == 5));
    CHECK((parse_rate("7200/h", r) && r == 2));
    CHECK((parse_rate("86400/d", r) && r == 1));
    CHECK((parse_rate("2.5", r) && r == 2.5));
    CHECK((parse_rate("0", r) && r == 0));
    for (const char* bad : {"", "/min", "10/week", "-1/s", "ten/s", "1e12", "5/"}) {
        INFO(bad);
        CHECK_FALSE(parse_rate(bad, r));
    }
}

TEST_CASE("egress pools: weighted picks, default pool, all sources, none") {
    EgressConfig e;
    CHECK(e.pick("", 0) == nullptr);  // no sources: the system's default address
    e.sources = {{"a", IpAddr::parse("127.0.0.2"), "", "eu", ""},
                 {"b", IpAddr::parse("127.0.0.3"), "", "us", ""},
                 {"c", IpAddr::parse("127.0.0.4"), "", "", ""}};
    // no pools: every source in turn
    std::map<std::string, int> n;
    for (uint64_t t = 0; t < 30; ++t) ++n[e.pick("", t)->name];
    CHECK(n == std::map<std::string, int>{{"a", 10}, {"b", 10}, {"c", 10}});
    e.pools = {{"default", {{"a", 1}, {"b", 3}}}, {"only_c", {{"c", 1}}}};
    n.clear();
    for (uint64_t t = 0; t < 400; ++t) ++n[e.pick("", t)->name];
    CHECK(n == std::map<std::string, int>{{"a", 100}, {"b", 300}});
    CHECK(e.pick("only_c", 7)->name == "c");
    CHECK(e.pick("no_such_pool", 1)->name == "b");  // falls back to the default pool
}

TEST_CASE("egress.ini: errors name the line") {
    char tmpl[] = "/tmp/kasi-egress-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    {
        std::ofstream f(dir + "/egress.ini");
        f << "[source:a]\naddress=192.0.2.1\nehlo=a.example\nwarmup_start=2026-13-01\n"
             "[pool:p]\na=2\nzz=1\n";
    }
    Diagnostics d;
    EgressConfig e = load_egress_config(ConfigDir(dir), d);
    std::filesystem::remove_all(dir);
    REQUIRE(e.sources.size() == 1);
    CHECK(e.sources[0].ehlo == "a.example");
    CHECK(e.sources[0].address->str() == "192.0.2.1");
    REQUIRE(d.errors.size() == 2);
    CHECK(d.errors[0].find("egress.ini:4: [source:a] warmup_start '2026-13-01'") !=
          std::string::npos);
    CHECK(d.errors[1].find("egress.ini:7: [pool:p] names source 'zz'") != std::string::npos);
}
