// Process-wide metrics that any thread bumps without locking (relaxed atomics), rendered in
// Prometheus' text format by GET /metrics. Every label set here is fixed or bounded by
// configuration (hook names, routes, egress sources, a provider table), never by traffic:
// per-queue series are chosen at scrape time by the delivery loop (top N + "other",
// queue_metrics.cpp).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/hooks/hook.h"

namespace kasi {

// A latency histogram with fixed bucket bounds (seconds: 100 µs .. 10 s).
class Histogram {
  public:
    static constexpr std::array<double, 14> bounds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10};
    void observe_ns(uint64_t ns);
    bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }
    // "<name>_bucket{<labels>,le=...} n" lines, then _sum and _count.
    void render(std::string& out, std::string_view name, std::string_view labels) const;

  private:
    std::array<std::atomic<uint64_t>, bounds.size() + 1> buckets_{};  // the last is +Inf
    std::atomic<uint64_t> sum_ns_{0}, count_{0};
};

enum class HttpRoute { send, batch, health, metrics, admin, unsubscribe, other, count_ };

struct CoreMetrics {
    static CoreMetrics& global();

    // SMTP reception
    std::atomic<int64_t> smtp_open{0};
    std::atomic<uint64_t> smtp_connections{0}, smtp_refused{0};
    std::atomic<uint64_t> received_smtp{0}, received_http{0}, recipients_received{0};
    // HTTP
    std::atomic<int64_t> http_open{0};
    std::array<std::array<std::atomic<uint64_t>, 6>, size_t(HttpRoute::count_)> http_requests{};
    // spool group commits: append + fdatasync of one batch
    Histogram spool_sync;
    std::atomic<uint64_t> spool_batches{0}, spool_records{0};
    // DNS caches of every loop
    std::atomic<uint64_t> dns_hits{0}, dns_misses{0};
    // hook handlers, native and Lua, from call to answer
    std::array<std::array<Histogram, 2>, hook_count> hook_latency;

    void count_http(HttpRoute r, int status);
    // Everything above, in Prometheus' text format.
    std::string render() const;
};

// A label value as the text format writes it: backslash, double quote and newline escaped.
std::string prometheus_label(std::string_view v);

}  // namespace kasi
