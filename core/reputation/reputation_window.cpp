#include "core/reputation/reputation_window.h"

#include <algorithm>
#include <limits>

#include "core/classify/taxonomy.h"

namespace kasi {

namespace {

constexpr uint16_t key_of(RepOutcome o, uint8_t cls) {
    return uint16_t(uint16_t(o) * 64 + (cls & 63));
}

}  // namespace

int64_t rep_bucket_start(int64_t t, uint32_t bucket_s) {
    int64_t step = bucket_s ? bucket_s : 1, q = t / step;
    if (t % step < 0) --q;
    return q * step;
}

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

bool ReputationWindow::live(uint32_t bucket, int64_t now) const {
    return int64_t(bucket) > rep_bucket_start(now, bucket_s_) / bucket_s_ - span_buckets_;
}

// The bucket `now` counts in: its own, or the oldest one the window covers.
uint32_t ReputationWindow::bucket_of(int64_t now) const {
    int64_t b = rep_bucket_start(now, bucket_s_) / bucket_s_;
    if (!entries_.empty())
        b = std::max<int64_t>(b, int64_t(entries_.back().bucket) - span_buckets_ + 1);
    return uint32_t(std::clamp<int64_t>(b, 0, std::numeric_limits<uint32_t>::max()));
}

void ReputationWindow::add(int64_t now, RepOutcome o, uint8_t cls, uint32_t n) {
    if (now < 0 || n == 0) return;
    if (o == RepOutcome::delivered || o == RepOutcome::complaint) cls = 0;  // no class kept
    uint32_t b = bucket_of(now);
    uint16_t key = key_of(o, cls);
    auto less = [](const Entry& e, std::pair<uint32_t, uint16_t> k) {
        return std::pair(e.bucket, e.key) < k;
    };
    auto it = std::lower_bound(entries_.begin(), entries_.end(), std::pair(b, key), less);
    if (it == entries_.end() || it->bucket != b || it->key != key)
        it = entries_.insert(it, Entry{b, key, 0});
    uint64_t sum = uint64_t(it->count) + n;
    it->count = uint32_t(std::min<uint64_t>(sum, std::numeric_limits<uint32_t>::max()));
    // what the newest bucket's window no longer covers goes
    int64_t first = int64_t(entries_.back().bucket) - span_buckets_ + 1;
    size_t old = 0;
    while (old < entries_.size() && int64_t(entries_[old].bucket) < first) ++old;
    if (old) entries_.erase(entries_.begin(), entries_.begin() + ptrdiff_t(old));
}

std::vector<RepBucket> ReputationWindow::buckets() const {
    std::vector<RepBucket> out;
    for (const auto& e : entries_) {
        int64_t start = int64_t(e.bucket) * bucket_s_;
        if (out.empty() || out.back().start != start) out.push_back(RepBucket{start, {}});
        out.back().counts.emplace_back(e.key, e.count);
    }
    return out;
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
    for (const auto& e : entries_) {
        if (!live(e.bucket, now)) continue;
        auto o = RepOutcome(e.key / 64);
        auto cls = uint8_t(e.key % 64);
        t.by_outcome[size_t(o)] += e.count;
        if (o == RepOutcome::delivered || o == RepOutcome::complaint) continue;
        auto it = std::find_if(t.by_class.begin(), t.by_class.end(), [&](const auto& c) {
            return c.first.first == o && c.first.second == cls;
        });
        if (it == t.by_class.end())
            t.by_class.push_back({{o, cls}, e.count});
        else
            it->second += e.count;
    }
    return t;
}

bool ReputationWindow::idle(int64_t now) const {
    return entries_.empty() || !live(entries_.back().bucket, now);
}

size_t ReputationWindow::memory_bytes() const {
    return sizeof(*this) + entries_.capacity() * sizeof(Entry);
}

}  // namespace kasi
