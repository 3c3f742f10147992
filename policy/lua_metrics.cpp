#include "policy/lua_metrics.h"

#include <fmt/format.h>

#include <cctype>

#include "core/metrics/metrics.h"

namespace kasi {

namespace {

bool valid_name(const std::string& s) {
    if (s.empty() || s.size() > 128 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) return false;
    return true;
}

std::string render(const PolicyMetrics::Labels& labels) {
    if (labels.empty()) return "";
    std::string out = "{";
    for (size_t i = 0; i < labels.size(); ++i) {
        if (i) out += ",";
        out += labels[i].first + "=\"" + prometheus_label(labels[i].second) + "\"";
    }
    return out + "}";
}

}  // namespace

PolicyMetrics& PolicyMetrics::global() {
    static PolicyMetrics m;
    return m;
}

bool PolicyMetrics::add(const std::string& name, const Labels& labels, double n, std::string& err) {
    if (!(n >= 0)) {
        err = "a counter only goes up";
        return false;
    }
    return update(name, labels, n, true, err);
}

bool PolicyMetrics::set(const std::string& name, const Labels& labels, double v, std::string& err) {
    return update(name, labels, v, false, err);
}

bool PolicyMetrics::update(const std::string& name, const Labels& labels, double v, bool counter,
                           std::string& err) {
    if (!valid_name(name) || name.rfind("kasi_", 0) == 0) {
        err = fmt::format(
            "metric name '{}': letters, digits, _ and :, not starting with a digit "
            "or kasi_ (kept for Kasi's own)",
            name);
        return false;
    }
    for (const auto& [k, val] : labels)
        if (!valid_name(k) || k.find(':') != std::string::npos || val.size() > 256) {
            err = fmt::format("metric {}: bad label '{}'", name, k);
            return false;
        }
    std::string key = render(labels);
    std::lock_guard<std::mutex> lock(mu_);
    auto& fam = families_[name];
    if (fam.series.empty()) fam.counter = counter;
    if (fam.counter != counter) {
        err = fmt::format("metric {} is a {}", name, fam.counter ? "counter" : "gauge");
        return false;
    }
    auto it = fam.series.find(key);
    if (it == fam.series.end()) {
        if (count_ >= max_series) {
            ++dropped_;
            return true;  // dropped on purpose, not the policy's error
        }
        it = fam.series.emplace(key, 0.0).first;
        ++count_;
    }
    if (counter)
        it->second += v;
    else
        it->second = v;
    return true;
}

std::string PolicyMetrics::prometheus() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [name, fam] : families_) {
        if (fam.series.empty()) continue;
        out += fmt::format("# TYPE {} {}\n", name, fam.counter ? "counter" : "gauge");
        for (const auto& [labels, v] : fam.series) out += fmt::format("{}{} {}\n", name, labels, v);
    }
    out += "# TYPE kasi_policy_metrics_dropped_total counter\n";
    out += fmt::format("kasi_policy_metrics_dropped_total {}\n", dropped_);
    return out;
}

}  // namespace kasi
