// EventLog::reopen: after a rename (what logrotate does) every record is in exactly one of
// the two files, the buffered ones in the renamed file; a path that cannot be opened
// keeps the old file in use.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/queue/events.h"

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/kasi-events-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    return tmpl;
}

int lines(const std::string& path) {
    std::ifstream f(path);
    std::string l;
    int n = 0;
    while (std::getline(f, l)) ++n;
    return n;
}

}  // namespace

TEST_CASE("event log reopen after a rename: nothing lost, nothing twice") {
    std::string dir = temp_dir(), path = dir + "/events.jsonl";
    kasi::EventLog ev;
    std::string err;
    REQUIRE(ev.open(path, err));
    for (int i = 0; i < 3; ++i) ev.other("{\"before\":" + std::to_string(i) + "}");
    ev.flush();
    REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
    for (int i = 0; i < 2; ++i) ev.other("{\"buffered\":" + std::to_string(i) + "}");
    REQUIRE(ev.reopen(err));
    for (int i = 0; i < 4; ++i) ev.other("{\"after\":" + std::to_string(i) + "}");
    ev.flush();
    CHECK(lines(path + ".1") == 5);
    CHECK(lines(path) == 4);
    ev.close();
    std::filesystem::remove_all(dir);
}

TEST_CASE("event log reopen that fails keeps writing to the old file") {
    std::string dir = temp_dir(), path = dir + "/events.jsonl";
    kasi::EventLog ev;
    std::string err;
    REQUIRE(ev.open(path, err));
    ev.other("{\"a\":1}");
    REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);  // the path can no longer be opened
    CHECK_FALSE(ev.reopen(err));
    CHECK(err.find("still writing") != std::string::npos);
    ev.other("{\"a\":2}");
    ev.flush();
    CHECK(lines(path + ".1") == 2);
    ev.close();
    std::filesystem::remove_all(dir);
}
