#include "core/reputation/reputation_matrix.h"

namespace kasi {

namespace {

bool matches(const std::optional<std::string>& want, const std::string& have) {
    return !want || *want == have;
}

bool is_rollup(const RepKey& k) {
    return k.source.empty() || k.domain.empty() || k.provider.empty();
}

}  // namespace

ReputationMatrix::ReputationMatrix(size_t max_cells, uint32_t bucket_s, uint16_t buckets)
    : max_cells_(max_cells), bucket_s_(bucket_s), buckets_(buckets) {}

void ReputationMatrix::count(const RepKeyView& k, bool may_create, int64_t now, RepOutcome o,
                             uint8_t cls, uint32_t n) {
    auto it = cells_.find(k);
    if (it == cells_.end()) {
        if (!may_create) {
            dropped_ += n;
            return;
        }
        RepKey key{std::string(k.source), std::string(k.domain), std::string(k.provider),
                   std::string(k.tenant)};
        it = cells_.emplace(std::move(key), ReputationWindow(bucket_s_, buckets_)).first;
    }
    it->second.add(now, o, cls, n);
}

void ReputationMatrix::record(const RepKeyView& k, int64_t now, RepOutcome o, uint8_t cls,
                              uint32_t n) {
    std::lock_guard lk(mu_);
    bool room = cells_.size() < max_cells_;
    if (!k.source.empty() && !k.domain.empty() && !k.provider.empty())
        count({k.source, k.domain, k.provider, ""}, room, now, o, cls, n);
    if (!k.source.empty() && !k.provider.empty())
        count({k.source, "", k.provider, ""}, true, now, o, cls, n);
    if (!k.domain.empty() && !k.provider.empty())
        count({"", k.domain, k.provider, ""}, true, now, o, cls, n);
    if (!k.tenant.empty()) count({"", "", "", k.tenant}, true, now, o, cls, n);
}

void ReputationMatrix::visit(
    const std::function<void(const RepKey&, const ReputationWindow&)>& fn) const {
    std::lock_guard lk(mu_);
    for (const auto& [k, w] : cells_) fn(k, w);
}

void ReputationMatrix::restore(const RepKey& k, int64_t start,
                               const std::vector<std::pair<uint16_t, uint32_t>>& counts) {
    std::lock_guard lk(mu_);
    auto it = cells_.find(k);
    if (it == cells_.end()) it = cells_.emplace(k, ReputationWindow(bucket_s_, buckets_)).first;
    it->second.restore(start, counts);
}

void ReputationMatrix::set_max_cells(size_t n) {
    std::lock_guard lk(mu_);
    max_cells_ = n;
}

std::optional<RepRow> ReputationMatrix::get(const RepKey& k, int64_t now,
                                            const ScoreWeights& w) const {
    std::lock_guard lk(mu_);
    auto it = cells_.find(k);
    if (it == cells_.end()) return std::nullopt;
    RepRow r{k, it->second.totals(now), 100};
    r.score = rep_score(r.totals, w);
    return r;
}

std::vector<RepRow> ReputationMatrix::query(const RepFilter& f, int64_t now, size_t limit,
                                            const ScoreWeights& w) const {
    std::vector<RepRow> out;
    std::lock_guard lk(mu_);
    for (const auto& [k, win] : cells_) {
        if (out.size() >= limit) break;
        if (f.rollups_only && !is_rollup(k)) continue;
        if (!matches(f.source, k.source) || !matches(f.domain, k.domain) ||
            !matches(f.provider, k.provider) || !matches(f.tenant, k.tenant))
            continue;
        RepRow r{k, win.totals(now), 100};
        r.score = rep_score(r.totals, w);
        out.push_back(std::move(r));
    }
    return out;
}

size_t ReputationMatrix::sweep(int64_t now) {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (auto it = cells_.begin(); it != cells_.end();) {
        if (it->second.idle(now)) {
            it = cells_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

size_t ReputationMatrix::size() const {
    std::lock_guard lk(mu_);
    return cells_.size();
}

uint64_t ReputationMatrix::dropped() const {
    std::lock_guard lk(mu_);
    return dropped_;
}

}  // namespace kasi
