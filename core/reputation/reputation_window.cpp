#include "core/reputation/reputation_window.h"

#include <algorithm>
#include <limits>

#include "core/classify/taxonomy.h"

namespace kasi {

namespace {

constexpr uint16_t key_of(RepOutcome o, uint8_t cls) {
    return uint16_t(uint16_t(o) * 64 + (cls & 63));
}

int64_t floor_to(int64_t t, int64_t step) {
    int64_t q = t / step;
    if (t % step < 0) --q;
    return q * step;
}

}  // namespace

std::string_view rep_outcome_name(RepOutcome o) {
    static constexpr std::string_view names[] = {"delivered", "deferred", "bounced", "async_bounce",
                                                 "complaint"};
    return names[size_t(o)];
}

uint8_t rep_class_index(std::string_view name) {
    auto all = known_classes();
    for (size_t i = 0; i < all.size(); ++i)
        if (all[i] == name) return uint8_t(i);
    for (size_t i = 0; i < all.size(); ++i)
        if (all[i] == "unknown") return uint8_t(i);
    return 0;
}

uint64_t RepTotals::of(RepOutcome o, uint8_t cls) const {
    for (const auto& [k, n] : by_class)
        if (k.first == o && k.second == cls) return n;
    return 0;
}

uint64_t RepTotals::attempts() const {
    return of(RepOutcome::delivered) + of(RepOutcome::deferred) + of(RepOutcome::bounced);
}

double RepTotals::rate(RepOutcome o) const {
    uint64_t a = attempts();
    return a ? double(of(o)) / double(a) : 0.0;
}

double rep_score(const RepTotals& t, const ScoreWeights& w) {
    if (t.attempts() == 0) return 100.0;
    static const uint8_t reputation = rep_class_index("reputation_block");
    static const uint8_t spam = rep_class_index("spam_block");
    uint64_t blocked = 0;
    for (RepOutcome o : {RepOutcome::deferred, RepOutcome::bounced})
        blocked += t.of(o, reputation) + t.of(o, spam);
    double a = double(t.attempts());
    double lost = w.deferred * 100.0 * t.rate(RepOutcome::deferred) +
                  w.bounced * 100.0 * t.rate(RepOutcome::bounced) +
                  w.blocked * 100.0 * double(blocked) / a +
                  w.complaint * 100.0 * double(t.of(RepOutcome::complaint)) / a +
                  w.async_bounce * 100.0 * double(t.of(RepOutcome::async_bounce)) / a;
    return std::clamp(100.0 - lost, 0.0, 100.0);
}

ReputationWindow::ReputationWindow(uint32_t bucket_s, uint16_t buckets)
    : bucket_s_(bucket_s ? bucket_s : 1), span_buckets_(buckets ? buckets : 1) {}

bool ReputationWindow::live(const RepBucket& b, int64_t now) const {
    return b.start > floor_to(now, bucket_s_) - span();
}

RepBucket& ReputationWindow::bucket_at(int64_t now) {
    int64_t start = floor_to(now, bucket_s_);
    if (!buckets_.empty() && start < buckets_.back().start) {
        // in the past: the bucket it belongs to if still covered, else the oldest covered
        int64_t oldest = buckets_.back().start - span() + int64_t(bucket_s_);
        start = std::max(start, oldest);
    }
    auto it = std::lower_bound(buckets_.begin(), buckets_.end(), start,
                               [](const RepBucket& b, int64_t s) { return b.start < s; });
    if (it != buckets_.end() && it->start == start) return *it;
    it = buckets_.insert(it, RepBucket{start, {}});
    // what the newest bucket's window no longer covers goes
    int64_t first = buckets_.back().start - span() + int64_t(bucket_s_);
    size_t old = 0;
    while (old < buckets_.size() && buckets_[old].start < first) ++old;
    if (old == 0) return *it;
    size_t at = size_t(it - buckets_.begin());
    buckets_.erase(buckets_.begin(), buckets_.begin() + ptrdiff_t(old));
    return buckets_[at - old];
}

void ReputationWindow::add(int64_t now, RepOutcome o, uint8_t cls, uint32_t n) {
    if (now < 0 || n == 0) return;
    if (o == RepOutcome::delivered || o == RepOutcome::complaint) cls = 0;  // no class kept
    RepBucket& b = bucket_at(now);
    uint16_t key = key_of(o, cls);
    auto it = std::lower_bound(b.counts.begin(), b.counts.end(), key,
                               [](const auto& p, uint16_t k) { return p.first < k; });
    if (it == b.counts.end() || it->first != key) it = b.counts.insert(it, {key, 0});
    uint64_t sum = uint64_t(it->second) + n;
    it->second = uint32_t(std::min<uint64_t>(sum, std::numeric_limits<uint32_t>::max()));
}

void ReputationWindow::restore(int64_t start,
                               const std::vector<std::pair<uint16_t, uint32_t>>& counts) {
    for (const auto& [key, n] : counts) {
        if (key / 64 >= rep_outcome_count) continue;
        add(start, RepOutcome(key / 64), uint8_t(key % 64), n);
    }
}

RepTotals ReputationWindow::totals(int64_t now) const {
    RepTotals t;
    for (const auto& b : buckets_) {
        if (!live(b, now)) continue;
        for (const auto& [key, n] : b.counts) {
            auto o = RepOutcome(key / 64);
            auto cls = uint8_t(key % 64);
            t.by_outcome[size_t(o)] += n;
            if (o == RepOutcome::delivered || o == RepOutcome::complaint) continue;
            auto it = std::find_if(t.by_class.begin(), t.by_class.end(), [&](const auto& e) {
                return e.first.first == o && e.first.second == cls;
            });
            if (it == t.by_class.end())
                t.by_class.push_back({{o, cls}, n});
            else
                it->second += n;
        }
    }
    return t;
}

bool ReputationWindow::idle(int64_t now) const {
    for (const auto& b : buckets_)
        if (live(b, now) && !b.counts.empty()) return false;
    return true;
}

size_t ReputationWindow::memory_bytes() const {
    size_t n = sizeof(*this) + buckets_.capacity() * sizeof(RepBucket);
    for (const auto& b : buckets_) n += b.counts.capacity() * sizeof(b.counts[0]);
    return n;
}

}  // namespace kasi
