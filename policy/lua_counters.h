// Counters for policies that count across messages, loops and reloads (warm-up volumes
// per IP, provider and day; anything a policy wants to ration). One store per process,
// shared by every Lua state of every generation, so a reload does not reset them; saved
// to the spool directory (counters.tsv) every few seconds and at shutdown, and read back
// at start, so a restart does not either. Each counter may expire (a per-day counter
// lives a couple of days); expired ones are dropped when touched and by the periodic save.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace kasi {

class CounterStore {
  public:
    static CounterStore& global();

    // Adds `n` (may be negative) and returns the new value. `ttl_s` > 0 (re)sets the
    // expiry to now + ttl_s; 0 keeps the current one (none for a new counter).
    int64_t add(const std::string& key, int64_t n, int64_t ttl_s, int64_t now_ms);
    int64_t get(const std::string& key, int64_t now_ms);
    size_t size();

    // Reads `path` (a missing file is an empty store); false with `err` if unreadable.
    bool load(const std::string& path, int64_t now_ms, std::string& err);
    // Writes the live counters to `path` (via a temporary file and rename) if anything
    // changed since the last save.
    bool save(const std::string& path, int64_t now_ms, std::string& err);

    static constexpr size_t max_counters = 1'000'000;
    static constexpr size_t max_key = 256;

  private:
    struct Entry {
        int64_t value = 0;
        int64_t expires_ms = 0;  // 0 = never
    };
    std::mutex mu_;
    std::unordered_map<std::string, Entry> map_;
    bool dirty_ = false;
};

}  // namespace kasi
