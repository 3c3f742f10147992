// The resolver's answer cache: positive answers for their TTL (capped by max_ttl),
// NXDOMAIN and NODATA for the SOA's negative TTL (capped by negative_ttl, RFC 2308).
// Server failures and timeouts are not cached. Bounded by an entry count with LRU
// eviction. One cache per resolver, used by one loop: no locking.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/dns/dns_message.h"

namespace kasi {

class DnsCache {
  public:
    DnsCache(size_t max_entries, uint32_t max_ttl, uint32_t negative_ttl)
        : max_(max_entries), max_ttl_(max_ttl), neg_ttl_(negative_ttl) {}

    // The cached response with TTLs reduced by its age, or nullopt.
    std::optional<DnsResponse> get(const std::string& name, DnsType type, int64_t now_ms);
    void put(const std::string& name, DnsType type, const DnsResponse& r, int64_t now_ms);

    size_t size() const { return map_.size(); }
    uint64_t hits() const { return hits_; }
    uint64_t misses() const { return misses_; }

  private:
    struct Entry {
        DnsResponse resp;
        int64_t stored_ms;
        int64_t expires_ms;
        std::list<std::string>::iterator lru;
    };
    static std::string key(const std::string& name, DnsType type);

    size_t max_;
    uint32_t max_ttl_, neg_ttl_;
    std::unordered_map<std::string, Entry> map_;
    std::list<std::string> lru_;  // front = most recently used
    uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace kasi
