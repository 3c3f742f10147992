// In-memory counters for the limit plugin, shared by every event loop (one mutex; each
// operation is a hash lookup) and kept across config reloads (the store is process-wide).
//   - concurrency: a gauge per key (connections open now);
//   - sliding windows: timestamps of the last `limit + 1` events per key, so "more than N
//     in the last T seconds" is exact with bounded memory (rate_conn);
//   - fixed windows: a count that resets T seconds after the first event, as Haraka's
//     redis INCR + EXPIRE (rate_rcpt_*).
// Keys whose windows have passed are swept every few thousand operations, and the number
// of keys is capped (the oldest windows go first), so a scan from many addresses cannot
// exhaust memory.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kasi {

// "N" or "N/T" with T in s (default), m, h, d; no T means 60 s. "0" means unlimited.
struct RateSpec {
    uint64_t limit = 0;  // 0 = unlimited
    uint64_t period_ms = 60000;
    static std::optional<RateSpec> parse(std::string_view text);
};

class RateTable {
  public:
    explicit RateTable(size_t max_keys = 200000) : max_keys_(max_keys) {}

    int64_t concurrency_add(const std::string& key, int64_t delta);

    // Records an event now and returns how many happened in the last spec.period_ms
    // (capped at spec.limit + 1).
    uint64_t sliding_hit(const std::string& key, const RateSpec& spec, int64_t now_ms);
    // Increments the fixed-window counter; returns the count in the current window.
    uint64_t fixed_hit(const std::string& key, const RateSpec& spec, int64_t now_ms);
    // The count in the current fixed window without recording anything.
    uint64_t fixed_peek(const std::string& key, int64_t now_ms);

    size_t keys() const;  // for tests

  private:
    struct Entry {
        std::deque<int64_t> stamps;  // sliding
        uint64_t count = 0;          // fixed
        int64_t expires_ms = 0;      // fixed window end, or last stamp + period for sliding
        int64_t gauge = 0;           // concurrency
    };
    void maybe_sweep(int64_t now_ms);

    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> map_;
    size_t max_keys_;
    uint64_t ops_ = 0;
};

// The process-wide store used by the limit plugin.
RateTable& limit_store();

}  // namespace kasi
