// The reputation matrix: how each (egress source, sending domain, provider) fares, and its
// roll-ups, as sliding windows of outcomes (reputation_window.h).
//
//   cell                                   updated by every outcome of
//   source x domain x provider             that source, sending domain and provider
//   source x * x provider                  that source at that provider (what a warm-up
//                                          or an IP's throttle acts on)
//   * x domain x provider                  that sending domain at that provider
//   tenant                                 that tenant, anywhere
//
// Sparse: only cells that saw something exist (10,000 sources x 10,000 domains x 20
// providers are never kept densely), and a cell whose window holds nothing is dropped by
// sweep(). Bounded: past max_cells, new full cells are not created, and `dropped()` says
// how many outcomes went uncounted that way; roll-ups are still created (there are far
// fewer of them: sources x providers + domains x providers + tenants), so no outcome is
// lost to the per-source and per-domain views.
// Thread-safe: a mutex guards the map; the delivery loop records, the admin API reads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/reputation/reputation_window.h"

namespace kasi {

struct RepKey {
    std::string source, domain, provider, tenant;  // "" = any (a roll-up)
    auto tie() const { return std::tie(source, domain, provider, tenant); }
    bool operator<(const RepKey& o) const { return tie() < o.tie(); }
    bool operator==(const RepKey& o) const { return tie() == o.tie(); }
};

// A key made of views, to look a cell up without building strings (every outcome looks up
// four cells).
struct RepKeyView {
    std::string_view source, domain, provider, tenant;
};

struct RepKeyLess {
    using is_transparent = void;
    static auto view(const RepKey& k) {
        return std::tuple<std::string_view, std::string_view, std::string_view, std::string_view>(
            k.source, k.domain, k.provider, k.tenant);
    }
    static auto view(const RepKeyView& k) {
        return std::tuple(k.source, k.domain, k.provider, k.tenant);
    }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return view(a) < view(b);
    }
};

struct RepRow {
    RepKey key;
    RepTotals totals;
    double score = 100;
};

struct RepFilter {
    std::optional<std::string> source, domain, provider, tenant;  // unset: any
    bool rollups_only = false;
};

class ReputationMatrix {
  public:
    explicit ReputationMatrix(size_t max_cells = 200'000, uint32_t bucket_s = 3600,
                              uint16_t buckets = 24);

    // One outcome (or `n`) of a delivery from `source` for `domain` at `provider` (and
    // `tenant`, when known) at `now`: the full cell and its roll-ups.
    void record(const RepKeyView& k, int64_t now, RepOutcome o, uint8_t cls, uint32_t n = 1);
    // The cell `k` names exactly (use "" for the roll-up's wildcards); none if it saw nothing.
    std::optional<RepRow> get(const RepKey& k, int64_t now, const ScoreWeights& w = {}) const;
    // Every cell matching `f`, in key order (at most `limit`).
    std::vector<RepRow> query(const RepFilter& f, int64_t now, size_t limit = 1000,
                              const ScoreWeights& w = {}) const;
    // Drops the cells with nothing in their window; returns how many.
    size_t sweep(int64_t now);

    size_t size() const;
    uint64_t dropped() const;
    void set_max_cells(size_t n);
    uint32_t bucket_seconds() const { return bucket_s_; }
    uint16_t bucket_count() const { return buckets_; }

    // For the snapshot (reputation_snapshot.h): every cell under the lock, in key order;
    // and a cell's bucket put back (a cell is created past max_cells too: what was counted
    // before a restart stays counted).
    void visit(const std::function<void(const RepKey&, const ReputationWindow&)>& fn) const;
    void restore(const RepKey& k, int64_t start,
                 const std::vector<std::pair<uint16_t, uint32_t>>& counts);

  private:
    void count(const RepKeyView& k, bool may_create, int64_t now, RepOutcome o, uint8_t cls,
               uint32_t n);

    size_t max_cells_;
    uint32_t bucket_s_;
    uint16_t buckets_;
    mutable std::mutex mu_;
    std::map<RepKey, ReputationWindow, RepKeyLess> cells_;
    uint64_t dropped_ = 0;
};

}  // namespace kasi
