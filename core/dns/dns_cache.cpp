#include "core/dns/dns_cache.h"

#include "core/metrics/metrics.h"

#include <algorithm>

namespace kasi {

std::string DnsCache::key(const std::string& name, DnsType type) {
    return std::to_string(uint16_t(type)) + "/" + name;
}

std::optional<DnsResponse> DnsCache::get(const std::string& name, DnsType type, int64_t now) {
    auto it = map_.find(key(name, type));
    if (it == map_.end() || it->second.expires_ms <= now) {
        if (it != map_.end()) {
            lru_.erase(it->second.lru);
            map_.erase(it);
        }
        ++misses_;
        CoreMetrics::global().dns_misses.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }
    ++hits_;
    CoreMetrics::global().dns_hits.fetch_add(1, std::memory_order_relaxed);
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    DnsResponse r = it->second.resp;
    uint32_t age = uint32_t((now - it->second.stored_ms) / 1000);
    for (auto& rec : r.records) rec.ttl = rec.ttl > age ? rec.ttl - age : 0;
    return r;
}

void DnsCache::put(const std::string& name, DnsType type, const DnsResponse& r, int64_t now) {
    if (max_ == 0) return;
    uint32_t ttl;
    if (r.status == DnsStatus::ok && !r.records.empty()) {
        ttl = r.records.front().ttl;
        for (const auto& rec : r.records) ttl = std::min(ttl, rec.ttl);
        ttl = std::min(ttl, max_ttl_);
    } else if (r.status == DnsStatus::nxdomain || r.status == DnsStatus::nodata) {
        ttl = std::min(r.negative_ttl, neg_ttl_);
    } else {
        return;
    }
    if (ttl == 0) return;
    std::string k = key(name, type);
    if (auto it = map_.find(k); it != map_.end()) {
        lru_.erase(it->second.lru);
        map_.erase(it);
    }
    while (map_.size() >= max_ && !lru_.empty()) {
        map_.erase(lru_.back());
        lru_.pop_back();
    }
    lru_.push_front(k);
    map_.emplace(k, Entry{r, now, now + int64_t(ttl) * 1000, lru_.begin()});
}

}  // namespace kasi
