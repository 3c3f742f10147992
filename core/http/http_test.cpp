// Unit tests for the HTTP API's pure parts: the request parser's limits and pipelining, the
// message builder's encodings, substitutions, token scopes, the provider table, the bounded
// JSON parser and the send request's address checks.
#include <catch2/catch.hpp>

#include "core/http/http_config.h"
#include "core/http/http_request.h"
#include "core/http/json_parse.h"
#include "core/http/message_builder.h"
#include "core/http/send_request.h"
#include "core/metrics/provider.h"
#include "core/util/base64.h"
#include "core/util/hmac.h"

using namespace kasi;

namespace {

RequestParser::State feed_all(RequestParser& p, const std::string& s, size_t& used) {
    return p.feed(s.data(), s.size(), used);
}

}  // namespace

TEST_CASE("request parser: pipelined requests come out one at a time") {
    RequestParser p;
    p.set_limits(1024, 100, 1000);
    std::string in =
        "POST /api/v1/send?x=1&y=a%20b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        "Authorization: Bearer abc\r\n\r\nhello"
        "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
    size_t used = 0;
    REQUIRE(feed_all(p, in, used) == RequestParser::State::done);
    HttpRequest a = p.take();
    CHECK(a.method == "POST");
    CHECK(a.path == "/api/v1/send");
    CHECK(a.query_param("y") == "a b");
    CHECK(a.query_param("z").empty());
    CHECK(a.body == "hello");
    CHECK(*a.header("authorization") == "Bearer abc");
    CHECK(a.keep_alive);
    p.reset();
    std::string rest = in.substr(used);
    REQUIRE(feed_all(p, rest, used) == RequestParser::State::done);
    HttpRequest b = p.take();
    CHECK(b.method == "GET");
    CHECK(b.path == "/health");
    CHECK_FALSE(b.keep_alive);
    CHECK(used == rest.size());
}

TEST_CASE("request parser: limits give 413 and 431, garbage 400, byte by byte works") {
    RequestParser p;
    p.set_limits(200, 10, 50);
    size_t used;
    CHECK(feed_all(p, "POST /api/v1/send HTTP/1.1\r\nContent-Length: 11\r\n\r\n", used) ==
          RequestParser::State::error);
    CHECK(p.error_status() == 413);
    p.reset();
    // the batch endpoint has its own limit
    CHECK(feed_all(p, "POST /api/v1/send/batch HTTP/1.1\r\nContent-Length: 11\r\n\r\n", used) ==
          RequestParser::State::more);
    p.reset();
    // chunked bodies are counted as they come
    CHECK(feed_all(p,
                   "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n"
                   "8\r\n12345678\r\n0\r\n\r\n",
                   used) == RequestParser::State::error);
    CHECK(p.error_status() == 413);
    p.reset();
    CHECK(feed_all(p, "GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", used) ==
          RequestParser::State::error);
    CHECK(p.error_status() == 431);
    p.reset();
    CHECK(feed_all(p, "EHLO example.com\r\n\r\n", used) == RequestParser::State::error);
    CHECK(p.error_status() == 400);
    p.reset();
    std::string req = "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n";
    RequestParser::State st = RequestParser::State::more;
    for (char c : req) {
        REQUIRE(st == RequestParser::State::more);
        st = p.feed(&c, 1, used);
    }
    CHECK(st == RequestParser::State::done);
    CHECK(p.take().path == "/a/b");
    std::string out;
    CHECK_FALSE(percent_decode("%4", out, false));
    CHECK_FALSE(percent_decode("%zz", out, false));
    CHECK(percent_decode("a+b%41", out, true));
    CHECK(out == "a bA");
}

