// reputation.ini: whether Kasi keeps the reputation matrix, how big it may grow, how its
// score weighs what happened, and how much of it the metrics show. Reloaded with the rest
// of the configuration (a smaller max_cells applies to new cells; the snapshot path and
// interval are read at start).
//
//   [main]
//   enabled = true              ; count outcomes (default on; off: nothing is kept)
//   max_cells = 100000          ; full (source x domain x provider) cells at most; roll-ups
//                               ; are always kept (reputation_matrix.h)
//   snapshot = reputation.snapshot ; relative to the spool directory (queue_dir)
//   snapshot_interval = 60s     ; how often the matrix is written (and idle cells dropped)
//   [score]                     ; points lost per percent of attempts (reputation_window.h)
//   deferred = 0.5
//   bounced = 1.0
//   blocked = 3.0               ; deferred or bounced as reputation_block / spam_block
//   complaint = 100
//   async_bounce = 1.0
//   [metrics]
//   series = 50                 ; source x provider gauges for the busiest pairs (0: none)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"
#include "core/reputation/reputation_window.h"

namespace kasi {

struct ReputationConfig {
    bool enabled = true;
    size_t max_cells = 100'000;
    std::string snapshot;  // absolute
    int64_t snapshot_interval_s = 60;
    ScoreWeights weights;
    size_t metric_series = 50;

    // `spool_dir`: the settings' queue_dir, which a relative `snapshot` is under.
    static std::shared_ptr<const ReputationConfig> load(const ConfigDir& cfg,
                                                        const std::string& spool_dir,
                                                        Diagnostics& d);
};

}  // namespace kasi
