// The node's reputation matrix at work: what the outcome stage and the report transport feed,
// and what the operator (kasictl reputation, the admin API, /metrics) and policies
// (kasi.reputation.get) read. One per process, created by the server when reputation.ini
// leaves it on, shared by every thread (the matrix has its own lock).
//
//   feeds                                   outcome
//   outcome stage (core/queue/outcome.cpp)  delivered, deferred, bounced (by class)
//   report transport                        async_bounce (a DSN), complaint (ARF)
//
// A cell is keyed by the egress source (its name in egress.ini), the sending domain (the
// domain of the envelope sender), the provider (the classification's, e.g. gmail) and the
// tenant; see reputation_matrix.h for the roll-ups. Its own thread writes a snapshot
// (reputation_snapshot.h) every snapshot_interval and drops idle cells; the last snapshot is
// written at stop and read back at start, so the windows survive a restart.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/reputation/reputation_config.h"
#include "core/reputation/reputation_matrix.h"

namespace kasi {

// {"cells": N, "dropped": N, "window_seconds": N, "rows": [...]} of the cells of `m` that match
// (docs/reputation.md), scored with `w` at `now`.
std::string reputation_json(const ReputationMatrix& m, const RepFilter& f, size_t limit,
                            const ScoreWeights& w, int64_t now);

class ReputationService {
  public:
    // Reads the snapshot (a missing one is an empty matrix; a damaged one is logged and read
    // as far as it goes) and starts the thread. Null with `err` only when the snapshot's
    // directory cannot be made.
    static std::unique_ptr<ReputationService> open(std::shared_ptr<const ReputationConfig> c,
                                                   std::string& err);
    ~ReputationService();  // stops the thread, writes the last snapshot
    ReputationService(const ReputationService&) = delete;
    ReputationService& operator=(const ReputationService&) = delete;

    void set_config(std::shared_ptr<const ReputationConfig> c);
    std::shared_ptr<const ReputationConfig> config() const;

    // One outcome (any thread). `cls` is the taxonomy's class name.
    void record(const RepKeyView& k, RepOutcome o, std::string_view cls, int64_t now_s);

    // Reads, scored with the configured weights.
    std::optional<RepRow> get(const RepKey& k) const;
    std::vector<RepRow> rows(const RepFilter& f, size_t limit) const;
    // {"cells": N, "dropped": N, "window_seconds": N, "rows": [...]} (docs/reputation.md).
    std::string json(const RepFilter& f, size_t limit) const;
    // Gauges per source x provider for the busiest `metric_series` pairs, and the matrix's size.
    std::string prometheus() const;
    static std::string row_json(const RepRow& r);

    // Writes the snapshot now (the thread does it every interval).
    bool save(std::string& err);
    const ReputationMatrix& matrix() const { return matrix_; }

  private:
    explicit ReputationService(std::shared_ptr<const ReputationConfig> c);
    void run();

    mutable std::mutex cfg_mu_;
    std::shared_ptr<const ReputationConfig> cfg_;
    const std::string snapshot_path_;
    const int64_t interval_s_;
    ReputationMatrix matrix_;

    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace kasi
