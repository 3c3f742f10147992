#include <catch2/catch.hpp>

#include "core/config/config_dir.h"
#include "core/smtp/headers.h"
#include "core/smtp/unsubscribe.h"

using namespace kasi;

TEST_CASE("unsubscribe tokens verify and cannot be forged", "[unsubscribe]") {
    std::string secret = "a-secret-of-enough-length";
    std::string tok =
        make_unsubscribe_token(secret, {"Jane@Example.com", "news", "acme", 1700000000});
    for (char c : tok) CHECK((isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.'));
    auto t = verify_unsubscribe_token(secret, tok);
    REQUIRE(t);
    CHECK(t->recipient == "jane@example.com");
    CHECK(t->list == "news");
    CHECK(t->tenant == "acme");
    CHECK(t->issued_s == 1700000000);
    CHECK_FALSE(verify_unsubscribe_token("another-secret-of-length", tok));
    // Someone else's address in the payload, with the old MAC: refused.
    std::string other =
        make_unsubscribe_token("x-other-secret-entirely", {"bob@example.com", "news", "acme", 1});
    std::string forged = other.substr(0, other.find('.')) + tok.substr(tok.find('.'));
    CHECK_FALSE(verify_unsubscribe_token(secret, forged));
    CHECK_FALSE(verify_unsubscribe_token(secret, "garbage"));
    CHECK_FALSE(verify_unsubscribe_token(secret, ""));
}

TEST_CASE("List-Unsubscribe headers from notes, refusing header injection", "[unsubscribe]") {
    std::string m = "From: a@b.example\r\nSubject: s\r\n\r\nbody\r\n";
    std::map<std::string, std::string> notes{{"unsubscribe.url", "https://u.example/x"},
                                             {"unsubscribe.mailto", "u@b.example"}};
    std::string err;
    REQUIRE(add_list_unsubscribe(m, notes, {"r@c.example"}, nullptr, 0, err));
    CHECK(header_values(m, "List-Unsubscribe") ==
          std::vector<std::string>{"<https://u.example/x>, <mailto:u@b.example>"});
    CHECK(header_values(m, "List-Unsubscribe-Post") ==
          std::vector<std::string>{"List-Unsubscribe=One-Click"});
    CHECK(m.ends_with("\r\n\r\nbody\r\n"));
    // present already: left alone
    std::string again = m;
    REQUIRE(add_list_unsubscribe(again, notes, {"r@c.example"}, nullptr, 0, err));
    CHECK(again == m);
    // injection: refused, message unchanged
    std::string m2 = "From: a@b.example\r\n\r\nbody\r\n";
    for (const char* bad : {"https://u.example/x\r\nBcc: victim@example.com",
                            "https://u.example/>x", "https://u.example/\nx"}) {
        std::string copy = m2;
        err.clear();
        CHECK_FALSE(add_list_unsubscribe(copy, {{"unsubscribe.url", bad}}, {}, nullptr, 0, err));
        CHECK(err.find("refused") != std::string::npos);
        CHECK(copy == m2);
    }
    // a mailto only: no one-click header (RFC 8058 needs https)
    std::string m3 = m2;
    REQUIRE(add_list_unsubscribe(m3, {{"unsubscribe.mailto", "mailto:u@b.example"}}, {}, nullptr, 0,
                                 err));
    CHECK(header_values(m3, "List-Unsubscribe-Post").empty());
    CHECK(header_values(m3, "List-Unsubscribe") ==
          std::vector<std::string>{"<mailto:u@b.example>"});
    // {token} without a configured secret: refused
    std::string m4 = m2;
    CHECK_FALSE(
        add_list_unsubscribe(m4, {{"unsubscribe.url", "https://u/{token}"}}, {}, nullptr, 0, err));
}
