#include "core/metrics/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace kasi {

namespace {

constexpr auto rlx = std::memory_order_relaxed;

const char* route_name(size_t r) {
    static const char* names[] = {"send",  "batch",       "health", "metrics",
                                  "admin", "unsubscribe", "other"};
    return names[r];
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

void Histogram::observe_ns(uint64_t ns) {
    double s = double(ns) / 1e9;
    size_t i = 0;
    while (i < bounds.size() && s > bounds[i]) ++i;
    buckets_[i].fetch_add(1, rlx);
    sum_ns_.fetch_add(ns, rlx);
    count_.fetch_add(1, rlx);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
    std::string sep = labels.empty() ? "" : ",";
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
        cum += buckets_[i].load(rlx);
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds[i], cum);
    }
    cum += buckets_[bounds.size()].load(rlx);
    out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cum);
    std::string l = labels.empty() ? "" : fmt::format("{{{}}}", labels);
    out += fmt::format("{}_sum{} {}\n", name, l, double(sum_ns_.load(rlx)) / 1e9);
    out += fmt::format("{}_count{} {}\n", name, l, count_.load(rlx));
}

CoreMetrics& CoreMetrics::global() {
    static CoreMetrics m;
    return m;
}

void CoreMetrics::count_http(HttpRoute r, int status) {
    size_t cls = size_t(std::clamp(status / 100, 1, 5));
    http_requests[size_t(r)][cls].fetch_add(1, rlx);
}

std::string CoreMetrics::render() const {
    std::string o;
    family(o, "kasi_smtp_connections_open", "gauge", "SMTP connections open now");
    o += fmt::format("kasi_smtp_connections_open {}\n", smtp_open.load(rlx));
    family(o, "kasi_smtp_connections_total", "counter", "SMTP connections accepted or refused");
    o += fmt::format("kasi_smtp_connections_total{{result=\"accepted\"}} {}\n",
                     smtp_connections.load(rlx));
    o += fmt::format("kasi_smtp_connections_total{{result=\"refused\"}} {}\n",
                     smtp_refused.load(rlx));
    family(o, "kasi_messages_received_total", "counter", "messages spooled, by way of entry");
    o += fmt::format("kasi_messages_received_total{{via=\"smtp\"}} {}\n", received_smtp.load(rlx));
    o += fmt::format("kasi_messages_received_total{{via=\"http\"}} {}\n", received_http.load(rlx));
    family(o, "kasi_recipients_received_total", "counter", "recipients of spooled messages");
    o += fmt::format("kasi_recipients_received_total {}\n", recipients_received.load(rlx));
    family(o, "kasi_http_connections_open", "gauge", "HTTP API connections open now");
    o += fmt::format("kasi_http_connections_open {}\n", http_open.load(rlx));
    family(o, "kasi_http_requests_total", "counter", "HTTP API requests by route and status class");
    for (size_t r = 0; r < http_requests.size(); ++r)
        for (size_t c = 1; c < 6; ++c)
            if (uint64_t n = http_requests[r][c].load(rlx))
                o += fmt::format("kasi_http_requests_total{{route=\"{}\",code=\"{}xx\"}} {}\n",
                                 route_name(r), c, n);
    family(o, "kasi_spool_sync_seconds", "histogram",
           "spool group commit latency (append and fdatasync of one batch)");
    spool_sync.render(o, "kasi_spool_sync_seconds", "");
    family(o, "kasi_spool_records_total", "counter", "records written to the spool");
    o += fmt::format("kasi_spool_records_total {}\n", spool_records.load(rlx));
    family(o, "kasi_dns_cache_requests_total", "counter", "DNS cache lookups by result");
    o += fmt::format("kasi_dns_cache_requests_total{{result=\"hit\"}} {}\n", dns_hits.load(rlx));
    o += fmt::format("kasi_dns_cache_requests_total{{result=\"miss\"}} {}\n", dns_misses.load(rlx));
    family(o, "kasi_hook_duration_seconds", "histogram",
           "hook handler latency from call to answer, by hook and plugin kind");
    for (size_t h = 0; h < hook_latency.size(); ++h)
        for (size_t k = 0; k < 2; ++k)
            if (!hook_latency[h][k].empty())
                hook_latency[h][k].render(o, "kasi_hook_duration_seconds",
                                          fmt::format("hook=\"{}\",kind=\"{}\"", hook_name(Hook(h)),
                                                      k ? "lua" : "native"));
    return o;
}

std::string prometheus_label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace kasi
