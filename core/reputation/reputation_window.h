// One cell's memory of outcomes: how a (source, sending domain, provider) pair, or one of its
// roll-ups, fared over the last window (24 hours by default). The reputation matrix keeps
// one per active cell, so a window must be small when little happens and bounded when much
// does.
//
// Time is cut into buckets of `bucket_s` seconds (1 h by default) and the window covers the
// last `buckets` of them (24): the totals always cover the last buckets x bucket_s seconds
// (the current bucket partly). A window keeps one sorted vector of (bucket, outcome and
// class, count) entries, only for what happened: a cell that saw deliveries in one hour
// costs one 12-byte entry, a cell busy every hour with two kinds of outcome 48 entries, and
// an empty window nothing but the object. Counts saturate at 2^32 - 1.
//
// Rates are over attempts (delivered + deferred + bounced); the score (0..100) is what a
// warm-up or a router reads at a glance: 100 with nothing bad, down with the share of
// deferrals, more with bounces and blocks, most with complaints. Its weights are data the
// caller passes (shipped defaults in ScoreWeights), not constants of the window.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace kasi {

enum class RepOutcome : uint8_t { delivered, deferred, bounced, async_bounce, complaint };
constexpr size_t rep_outcome_count = 5;
std::string_view rep_outcome_name(RepOutcome o);

// What a window adds up to.
struct RepTotals {
    std::array<uint64_t, rep_outcome_count> by_outcome{};
    // (outcome, class index into known_classes()) -> count, for the outcomes that have classes
    std::vector<std::pair<std::pair<RepOutcome, uint8_t>, uint64_t>> by_class;

    uint64_t of(RepOutcome o) const { return by_outcome[size_t(o)]; }
    uint64_t of(RepOutcome o, uint8_t cls) const;
    uint64_t attempts() const;
    double rate(RepOutcome o) const;  // of attempts; 0 without attempts
};

struct ScoreWeights {
    double deferred = 0.5;      // points lost per percent of attempts deferred
    double bounced = 1.0;       // ... bounced
    double blocked = 3.0;       // ... deferred or bounced as reputation_block or spam_block
    double complaint = 100.0;   // ... complaints (0.3% of attempts costs 30 points)
    double async_bounce = 1.0;  // ... bounces that came back later
};
double rep_score(const RepTotals& t, const ScoreWeights& w = {});
// The start of the bucket of `bucket_s` seconds that time `t` (unix seconds) falls in.
int64_t rep_bucket_start(int64_t t, uint32_t bucket_s);
// The index of class `name` in known_classes() (the unknown class's when there is none).
uint8_t rep_class_index(std::string_view name);

// One bucket as kept (and as a snapshot writes it): its start and its sorted counts, keyed
// outcome * 64 + class index.
struct RepBucket {
    int64_t start = 0;  // unix seconds, a multiple of bucket_s
    std::vector<std::pair<uint16_t, uint32_t>> counts;
};

class ReputationWindow {
  public:
    explicit ReputationWindow(uint32_t bucket_s = 3600, uint16_t buckets = 24);

    // Counts `n` outcomes of class `cls` (an index into known_classes()) at `now`
    // (unix seconds). A time in the past (a report that came back late, a clock stepped
    // back) counts in its own bucket while the window still covers it, else in the oldest
    // bucket covered.
    void add(int64_t now, RepOutcome o, uint8_t cls, uint32_t n = 1);
    RepTotals totals(int64_t now) const;
    // Nothing counted within the window at `now`: the matrix may drop the cell.
    bool idle(int64_t now) const;
    size_t memory_bytes() const;

    // The buckets kept, oldest first (some may be older than the window at a later `now`),
    // as a snapshot writes them.
    std::vector<RepBucket> buckets() const;
    // Puts back a bucket a snapshot kept: counts with an unknown outcome are skipped, a start
    // that is not on a bucket boundary is rounded down, one already kept is added to.
    void restore(int64_t start, const std::vector<std::pair<uint16_t, uint32_t>>& counts);

  private:
    struct Entry {
        uint32_t bucket;  // start / bucket_s
        uint16_t key;     // outcome * 64 + class
        uint32_t count;
    };
    uint32_t bucket_of(int64_t now) const;
    bool live(uint32_t bucket, int64_t now) const;

    uint32_t bucket_s_;
    uint16_t span_buckets_;
    std::vector<Entry> entries_;  // sorted by (bucket, key)
};

}  // namespace kasi
