// MIME part counting: flat and nested multiparts, quoted boundaries, closing delimiters,
// boundaries that only appear in bodies, and the early stop.
#include <catch2/catch.hpp>

#include <string>

#include "core/smtp/mime_scan.h"

using namespace kasi;

TEST_CASE("flat multipart") {
    std::string m =
        "From: a@b\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
        "preamble\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\none\r\n"
        "--XyZ\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n--XyZ--\r\nepilogue\r\n";
    CHECK(count_mime_parts(m, 1000) == 2);
}

TEST_CASE("nested multipart with a folded Content-Type and a token boundary") {
    std::string m =
        "Content-Type: multipart/mixed;\r\n boundary=outer\r\n\r\n"
        "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        "--inner\r\n\r\nplain\r\n--inner\r\n\r\nhtml\r\n--inner--\r\n"
        "--outer\r\nContent-Type: application/pdf\r\n\r\nJVBERi0=\r\n--outer--\r\n";
    CHECK(count_mime_parts(m, 1000) == 4);
}

TEST_CASE("lines that merely look like delimiters") {
    std::string m =
        "Content-Type: text/plain\r\n\r\n--not-a-boundary\r\n--\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n";  // in the body, not a header
    CHECK(count_mime_parts(m, 1000) == 0);
}

TEST_CASE("counting stops early") {
    std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for (int i = 0; i < 5000; ++i) m += "--b\r\n\r\nx\r\n";
    CHECK(count_mime_parts(m, 1000) == 1001);
    CHECK(count_mime_parts(m, 100000) == 5000);
}
