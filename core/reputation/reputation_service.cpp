#include "core/reputation/reputation_service.h"

#include "core/reputation/reputation_snapshot.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/classify/taxonomy.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/util/clock.h"
#include "core/util/file.h"
#include "core/util/json.h"

namespace kasi {

namespace {

int64_t now_s() {
    return now_ms() / 1000;
}

constexpr RepOutcome classed[] = {RepOutcome::deferred, RepOutcome::bounced,
                                  RepOutcome::async_bounce};

// {"rate_limited": 3, ...} of one outcome
std::string classes_json(const RepTotals& t, RepOutcome o) {
    JsonObject j;
    auto names = known_classes();
    for (const auto& [k, n] : t.by_class)
        if (k.first == o && k.second < names.size()) j.num(names[k.second], int64_t(n));
    return j.done();
}

bool make_parent_dir(const std::string& path, std::string& err) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos || slash == 0) return true;
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0750) == 0 || errno == EEXIST) return true;
    err = dir + ": " + std::strerror(errno);
    return false;
}

}  // namespace

ReputationService::ReputationService(std::shared_ptr<const ReputationConfig> c)
    : cfg_(c),
      snapshot_path_(c->snapshot),
      interval_s_(c->snapshot_interval_s),
      matrix_(c->max_cells) {}

std::unique_ptr<ReputationService> ReputationService::open(
    std::shared_ptr<const ReputationConfig> c, std::string& err) {
    if (!make_parent_dir(c->snapshot, err)) return nullptr;
    std::unique_ptr<ReputationService> s(new ReputationService(c));
    std::string text, why;
    if (read_file_capped(s->snapshot_path_, size_t(1) << 31, text, why)) {
        SnapshotRead st;
        if (!read_reputation_snapshot(text, s->matrix_, now_s(), st, why))
            log::warn("reputation: {}: {}; starting empty", s->snapshot_path_, why);
        else if (st.bad_lines)
            log::warn("reputation: {}: {} lines could not be read (the first is line {})",
                      s->snapshot_path_, st.bad_lines, st.first_bad_line);
        log::info("reputation: {} cells from {}", s->matrix_.size(), s->snapshot_path_);
    }
    s->thread_ = std::thread([raw = s.get()] { raw->run(); });
    return s;
}

ReputationService::~ReputationService() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::string err;
    if (!save(err)) log::warn("reputation: snapshot not written: {}", err);
}

void ReputationService::run() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
        if (cv_.wait_for(lk, std::chrono::seconds(interval_s_), [this] { return stopping_; }))
            return;
        lk.unlock();
        matrix_.sweep(now_s());
        std::string err;
        if (!save(err)) log::warn("reputation: snapshot not written: {}", err);
        lk.lock();
    }
}

bool ReputationService::save(std::string& err) {
    return write_file_replacing(snapshot_path_, write_reputation_snapshot(matrix_), err);
}

void ReputationService::set_config(std::shared_ptr<const ReputationConfig> c) {
    matrix_.set_max_cells(c->max_cells);
    std::lock_guard lk(cfg_mu_);
    cfg_ = std::move(c);
}

std::shared_ptr<const ReputationConfig> ReputationService::config() const {
    std::lock_guard lk(cfg_mu_);
    return cfg_;
}

void ReputationService::record(const RepKeyView& k, RepOutcome o, std::string_view cls,
                               int64_t now) {
    matrix_.record(k, now, o, rep_class_index(cls));
}

std::optional<RepRow> ReputationService::get(const RepKey& k) const {
    return matrix_.get(k, now_s(), config()->weights);
}

std::vector<RepRow> ReputationService::rows(const RepFilter& f, size_t limit) const {
    return matrix_.query(f, now_s(), limit, config()->weights);
}

