// log::reopen: the lines written before go to the renamed file, the ones after to the path.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/log/log.h"

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("log file reopen after a rename") {
    char tmpl[] = "/tmp/kasi-log-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl, path = dir + "/kasi.log";
    REQUIRE(kasi::log::set_file(path));
    kasi::log::notice("first line");
    REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
    kasi::log::notice("second line");
    REQUIRE(kasi::log::reopen());
    kasi::log::notice("third line");
    std::string old = slurp(path + ".1"), now = slurp(path);
    CHECK(old.find("first line") != std::string::npos);
    CHECK(old.find("second line") != std::string::npos);
    CHECK(old.find("third line") == std::string::npos);
    CHECK(now.find("third line") != std::string::npos);
    CHECK(now.find("first line") == std::string::npos);
    REQUIRE(kasi::log::set_file(""));  // back to stderr
    CHECK(kasi::log::reopen());        // nothing to do for stderr
    std::filesystem::remove_all(dir);
}
