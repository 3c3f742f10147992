#include <catch2/catch.hpp>

#include <string>

#include "core/smtp/client/dot_stuff.h"

using namespace kasi;

namespace {
// What a receiver sees: every CR is followed by LF and every LF preceded by CR.
bool only_crlf(const std::string& s) {
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return true;
}
}  // namespace

TEST_CASE("dot-stuffing: bare CR becomes CRLF, and the line it starts is stuffed") {
    std::string out;
    append_dot_stuffed(out, "a\r.\rb\r\n");
    CHECK(out == "a\r\n..\r\nb\r\n.\r\n");
    out.clear();
    append_dot_stuffed(out, "x\r\r\n.\r\n");  // CR CR LF: the first CR is bare
    CHECK(out == "x\r\n\r\n..\r\n.\r\n");
    out.clear();
    append_dot_stuffed(out, "end\r");  // a last CR with nothing after it
    CHECK(out == "end\r\n.\r\n");
    out.clear();
    append_dot_stuffed(out, "\r.\n.");
    CHECK(out == "\r\n..\r\n..\r\n.\r\n");
}

TEST_CASE("dot-stuffing: no bare CR or LF whatever the input") {
    // every string of up to 6 bytes over {a, ., CR, LF}: the wire form has only CRLF line
    // ends, ends with CRLF.CRLF and contains no other terminator line
    const char alphabet[] = {'a', '.', '\r', '\n'};
    for (int len = 0; len <= 6; ++len) {
        int total = 1;
        for (int i = 0; i < len; ++i) total *= 4;
        for (int n = 0; n < total; ++n) {
            std::string in;
            for (int i = 0, v = n; i < len; ++i, v /= 4) in += alphabet[v % 4];
            std::string out;
            append_dot_stuffed(out, in);
            INFO("input #" << n << " of length " << len);
            CHECK(only_crlf(out));
            REQUIRE(out.size() >= 3);
            CHECK(out.compare(out.size() - 3, 3, ".\r\n") == 0);
            std::string wire = "\r\n" + out;
            CHECK(wire.find("\r\n.\r\n") == wire.size() - 5);
        }
    }
}