std::string ReputationService::row_json(const RepRow& r) {
    const RepTotals& t = r.totals;
    JsonObject rates;
    rates.real("delivered", t.rate(RepOutcome::delivered))
        .real("deferred", t.rate(RepOutcome::deferred))
        .real("bounced", t.rate(RepOutcome::bounced))
        .real("complaint", t.rate(RepOutcome::complaint))
        .real("async_bounce", t.rate(RepOutcome::async_bounce));
    JsonObject classes;
    for (RepOutcome o : classed) classes.raw(rep_outcome_name(o), classes_json(t, o));
    JsonObject j;
    j.str("source", r.key.source)
        .str("domain", r.key.domain)
        .str("provider", r.key.provider)
        .str("tenant", r.key.tenant)
        .num("attempts", int64_t(t.attempts()));
    for (size_t i = 0; i < rep_outcome_count; ++i)
        j.num(rep_outcome_name(RepOutcome(i)), int64_t(t.by_outcome[i]));
    j.raw("rates", rates.done()).raw("classes", classes.done());
    j.real("score", double(int64_t(r.score * 10 + 0.5)) / 10);
    return j.done();
}

std::string reputation_json(const ReputationMatrix& m, const RepFilter& f, size_t limit,
                            const ScoreWeights& w, int64_t now) {
    std::string list = "[";
    for (const auto& r : m.query(f, now, limit, w)) {
        if (list.size() > 1) list += ',';
        list += ReputationService::row_json(r);
    }
    list += ']';
    JsonObject j;
    j.num("cells", int64_t(m.size()))
        .num("dropped", int64_t(m.dropped()))
        .num("window_seconds", int64_t(m.bucket_seconds()) * m.bucket_count())
        .raw("rows", list);
    return j.done();
}

std::string ReputationService::json(const RepFilter& f, size_t limit) const {
    return reputation_json(matrix_, f, limit, config()->weights, now_s());
}

std::string ReputationService::prometheus() const {
    auto cfg = config();
    std::string out = fmt::format(
        "# HELP kasi_reputation_cells Cells the reputation matrix keeps.\n"
        "# TYPE kasi_reputation_cells gauge\nkasi_reputation_cells {}\n"
        "# HELP kasi_reputation_dropped_total Outcomes not counted in a full cell "
        "(max_cells reached; the roll-ups counted them).\n"
        "# TYPE kasi_reputation_dropped_total counter\nkasi_reputation_dropped_total {}\n",
        matrix_.size(), matrix_.dropped());
    if (cfg->metric_series == 0) return out;
    // source x provider roll-ups: the busiest `metric_series` of them
    std::vector<RepRow> pairs;
    for (auto& r : matrix_.query({.rollups_only = true}, now_s(), SIZE_MAX, cfg->weights))
        if (!r.key.source.empty() && r.key.domain.empty() && !r.key.provider.empty())
            pairs.push_back(std::move(r));
    std::sort(pairs.begin(), pairs.end(), [](const RepRow& a, const RepRow& b) {
        return a.totals.attempts() > b.totals.attempts();
    });
    if (pairs.size() > cfg->metric_series) pairs.resize(cfg->metric_series);
    std::sort(pairs.begin(), pairs.end(),
              [](const RepRow& a, const RepRow& b) { return a.key < b.key; });
    out +=
        "# HELP kasi_reputation_score Reputation score (0-100) of an egress source at a provider "
        "over the window.\n# TYPE kasi_reputation_score gauge\n";
    for (const auto& r : pairs)
        out +=
            fmt::format("kasi_reputation_score{{source=\"{}\",provider=\"{}\"}} {:.1f}\n",
                        prometheus_label(r.key.source), prometheus_label(r.key.provider), r.score);
    out +=
        "# HELP kasi_reputation_outcomes Outcomes of an egress source at a provider within the "
        "window.\n# TYPE kasi_reputation_outcomes gauge\n";
    for (const auto& r : pairs)
        for (size_t i = 0; i < rep_outcome_count; ++i)
            out += fmt::format(
                "kasi_reputation_outcomes{{source=\"{}\",provider=\"{}\",outcome=\"{}\"}} {}\n",
                prometheus_label(r.key.source), prometheus_label(r.key.provider),
                rep_outcome_name(RepOutcome(i)), r.totals.by_outcome[i]);
    return out;
}

}  // namespace kasi
