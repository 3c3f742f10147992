// Header edits for plugins (header_add/header_values/header_remove) on messages of every
// shape a client or the API can hand in, including the odd edges fuzz_lua_helpers found.
#include "core/smtp/headers.h"

#include <catch2/catch.hpp>

using namespace kasi;
using V = std::vector<std::string>;

TEST_CASE("header_add: at the top and at the end of an ordinary header block") {
    std::string m = "From: a@b.c\r\nSubject: s\r\n\r\nbody\r\n";
    header_add(m, "X-Top", "1");
    header_add(m, "X-End", "2", true);
    CHECK(m == "X-Top: 1\r\nFrom: a@b.c\r\nSubject: s\r\nX-End: 2\r\n\r\nbody\r\n");
    CHECK(header_remove(m, "x-top") == 1);
    CHECK(header_values(m, "X-End") == V{"2"});
}

TEST_CASE("header_add: a message that starts with a continuation line") {
    // The sender's first line must not fold into the field a policy adds.
    for (bool at_end : {false, true}) {
        std::string m = " leading continuation\r\nX-A: c\r\n\r\nbody\r\n";
        header_add(m, "X-Tag", "v", at_end);
        CHECK(header_values(m, "X-Tag") == V{"v"});
        CHECK(m.find(" leading continuation\r\n") != std::string::npos);
    }
}

TEST_CASE("header_add: a header block without a final line end") {
    for (std::string m :
         {std::string("Subject: x"), std::string("From: \"@Ex"), std::string("From: a@b.c\n")}) {
        header_add(m, "X-Tag", "v", true);
        CHECK(header_values(m, "X-Tag") == V{"v"});
        CHECK(m.rfind("\r\nX-Tag: v\r\n") == m.size() - 12);
    }
    std::string empty;
    header_add(empty, "X-Tag", "v", true);
    CHECK(empty == "X-Tag: v\r\n");
}
