// The sliding window of one reputation cell (reputation_window.h): what it adds up, what
// leaves it as time passes, and the score.
#include "core/reputation/reputation_window.h"

#include <catch2/catch.hpp>

using namespace kasi;

namespace {
const uint8_t rate_limited = rep_class_index("rate_limited");
const uint8_t invalid = rep_class_index("invalid_recipient");
const uint8_t reputation = rep_class_index("reputation_block");
}  // namespace

TEST_CASE("reputation window: counts by outcome and class within the window") {
    ReputationWindow w(3600, 24);
    const int64_t t0 = 1'800'000'000;
    w.add(t0, RepOutcome::delivered, 0, 90);
    w.add(t0 + 60, RepOutcome::deferred, rate_limited, 6);
    w.add(t0 + 7200, RepOutcome::bounced, invalid, 4);
    auto t = w.totals(t0 + 7200);
    CHECK(t.attempts() == 100);
    CHECK(t.of(RepOutcome::delivered) == 90);
    CHECK(t.of(RepOutcome::deferred, rate_limited) == 6);
    CHECK(t.of(RepOutcome::bounced, invalid) == 4);
    CHECK(t.of(RepOutcome::bounced, rate_limited) == 0);
    CHECK(t.rate(RepOutcome::deferred) == Approx(0.06));
    CHECK_FALSE(w.idle(t0 + 7200));
}

TEST_CASE("reputation window: old buckets leave, and an idle window says so") {
    ReputationWindow w(3600, 24);
    const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;
    w.add(t0, RepOutcome::deferred, rate_limited, 10);
    w.add(t0 + 5 * 3600, RepOutcome::delivered, 0, 3);
    CHECK(w.totals(t0 + 23 * 3600).of(RepOutcome::deferred) == 10);
    CHECK(w.totals(t0 + 24 * 3600).of(RepOutcome::deferred) == 0);  // 24 h later: gone
    CHECK(w.totals(t0 + 24 * 3600).of(RepOutcome::delivered) == 3);
    CHECK(w.idle(t0 + 29 * 3600));
    // a bucket that comes round again starts empty
    w.add(t0 + 48 * 3600, RepOutcome::delivered, 0, 1);
    CHECK(w.totals(t0 + 48 * 3600).of(RepOutcome::delivered) == 1);
}

TEST_CASE("reputation window: late outcomes count in their hour, or the oldest one covered") {
    ReputationWindow w(3600, 24);
    const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;
    w.add(t0 + 10 * 3600, RepOutcome::delivered, 0, 1);
    w.add(t0 + 2 * 3600, RepOutcome::async_bounce, invalid, 1);  // a DSN about 8 h ago
    CHECK(w.totals(t0 + 10 * 3600).of(RepOutcome::async_bounce) == 1);
    CHECK(w.totals(t0 + 26 * 3600).of(RepOutcome::async_bounce) == 0);  // left with its hour
    w.add(t0 - 100 * 3600, RepOutcome::complaint, 0, 1);                // far older than the window
    CHECK(w.totals(t0 + 10 * 3600).of(RepOutcome::complaint) == 1);
}

TEST_CASE("reputation window: counts saturate instead of wrapping") {
    ReputationWindow w(60, 2);
    w.add(1000, RepOutcome::delivered, 0, 4'000'000'000u);
    w.add(1000, RepOutcome::delivered, 0, 4'000'000'000u);
    CHECK(w.totals(1000).of(RepOutcome::delivered) == 4'294'967'295u);
}

TEST_CASE("reputation score: deferrals cost a little, blocks more, complaints most") {
    RepTotals clean;
    clean.by_outcome[size_t(RepOutcome::delivered)] = 1000;
    CHECK(rep_score(clean) == 100.0);
    CHECK(rep_score(RepTotals{}) == 100.0);  // nothing known: nothing against it

    ReputationWindow deferring, blocked, complained;
    deferring.add(0, RepOutcome::delivered, 0, 900);
    deferring.add(0, RepOutcome::deferred, rate_limited, 100);
    blocked.add(0, RepOutcome::delivered, 0, 900);
    blocked.add(0, RepOutcome::deferred, reputation, 100);
    complained.add(0, RepOutcome::delivered, 0, 1000);
    complained.add(0, RepOutcome::complaint, 0, 3);
    double d = rep_score(deferring.totals(0)), b = rep_score(blocked.totals(0)),
           c = rep_score(complained.totals(0));
    CHECK(d == Approx(95.0));  // 10% deferred x 0.5
    CHECK(b < d);              // the same share, as blocks
    CHECK(c == Approx(70.0));  // 0.3% complaints x 100
    ScoreWeights lenient;
    lenient.complaint = 10;
    CHECK(rep_score(complained.totals(0), lenient) == Approx(97.0));
}

TEST_CASE("reputation window: small when little happens") {
    ReputationWindow w;
    size_t empty = w.memory_bytes();
    CHECK(empty == sizeof(ReputationWindow));  // nothing happened: no bucket
    for (int h = 0; h < 24; ++h) w.add(h * 3600, RepOutcome::delivered, 0, 50);
    // one 12-byte entry per hour (the vector may have grown past 24)
    CHECK(w.memory_bytes() - empty <= 32 * 12);
    CHECK(w.buckets().size() == 24);
    w.add(40 * 3600, RepOutcome::delivered, 0, 1);  // the old hours leave as new ones come
    CHECK(w.buckets().size() == 8);
}

TEST_CASE("reputation window: buckets put back from a snapshot add up as before") {
    ReputationWindow w(3600, 24), back(3600, 24);
    const int64_t t0 = 1'800'000'000 - 1'800'000'000 % 3600;
    w.add(t0, RepOutcome::delivered, 0, 7);
    w.add(t0 + 3600, RepOutcome::deferred, rate_limited, 2);
    w.add(t0 + 3600, RepOutcome::complaint, 0, 1);
    for (const auto& b : w.buckets()) back.restore(b.start, b.counts);
    back.restore(t0 + 3600 + 17, {{uint16_t(63 * 64), 5}});  // unknown outcome: skipped
    auto a = w.totals(t0 + 3600), r = back.totals(t0 + 3600);
    CHECK(r.by_outcome == a.by_outcome);
    CHECK(r.of(RepOutcome::deferred, rate_limited) == 2);
}
