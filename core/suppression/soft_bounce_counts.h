// Soft bounces counted per address, so that an address that keeps soft-bouncing (a full
// mailbox for weeks, a disabled account answered with 4xx) is suppressed once it reaches
// suppression.ini's soft_bounce_threshold within soft_bounce_window.
//
// Each address keeps the times of its recent soft bounces (at most `threshold` of them are
// ever needed). The counts survive restarts: they are saved to a small file in the
// suppression directory (soft-bounces.tsv: `address TAB time TAB time ...`, written to a
// temporary file and renamed) every few seconds by the suppression service's thread and at
// stop, and read back at start. A crash loses at most the counts of the last few seconds,
// which only delays a suppression by as many soft bounces; nothing acknowledged depends
// on them. Bounded: past max_addresses the oldest-looking half is forgotten.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace kasi {

class SoftBounceCounts {
  public:
    static constexpr size_t max_addresses = 1'000'000;

    // Counts a soft bounce of `address` (normalized) at `now`; true when it makes
    // `threshold` within `window_s` (the count then starts again). Any thread.
    bool note(const std::string& address, int64_t now, int threshold, int64_t window_s);
    size_t size() const;

    // Reads `path` (a missing file is no counts); lines that do not parse are skipped.
    bool load(const std::string& path, std::string& err);
    // Writes the counts still inside `window_s` if anything changed since the last save.
    bool save(const std::string& path, int64_t now, int64_t window_s, std::string& err);

  private:
    void trim_locked();

    mutable std::mutex mu_;
    std::unordered_map<std::string, std::deque<int64_t>> times_;
    bool dirty_ = false;
};

}  // namespace kasi
