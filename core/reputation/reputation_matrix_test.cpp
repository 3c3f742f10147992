// The reputation matrix (reputation_matrix.h): full cells and roll-ups, queries, the bound
// on cells and the sweep of idle ones.
#include "core/reputation/reputation_matrix.h"

#include <catch2/catch.hpp>
#include <string>

using namespace kasi;

namespace {
const uint8_t rate_limited = rep_class_index("rate_limited");
const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;
}  // namespace

TEST_CASE("reputation matrix: an outcome counts in its cell and every roll-up") {
    ReputationMatrix m;
    m.record({"192.0.2.1", "news.example", "google", "acme"}, t0, RepOutcome::delivered, 0, 9);
    m.record({"192.0.2.1", "shop.example", "google", "acme"}, t0, RepOutcome::deferred,
             rate_limited, 1);
    m.record({"192.0.2.2", "news.example", "yahoo", ""}, t0, RepOutcome::delivered, 0, 5);
    auto ip_google = m.get({"192.0.2.1", "", "google", ""}, t0);
    REQUIRE(ip_google);
    CHECK(ip_google->totals.attempts() == 10);
    CHECK(ip_google->totals.of(RepOutcome::deferred, rate_limited) == 1);
    CHECK(ip_google->score < 100);
    auto full = m.get({"192.0.2.1", "news.example", "google", ""}, t0);
    REQUIRE(full);
    CHECK(full->totals.attempts() == 9);
    CHECK(full->score == 100);
    CHECK(m.get({"", "news.example", "yahoo", ""}, t0)->totals.attempts() == 5);
    CHECK(m.get({"", "", "", "acme"}, t0)->totals.attempts() == 10);
    CHECK_FALSE(m.get({"192.0.2.2", "", "google", ""}, t0));  // never sent there
    // cells: 3 full, 3 source x provider... (192.0.2.1/google, 192.0.2.2/yahoo), 3 domain
    // x provider (news/google, shop/google, news/yahoo), 1 tenant
    CHECK(m.size() == 3 + 2 + 3 + 1);
}

TEST_CASE("reputation matrix: queries filter and can keep to roll-ups") {
    ReputationMatrix m;
    for (int i = 0; i < 5; ++i)
        m.record({"192.0.2." + std::to_string(i), "d.example", i % 2 ? "google" : "yahoo", ""}, t0,
                 RepOutcome::delivered, 0, 1);
    RepFilter f;
    f.provider = "google";
    auto rows = m.query(f, t0);
    CHECK(rows.size() == 2 + 2 + 1);  // 2 full, 2 source x provider, 1 domain x provider
    f.rollups_only = true;
    CHECK(m.query(f, t0).size() == 3);
    f = {};
    f.source = "192.0.2.3";
    f.domain = "";
    rows = m.query(f, t0);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].key.provider == "google");
    CHECK(m.query({}, t0, 4).size() == 4);  // the limit
}

TEST_CASE("reputation matrix: bounded, and idle cells are swept") {
    ReputationMatrix m(10);
    for (int i = 0; i < 20; ++i)
        m.record({"192.0.2.1", "d" + std::to_string(i) + ".example", "google", ""}, t0,
                 RepOutcome::delivered, 0, 1);
    CHECK(m.dropped() > 0);
    // the source's roll-up never loses a count
    CHECK(m.get({"192.0.2.1", "", "google", ""}, t0)->totals.attempts() == 20);
    CHECK(m.sweep(t0 + 3600) == 0);
    size_t before = m.size();
    CHECK(before > 0);
    CHECK(m.sweep(t0 + 25 * 3600) == before);  // a day later every window is empty
    CHECK(m.size() == 0);
}
