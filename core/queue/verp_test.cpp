#include <catch2/catch.hpp>

#include "core/queue/verp.h"
#include "core/util/hmac.h"
#include "core/util/ids.h"

using namespace kasi;

TEST_CASE("base32 and base64url round trips", "[verp]") {
    for (std::string s : {std::string(), std::string("a"), std::string("\x00\xff\x10", 3),
                          std::string(16, '\x7f'), std::string("hello world")}) {
        CHECK(base32_lower_decode(base32_lower(s)) == s);
        CHECK(base64url_decode(base64url(s)) == s);
    }
    CHECK(base32_lower("foobar") == "mzxw6ytboi");  // RFC 4648 §10, lowercase, no padding
    CHECK(base32_lower_decode("MZXW6YTBOI") == std::string("foobar"));
    CHECK_FALSE(base32_lower_decode("mzxw6ytbo1"));
    CHECK(base64url(std::string("\xfb\xff", 2)) == "-_8");
    CHECK_FALSE(base64url_decode("+/8"));
}

TEST_CASE("VERP addresses carry the message and the recipient, signed", "[verp]") {
    const std::string secret = "0123456789abcdef-secret";
    std::string id = new_uuid() + ".3";
    std::string a =
        verp_encode(secret, "b", "bounces.customer.example", id, "Jane.Doe@Gmail.com", 0);
    INFO(a);
    REQUIRE(!a.empty());
    CHECK(a.ends_with("@bounces.customer.example"));
    CHECK(a.find('@') <= 64);
    CHECK(a.find("jane.doe=gmail.com@") != std::string::npos);
    std::string why;
    auto d = verp_decode(secret, "b", a, why);
    REQUIRE(d);
    CHECK(d->message_id == id);
    CHECK(d->recipient == "jane.doe@gmail.com");
    CHECK(d->rcpt_index == -1);
    // A bounce generator that upper-cases the address does not break it.
    std::string upper = a;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    CHECK(verp_decode(secret, "b", upper, why));
    // Forged or altered: another secret, another recipient, another message.
    CHECK_FALSE(verp_decode("another-secret-entirely", "b", a, why));
    CHECK(why.find("HMAC") != std::string::npos);
    std::string altered = a;
    altered.replace(altered.find("jane.doe"), 8, "john.doe");
    CHECK_FALSE(verp_decode(secret, "b", altered, why));
    CHECK_FALSE(verp_decode(secret, "x", a, why));
    CHECK_FALSE(verp_decode(secret, "b", "postmaster@bounces.customer.example", why));
    CHECK_FALSE(verp_decode(secret, "b", "b-aaaa-bbbb-cccc@x", why));
}

TEST_CASE("VERP falls back to the recipient's index when the address does not fit", "[verp]") {
    const std::string secret = "0123456789abcdef-secret";
    std::string id = new_uuid() + ".12";
    std::string long_rcpt = "a.very.long.local.part.for.testing@subdomain.example.com";
    std::string a = verp_encode(secret, "b", "rp.example", id, long_rcpt, 7);
    INFO(a);
    CHECK(a.find('@') <= 64);
    std::string why;
    auto d = verp_decode(secret, "b", a, why);
    REQUIRE(d);
    CHECK(d->message_id == id);
    CHECK(d->recipient.empty());
    CHECK(d->rcpt_index == 7);
    // quoted or '=' local parts also take the index form
    std::string q = verp_encode(secret, "b", "rp.example", id, "a=b@x.example", 2);
    REQUIRE(verp_decode(secret, "b", q, why));
    CHECK(verp_decode(secret, "b", q, why)->rcpt_index == 2);
    // ids that are not Kasi's cannot be encoded
    CHECK(verp_encode(secret, "b", "rp.example", "not-an-id", "a@b.example", 0).empty());
}
