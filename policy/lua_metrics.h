// Metrics that policies publish (kasi.metrics.counter / kasi.metrics.gauge): one registry
// per process, shared by all Lua states, kept across reloads, shown in Prometheus' text
// format by `kasictl metrics` (and by the HTTP /metrics endpoint when it lands).
// Cardinality is bounded: at most max_series series; past that, new series are dropped and
// counted in kasi_policy_metrics_dropped_total, so a policy that puts recipient addresses
// in labels cannot eat the memory.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kasi {

class PolicyMetrics {
  public:
    static PolicyMetrics& global();
    using Labels = std::vector<std::pair<std::string, std::string>>;  // sorted by key

    // False with `err` for a bad name or label, or a name used with the other type.
    bool add(const std::string& name, const Labels& labels, double n, std::string& err);
    bool set(const std::string& name, const Labels& labels, double v, std::string& err);
    std::string prometheus() const;

    static constexpr size_t max_series = 10000;

  private:
    bool update(const std::string& name, const Labels& labels, double v, bool counter,
                std::string& err);
    struct Family {
        bool counter = true;
        std::map<std::string, double> series;  // rendered label set -> value
    };
    mutable std::mutex mu_;
    std::map<std::string, Family> families_;
    size_t count_ = 0;
    uint64_t dropped_ = 0;
};

}  // namespace kasi