TEST_CASE("message builder: encodings and structure") {
    CHECK(encode_word("plain") == "plain");
    CHECK(encode_word("Grüße") == "=?utf-8?B?R3LDvMOfZQ==?=");
    // long non-ASCII text is split into words of at most 75 characters, never inside a
    // UTF-8 sequence
    std::string longtext;
    for (int i = 0; i < 40; ++i) longtext += "é";
    std::string w = encode_word(longtext);
    size_t start = 0;
    std::string decoded;
    while (start < w.size()) {
        size_t end = w.find("\r\n ", start);
        std::string word =
            w.substr(start, end == std::string::npos ? std::string::npos : end - start);
        CHECK(word.size() <= 75);
        REQUIRE(word.rfind("=?utf-8?B?", 0) == 0);
        auto d = base64_decode(word.substr(10, word.size() - 12));
        REQUIRE(d);
        decoded += *d;
        start = end == std::string::npos ? w.size() : end + 3;
    }
    CHECK(decoded == longtext);
    CHECK(quoted_printable("a=b \r\n.x\r\ntrail \r\n") == "a=3Db=20\r\n=2Ex\r\ntrail=20\r\n");
    std::string qp = quoted_printable(std::string(200, 'a'));
    for (size_t p = 0, e; p < qp.size(); p = e + 2) {
        e = qp.find("\r\n", p);
        if (e == std::string::npos) e = qp.size();
        CHECK(e - p <= 76);
    }
    auto encoding_of = [](const std::string& text) {
        MessageFields f;
        f.from.email = "a@b.test";
        f.text = text;
        f.has_text = true;
        std::string m = build_message(f, "<1@b.test>", "Mon, 23 Nov 2026 10:00:00 +0000");
        return m.find("Content-Transfer-Encoding: 7bit") != std::string::npos ? "7bit" : "qp";
    };
    CHECK(std::string(encoding_of("hello\nworld\r\n")) == "7bit");
    CHECK(std::string(encoding_of(std::string(900, 'a') + "\nb")) == "7bit");
    CHECK(std::string(encoding_of("b\n" + std::string(901, 'a'))) == "qp");
    CHECK(std::string(encoding_of("caf\xc3\xa9")) == "qp");
    CHECK(std::string(encoding_of(std::string("a\0b", 3))) == "qp");
    CHECK(std::string(encoding_of("tab\tand ~ del-free")) == "7bit");
    CHECK(std::string(encoding_of("del\x7f")) == "qp");
    CHECK(to_crlf("a\nb\r\nc\rd") == "a\r\nb\r\nc\r\nd");
    CHECK(to_crlf("") == "");
    CHECK(to_crlf("\r") == "\r\n");
    CHECK(to_crlf("\n\n") == "\r\n\r\n");
    CHECK(to_crlf("\r\r\n\n\rx") == "\r\n\r\n\r\n\r\nx");
    CHECK(to_crlf("no line end") == "no line end");
    // against a byte-by-byte reference on random mixes of CR, LF and text
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; ++round) {
        std::string in, want;
        int n = int((seed = seed * 1103515245 + 12345) >> 16) % 40;
        for (int i = 0; i < n; ++i) {
            seed = seed * 1103515245 + 12345;
            in += "\r\nab"[(seed >> 16) % 4];
        }
        for (size_t i = 0; i < in.size(); ++i) {
            if (in[i] == '\r') {
                want += "\r\n";
                if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
            } else if (in[i] == '\n') {
                want += "\r\n";
            } else {
                want += in[i];
            }
        }
        REQUIRE(to_crlf(in) == want);
    }
    MessageFields f;
    f.from = {"a@b.test", "A \"q\""};
    f.to = {{"x@y.test", ""}};
    f.subject = "s";
    f.text = "hi\n";
    f.has_text = true;
    f.html = "<p>hi</p>";
    f.has_html = true;
    f.attachments.push_back({"r.pdf", "application/pdf", std::string("\0\1\2", 3), ""});
    std::string m = build_message(f, "<id@x>", "Mon, 1 Jan 2026 00:00:00 +0000");
    CHECK(m.find("From: \"A \\\"q\\\"\" <a@b.test>\r\n") == 0);
    CHECK(m.find("Content-Type: multipart/mixed;") != std::string::npos);
    CHECK(m.find("Content-Type: multipart/alternative;") != std::string::npos);
    CHECK(m.find("Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\nAAEC\r\n") !=
          std::string::npos);
    CHECK(m.find("\n") == m.find("\r\n") + 1);  // every LF is part of a CRLF
    for (size_t i = 0; i < m.size(); ++i)
        if (m[i] == '\n') REQUIRE(m[i - 1] == '\r');
}

TEST_CASE("substitutions: values, missing keys, HTML escaping") {
    std::map<std::string, std::string> s{{"name", "<A&B>"}, {"n", "1"}};
    CHECK(substitute("Hi {{name}}, {{ n }} {{missing}}!", s, false) == "Hi <A&B>, 1 !");
    CHECK(substitute("<p>{{name}}</p>", s, true) == "<p>&lt;A&amp;B&gt;</p>");
    CHECK(substitute("{{unclosed", s, false) == "{{unclosed");
}

