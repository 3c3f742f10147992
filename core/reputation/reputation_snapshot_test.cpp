// The reputation matrix written to disk and read back (reputation_snapshot.h): the same
// totals after a round trip, odd names survive, damaged lines cost only themselves.
#include "core/reputation/reputation_snapshot.h"

#include <catch2/catch.hpp>

using namespace kasi;

namespace {
const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;
const uint8_t rate_limited = rep_class_index("rate_limited");

RepTotals totals(const ReputationMatrix& m, const RepKey& k, int64_t now) {
    auto r = m.get(k, now);
    return r ? r->totals : RepTotals{};
}
}  // namespace

TEST_CASE("reputation snapshot: a round trip keeps every cell's totals") {
    ReputationMatrix m;
    m.record({"ip1", "shop.example", "gmail", "acme"}, t0, RepOutcome::delivered, 0, 40);
    m.record({"ip1", "shop.example", "gmail", "acme"}, t0 + 3600, RepOutcome::deferred,
             rate_limited, 3);
    m.record({"ip2", "news.example", "yahoo", ""}, t0 + 7200, RepOutcome::complaint, 0, 1);
    std::string text = write_reputation_snapshot(m);
    REQUIRE(text.rfind("kasi-reputation 1 3600 24\n", 0) == 0);

    ReputationMatrix back;
    SnapshotRead st;
    std::string err;
    REQUIRE(read_reputation_snapshot(text, back, t0 + 7200, st, err));
    CHECK(st.bad_lines == 0);
    CHECK(back.size() == m.size());
    for (const auto& row : m.query({}, t0 + 7200)) {
        auto got = totals(back, row.key, t0 + 7200);
        CHECK(got.by_outcome == row.totals.by_outcome);
    }
    CHECK(
        totals(back, {"ip1", "", "gmail", ""}, t0 + 7200).of(RepOutcome::deferred, rate_limited) ==
        3);
    CHECK(write_reputation_snapshot(back) == text);
}

TEST_CASE("reputation snapshot: names with tabs, newlines and percent signs survive") {
    ReputationMatrix m, back;
    RepKey odd{"a\tb", "x%y.example", "p\nq", "t\r"};
    m.record({odd.source, odd.domain, odd.provider, odd.tenant}, t0, RepOutcome::delivered, 0);
    std::string text = write_reputation_snapshot(m);
    CHECK(text.find("a%09b") != std::string::npos);
    CHECK(text.find("x%25y") != std::string::npos);
    SnapshotRead st;
    std::string err;
    REQUIRE(read_reputation_snapshot(text, back, t0, st, err));
    CHECK(st.bad_lines == 0);
    CHECK(totals(back, {odd.source, odd.domain, odd.provider, ""}, t0).of(RepOutcome::delivered) ==
          1);
}

TEST_CASE("reputation snapshot: a damaged line is skipped, a foreign file refused") {
    std::string text =
        "kasi-reputation 1 3600 24\n"
        "b\t" +
        std::to_string(t0) +
        "\t0:5\n"  // a bucket before any cell
        "c\tip1\t\tgmail\t\n"
        "b\t" +
        std::to_string(t0) +
        "\t0:5,64:x\n"  // a count that is not a number
        "b\t" +
        std::to_string(t0) +
        "\t0:5\n"
        "c\tip1\t%G1\tgmail\t\n"  // a bad escape: its buckets too
        "b\t" +
        std::to_string(t0) +
        "\t0:9\n"
        "x\tsomething\n"
        "b\t" +
        std::to_string(t0 - 30 * 3600) + "\t0:9\n";  // older than the window
    ReputationMatrix m;
    SnapshotRead st;
    std::string err;
    REQUIRE(read_reputation_snapshot(text, m, t0, st, err));
    CHECK(st.cells == 1);
    CHECK(st.buckets == 1);
    CHECK(st.bad_lines == 6);
    CHECK(st.first_bad_line == 2);
    CHECK(totals(m, {"ip1", "", "gmail", ""}, t0).of(RepOutcome::delivered) == 5);

    ReputationMatrix other;
    CHECK_FALSE(read_reputation_snapshot("address\ttime\n", other, t0, st, err));
    CHECK(err.find("not a reputation snapshot") != std::string::npos);
    CHECK_FALSE(read_reputation_snapshot("", other, t0, st, err));
}
