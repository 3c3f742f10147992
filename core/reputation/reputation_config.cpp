#include "core/reputation/reputation_config.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/queue/outbound_config.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// A weight: a number from 0 to 10000; an error names the file and line.
double weight(const Ini& ini, Diagnostics& d, const char* key, double def) {
    const IniEntry* e = ini.find("score", key);
    if (!e || !e->value || trim(*e->value).empty()) return def;
    std::string text(trim(*e->value));
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (errno || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0 || v > 10000) {
        d.error(ini.path, e->line,
                fmt::format("[score] {} = {}: a number from 0 to 10000", key, text));
        return def;
    }
    return v;
}

int64_t interval_s(const Ini& ini, Diagnostics& d, int64_t def) {
    const IniEntry* e = ini.find("main", "snapshot_interval");
    if (!e || !e->value || trim(*e->value).empty()) return def;
    int64_t ms = 0;
    if (!parse_duration_ms(trim(*e->value), ms) || ms < 1000 || ms > 3600 * 1000) {
        d.error(ini.path, e->line,
                fmt::format("[main] snapshot_interval = {}: a duration from 1s to 1h", *e->value));
        return def;
    }
    return ms / 1000;
}

}  // namespace

std::shared_ptr<const ReputationConfig> ReputationConfig::load(const ConfigDir& cfg,
                                                               const std::string& spool_dir,
                                                               Diagnostics& d) {
    auto c = std::make_shared<ReputationConfig>();
    Ini ini = cfg.ini("reputation.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "score", "metrics"});
    r.check_known("main", {"enabled", "max_cells", "snapshot", "snapshot_interval"});
    r.check_known("score", {"deferred", "bounced", "blocked", "complaint", "async_bounce"});
    r.check_known("metrics", {"series"});
    c->enabled = r.get_bool("main", "enabled", true);
    c->max_cells = size_t(r.get_int("main", "max_cells", 100'000, 0, 100'000'000));
    std::string snap(trim(r.get_str("main", "snapshot", "reputation.snapshot")));
    c->snapshot = !snap.empty() && snap[0] == '/' ? snap : spool_dir + "/" + snap;
    c->snapshot_interval_s = interval_s(ini, d, 60);
    c->weights.deferred = weight(ini, d, "deferred", c->weights.deferred);
    c->weights.bounced = weight(ini, d, "bounced", c->weights.bounced);
    c->weights.blocked = weight(ini, d, "blocked", c->weights.blocked);
    c->weights.complaint = weight(ini, d, "complaint", c->weights.complaint);
    c->weights.async_bounce = weight(ini, d, "async_bounce", c->weights.async_bounce);
    c->metric_series = size_t(r.get_int("metrics", "series", 50, 0, 10'000));
    return c;
}

}  // namespace kasi