TEST_CASE("tokens: scopes and constant-time lookup by hash") {
    CHECK(parse_http_scopes("send,admin") == (scope_send | scope_admin));
    CHECK(parse_http_scopes("bogus") == 0);
    std::string token;
    std::string line = make_http_token_line("app", scope_send, token);
    CHECK(line.rfind("app send ", 0) == 0);
    CHECK(line.size() == 9 + 64);
    HttpConfig c;
    c.tokens.push_back({"app", sha256(token), scope_send});
    c.trusted.add(*Cidr::parse("10.0.0.0/8"));
    std::string who;
    CHECK(c.scopes_for(*IpAddr::parse("192.0.2.1"), token, &who) == scope_send);
    CHECK(who == "app");
    CHECK(c.scopes_for(*IpAddr::parse("192.0.2.1"), token + "x", &who) == 0);
    CHECK(c.scopes_for(*IpAddr::parse("10.1.2.3"), "", &who) == scope_all);
    CHECK(c.scopes_for(*IpAddr::parse("10.1.2.3"), "wrong", &who) == 0);
    CHECK(c.scopes_for(*IpAddr::parse("192.0.2.1"), "", &who) == 0);
}

TEST_CASE("providers from MX hosts, bounded") {
    CHECK(provider_of("gmail-smtp-in.l.google.com") == "google");
    CHECK(provider_of("example-com.mail.protection.outlook.com.") == "microsoft");
    CHECK(provider_of("mta7.am0.yahoodns.net") == "yahoo");
    CHECK(provider_of("notgoogle.com") == "other");
    CHECK(provider_of("mx.example.org") == "other");
}

namespace {

// A message request from JSON text (parsed with the API's parser), or the refusal.
SendError prepare(const std::string& json, PreparedMessage* out = nullptr) {
    static HttpConfig hc;
    rapidjson::Document doc;
    std::string text = json, why;
    REQUIRE(parse_json_insitu(doc, text, JsonLimits{}, why));
    SendContext ctx{&hc, "mx.test", "192.0.2.1", false, 1 << 20};
    PreparedMessage pm;
    SendError err{0, "", ""};
    if (!prepare_message(doc, ctx, out ? *out : pm, err)) return err;
    return SendError{200, "", ""};
}

}  // namespace

TEST_CASE("JSON from outside: deep nesting is refused without recursion, with its offset") {
    rapidjson::Document doc;
    std::string err;
    std::string deep(500000, '[');
    CHECK_FALSE(parse_json(doc, deep, JsonLimits{}, err));
    CHECK(err == "JSON nested deeper than 64 levels at offset 64");
    CHECK(doc.IsNull());
    CHECK_FALSE(parse_json_insitu(doc, deep, JsonLimits{}, err));
    CHECK(err == "JSON nested deeper than 64 levels at offset 64");
    std::string objs;
    for (int i = 0; i < 200000; ++i) objs += "{\"a\":";
    CHECK_FALSE(parse_json(doc, objs, JsonLimits{}, err));
    CHECK(err == "JSON nested deeper than 64 levels at offset 320");  // 5 bytes a level
    // mixed, with the limit set lower: the 4th level is refused
    CHECK_FALSE(parse_json(doc, R"({"a": [1, {"b": [[2]]}]})", JsonLimits{.max_depth = 3}, err));
    CHECK(err == "JSON nested deeper than 3 levels at offset 16");
    // 64 levels are fine, and the document is whole
    std::string ok = std::string(63, '[') + "{\"k\": \"v\"}" + std::string(63, ']');
    REQUIRE(parse_json(doc, ok, JsonLimits{}, err));
    const rapidjson::Value* v = &doc;
    for (int i = 0; i < 63; ++i) v = &(*v)[0];
    CHECK(std::string((*v)["k"].GetString()) == "v");
}

