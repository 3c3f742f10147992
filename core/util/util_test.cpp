// base64 (RFC 4648 test vectors plus refusals) and organizational domains (PSL rules).
#include <catch2/catch.hpp>

#include "core/util/base64.h"
#include "core/util/crc32c.h"
#include "core/util/psl.h"

using namespace kasi;

TEST_CASE("base64 RFC 4648 §10 vectors round-trip") {
    const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; ++i) {
        CHECK(base64_encode(plain[i]) == enc[i]);
        auto d = base64_decode(enc[i]);
        REQUIRE(d);
        CHECK(*d == plain[i]);
    }
    std::string bin("\0\xff\x10user\0pass", 12);
    CHECK(base64_decode(base64_encode(bin)) == bin);
}

TEST_CASE("base64 decoding refuses junk") {
    CHECK_FALSE(base64_decode("Zg="));       // truncated
    CHECK_FALSE(base64_decode("Zm9v\r\n"));  // whitespace
    CHECK_FALSE(base64_decode("Zm9*"));      // bad character
    CHECK_FALSE(base64_decode("Zh=="));      // non-canonical padding bits
    CHECK_FALSE(base64_decode("Zg==Zg=="));  // padding in the middle
    CHECK_FALSE(base64_decode("=Zg="));
}

TEST_CASE("organizational domains from a rules file") {
    REQUIRE(psl_load_file(KASI_SOURCE_ROOT "/test/data/psl/rules.dat"));
    CHECK(organizational_domain("example.com") == "example.com");
    CHECK(organizational_domain("Mail.Example.COM.") == "example.com");
    CHECK(organizational_domain("a.b.example.co.uk") == "example.co.uk");
    CHECK(organizational_domain("co.uk") == "");
    CHECK(organizational_domain("com") == "");
    CHECK(organizational_domain("example.unknowntld") == "example.unknowntld");  // rule "*"
    CHECK(organizational_domain("a.b.foo.ck") == "b.foo.ck");                    // *.ck
    CHECK(organizational_domain("www.ck") == "www.ck");                          // !www.ck
    CHECK(organizational_domain("x.www.ck") == "www.ck");
    CHECK(organizational_domain("a.b.kawasaki.jp") == "a.b.kawasaki.jp");
    CHECK(organizational_domain("city.kawasaki.jp") == "city.kawasaki.jp");
    CHECK(organizational_domain("") == "");
}

TEST_CASE("crc32c: known vector, and the hardware path agrees with the table") {
    const char* v = "123456789";
    CHECK(crc32c(0, v, 9) == 0xE3069283u);
    CHECK(crc32c_table(0, v, 9) == 0xE3069283u);
    std::string buf;
    for (int i = 0; i < 5000; ++i) buf += char(i * 31 + 7);
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 4096u, 4999u})
        CHECK(crc32c(0, buf.data(), len) == crc32c_table(0, buf.data(), len));
    CHECK(crc32c(crc32c(0, buf.data(), 100), buf.data() + 100, 200) == crc32c(0, buf.data(), 300));
}
