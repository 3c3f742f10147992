#include "plugins/limit/rate_table.h"

#include <algorithm>
#include <vector>

#include "core/util/strings.h"

namespace kasi {

std::optional<RateSpec> RateSpec::parse(std::string_view text) {
    text = trim(text);
    RateSpec r;
    auto slash = text.find('/');
    unsigned long long n;
    if (!parse_u64(text.substr(0, slash), n)) return std::nullopt;
    r.limit = n;
    if (slash == std::string_view::npos) return r;
    auto t = text.substr(slash + 1);
    uint64_t mult = 1000;
    if (!t.empty() && !std::isdigit(static_cast<unsigned char>(t.back()))) {
        switch (std::tolower(static_cast<unsigned char>(t.back()))) {
            case 's':
                mult = 1000;
                break;
            case 'm':
                mult = 60000;
                break;
            case 'h':
                mult = 3600000;
                break;
            case 'd':
                mult = 86400000;
                break;
            default:
                return std::nullopt;
        }
        t.remove_suffix(1);
    }
    unsigned long long q;
    if (!parse_u64(t, q) || q == 0) return std::nullopt;
    r.period_ms = q * mult;
    return r;
}

int64_t RateTable::concurrency_add(const std::string& key, int64_t delta) {
    std::lock_guard lk(mu_);
    auto& e = map_[key];
    e.gauge = std::max<int64_t>(0, e.gauge + delta);
    int64_t v = e.gauge;
    if (v == 0 && e.stamps.empty() && e.count == 0) map_.erase(key);
    return v;
}

uint64_t RateTable::sliding_hit(const std::string& key, const RateSpec& spec, int64_t now) {
    std::lock_guard lk(mu_);
    maybe_sweep(now);
    auto& e = map_[key];
    e.stamps.push_back(now);
    int64_t start = now - int64_t(spec.period_ms);
    while (!e.stamps.empty() && e.stamps.front() <= start) e.stamps.pop_front();
    while (e.stamps.size() > spec.limit + 1) e.stamps.pop_front();
    e.expires_ms = std::max(e.expires_ms, now + int64_t(spec.period_ms));
    return e.stamps.size();
}

uint64_t RateTable::fixed_hit(const std::string& key, const RateSpec& spec, int64_t now) {
    std::lock_guard lk(mu_);
    maybe_sweep(now);
    auto& e = map_[key];
    if (e.expires_ms <= now) {
        e.count = 0;
        e.expires_ms = now + int64_t(spec.period_ms);
    }
    return ++e.count;
}

uint64_t RateTable::fixed_peek(const std::string& key, int64_t now) {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || it->second.expires_ms <= now) return 0;
    return it->second.count;
}

size_t RateTable::keys() const {
    std::lock_guard lk(mu_);
    return map_.size();
}

void RateTable::maybe_sweep(int64_t now) {
    if (++ops_ % 4096 != 0 && map_.size() < max_keys_) return;
    for (auto it = map_.begin(); it != map_.end();) {
        if (it->second.gauge == 0 && it->second.expires_ms <= now)
            it = map_.erase(it);
        else
            ++it;
    }
    if (map_.size() < max_keys_) return;
    // Still full of live windows: drop the half that ends soonest.
    std::vector<int64_t> ends;
    for (const auto& [k, e] : map_)
        if (e.gauge == 0) ends.push_back(e.expires_ms);
    if (ends.empty()) return;
    auto mid = ends.begin() + long(ends.size() / 2);
    std::nth_element(ends.begin(), mid, ends.end());
    int64_t cut = *mid;
    for (auto it = map_.begin(); it != map_.end();) {
        if (it->second.gauge == 0 && it->second.expires_ms <= cut)
            it = map_.erase(it);
        else
            ++it;
    }
}

RateTable& limit_store() {
    static RateTable t;
    return t;
}

}  // namespace kasi