TEST_CASE("JSON from outside: one value, valid UTF-8, no NUL, bounded size") {
    rapidjson::Document doc;
    std::string err;
    CHECK_FALSE(parse_json(doc, R"({"a": 1} {"b": 2})", JsonLimits{}, err));
    CHECK(err.rfind("malformed JSON at offset 9: ", 0) == 0);
    CHECK(parse_json(doc, " \r\n{\"a\": 1}\n\t ", JsonLimits{}, err));
    CHECK(doc["a"].GetInt() == 1);
    CHECK_FALSE(parse_json(doc, std::string_view("{\"a\": 1}\0{\"b\"", 14), JsonLimits{}, err));
    CHECK(err == "malformed JSON at offset 8: a NUL byte");
    std::string insitu("{\"a\": 1}\0junk", 13);
    CHECK_FALSE(parse_json_insitu(doc, insitu, JsonLimits{}, err));
    CHECK(err == "malformed JSON at offset 8: a NUL byte");
    CHECK_FALSE(parse_json(doc, "\"\xff\"", JsonLimits{}, err));
    CHECK(err.find("Invalid encoding") != std::string::npos);
    CHECK_FALSE(parse_json(doc, "", JsonLimits{}, err));
    CHECK(err == "malformed JSON at offset 0: The document is empty.");
    CHECK_FALSE(parse_json(doc, "[1, 2, 3]", JsonLimits{.max_bytes = 8}, err));
    CHECK(err == "JSON of 9 bytes is over the limit of 8");
    // in place: the strings point into the text, escapes decoded
    std::string text = R"({"s": "a\u00e9\n"})";
    REQUIRE(parse_json_insitu(doc, text, JsonLimits{}, err));
    CHECK(std::string(doc["s"].GetString()) == "a\xc3\xa9\n");
    CHECK(doc["s"].GetString() >= text.data());
    CHECK(doc["s"].GetString() < text.data() + text.size());
    // a document reused after a refusal holds nothing of it
    CHECK_FALSE(parse_json(doc, "[[[", JsonLimits{.max_depth = 2}, err));
    CHECK(doc.IsNull());
}

TEST_CASE("bounded JSON: a text ending in a UTF-8 lead byte is never read past its end") {
    // RapidJSON's validation takes the continuation bytes a lead byte announces before it
    // checks them; on a heap string with no spare capacity ASan saw the in-place parse read
    // past the buffer (found by fuzz_json_body). Both parsers refuse it cleanly.
    for (std::string tail : {"\xe2", "\xf0", "\xf0\x9f", "\xc3"}) {
        std::string body = std::string("{\"subject\": \"abcdefghijklmnopqrstuvwxyz") + tail;
        body.shrink_to_fit();
        rapidjson::Document doc;
        std::string err;
        CHECK_FALSE(parse_json_insitu(doc, body, JsonLimits{}, err));
        CHECK(body.size() == 39 + tail.size());  // the padding is gone again
        CHECK_FALSE(parse_json(doc, body, JsonLimits{}, err));
    }
}

TEST_CASE("send requests: addresses with anything after them are refused, field named") {
    const std::string base = R"("subject": "s", "text": "t")";
    auto msg = [&](const std::string& fields) { return "{" + base + ", " + fields + "}"; };
    PreparedMessage pm;
    auto ok = prepare(
        msg(R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "bounce@x.test")"), &pm);
    REQUIRE(ok.status == 200);
    CHECK(pm.txns.at(0)->mail_from.str() == "bounce@x.test");
    struct Case {
        std::string fields, field;
    };
    for (const Case& c : std::vector<Case>{
             {R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "a@x.test> junk")",
              "envelope_from"},
             {R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "a@x.test junk")",
              "envelope_from"},
             {R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "<a@x.test>")",
              "envelope_from"},
             {R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "@r.test:a@x.test")",
              "envelope_from"},
             {R"("from": "a@x.test", "to": "b@y.test", "envelope_from": "a@x.test>")",
              "envelope_from"},
             {R"("from": "a@x.test", "to": "b@y.test> junk")", "to"},
             {R"("from": "a@x.test", "to": "B <b@y.test> junk")", "to"},
             {R"("from": "a@x.test", "to": "@r.test:b@y.test")", "to"},
             {R"("from": "a@x.test> junk", "to": "b@y.test")", "from"},
             {R"("from": {"email": "a@x.test> junk"}, "to": "b@y.test")", "from.email"},
             {R"("from": "a@x.test", "to": "b@y.test", "cc": ["c@y.test> junk"])", "cc[0]"},
             {R"("from": "a@x.test", "to": "b@y.test", "bcc": "d@y.test junk")", "bcc"},
             {R"("from": "a@x.test", "to": "b@y.test", "reply_to": "r@x.test> junk")", "reply_to"},
             {R"("from": "a@x.test", "to": [{"email": "b@y.test>junk"}])", "to[0].email"},
         }) {
        INFO(c.fields);
        SendError e = prepare(msg(c.fields));
        CHECK(e.status == 400);
        CHECK(e.field == c.field);
    }
    // a raw message's From must give a clean sender too
    SendError e = prepare(R"({"content": "From: a@x.test junk\r\n\r\nhi\r\n", "to": "b@y.test"})");
    CHECK(e.status == 400);
    CHECK(e.field == "content");
}
