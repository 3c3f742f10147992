// Soft bounce counting (soft_bounce_counts.h): the threshold within the window, and the
// counts kept across a save and a load.
#include "core/suppression/soft_bounce_counts.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace kasi;
namespace fs = std::filesystem;

namespace {

struct TempFile {
    std::string path;
    TempFile() {
        char tmpl[] = "/tmp/kasi-soft-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ::close(fd);
        path = tmpl;
        fs::remove(path);
    }
    ~TempFile() {
        fs::remove(path);
        fs::remove(path + ".tmp");
    }
};

}  // namespace

TEST_CASE("soft bounces: the threshold within the window, then the count starts again") {
    SoftBounceCounts c;
    const int64_t day = 86400;
    CHECK_FALSE(c.note("a@example.com", 1000, 3, 7 * day));
    CHECK_FALSE(c.note("a@example.com", 1000 + day, 3, 7 * day));
    CHECK_FALSE(c.note("b@example.com", 1000 + day, 3, 7 * day));  // another address
    CHECK(c.note("a@example.com", 1000 + 2 * day, 3, 7 * day));
    CHECK_FALSE(c.note("a@example.com", 1000 + 3 * day, 3, 7 * day));  // counting anew
    // spread wider than the window: the old ones no longer count
    CHECK_FALSE(c.note("c@example.com", 0, 3, 7 * day));
    CHECK_FALSE(c.note("c@example.com", 6 * day, 3, 7 * day));
    CHECK_FALSE(c.note("c@example.com", 8 * day, 3, 7 * day));
    CHECK(c.note("c@example.com", 9 * day, 3, 7 * day));
    CHECK_FALSE(c.note("d@example.com", 0, 0, 7 * day));  // threshold 0: never
}

TEST_CASE("soft bounces: counts survive a save and a load; old ones are dropped") {
    TempFile f;
    const int64_t day = 86400;
    {
        SoftBounceCounts c;
        std::string err;
        REQUIRE(c.load(f.path, err));  // no file yet: no counts
        CHECK_FALSE(c.note("a@example.com", 10 * day, 3, 7 * day));
        CHECK_FALSE(c.note("a@example.com", 11 * day, 3, 7 * day));
        CHECK_FALSE(c.note("old@example.com", 1 * day, 3, 7 * day));
        REQUIRE(c.save(f.path, 12 * day, 7 * day, err));
    }
    SoftBounceCounts c;
    std::string err;
    REQUIRE(c.load(f.path, err));
    CHECK(c.size() == 1);  // old@ was outside the window at the save
    CHECK(c.note("a@example.com", 12 * day, 3, 7 * day));
}

TEST_CASE("soft bounces: a damaged file loads what it can") {
    TempFile f;
    {
        std::ofstream o(f.path);
        o << "a@example.com\t100\t200\n"
          << "garbage line\n"
          << "\t\t\n"
          << "b@example.com\tnotanumber\t300\n";
    }
    SoftBounceCounts c;
    std::string err;
    REQUIRE(c.load(f.path, err));
    CHECK(c.size() == 2);
    CHECK(c.note("a@example.com", 300, 3, 1000));
    CHECK(c.note("b@example.com", 301, 2, 1000));
}
