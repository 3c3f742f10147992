#include "core/shaping/tenant_breaker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/metrics/metrics.h"
#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {
const BreakerPolicy no_policy;
}

std::string_view TenantBreaker::state_name(State s) {
    switch (s) {
        case State::closed:
            return "closed";
        case State::open:
            return "open";
        case State::half_open:
            return "half_open";
        case State::paused:
            return "paused";
    }
    return "?";
}

TenantBreaker::Rates TenantBreaker::totals(const Tenant& t, const BreakerLimits& l,
                                           int64_t now_ms) const {
    Rates r;
    int64_t now_min = now_ms / 60'000, span = std::clamp<int64_t>(l.window_s / 60, 1, 60);
    for (const auto& m : t.minutes) {
        if (m.minute < 0 || m.minute <= now_min - span) continue;
        r.attempts += m.attempts;
        r.hard += m.hard;
        r.blocks += m.blocks;
        r.complaints += m.complaints;
    }
    return r;
}

std::string TenantBreaker::tripped(const Rates& r, const BreakerLimits& l) const {
    if (r.attempts == 0) return "";
    double a = double(r.attempts);
    auto pct = [](double v) { return v * 100; };
    if (double(r.hard) / a >= l.hard_bounce_rate)
        return fmt::format("hard bounce rate {:.1f}% >= {:.1f}% ({} of {})",
                           pct(double(r.hard) / a), pct(l.hard_bounce_rate), r.hard, r.attempts);
    if (double(r.complaints) / a >= l.complaint_rate)
        return fmt::format("complaint rate {:.2f}% >= {:.2f}% ({} of {})",
                           pct(double(r.complaints) / a), pct(l.complaint_rate), r.complaints,
                           r.attempts);
    if (double(r.blocks) / a >= l.block_rate)
        return fmt::format("block rate {:.1f}% >= {:.1f}% ({} of {})", pct(double(r.blocks) / a),
                           pct(l.block_rate), r.blocks, r.attempts);
    return "";
}

void TenantBreaker::move(const std::string& name, Tenant& t, State s, int64_t now_ms,
                         std::string reason) {
    t.state = s;
    t.since_ms = now_ms;
    t.reason = std::move(reason);
    t.probes_seen = 0;
    t.probe_ticket = 0;  // the first delivery of a half-open breaker is a probe
    if (s == State::closed) t.minutes = {};
    if (event_) {
        JsonObject o;
        o.str("type", "CircuitBreaker").num("time_ms", now_ms).str("tenant", name);
        o.str("state", state_name(s)).str("reason", t.reason);
        if (t.until_ms > now_ms && s == State::open) o.num("until_ms", t.until_ms);
        event_(o.done());
    }
    refresh_held();
}

void TenantBreaker::refresh_held() {
    held_ = false;
    for (const auto& [n, t] : tenants_) held_ |= t.state != State::closed;
}

void TenantBreaker::record(std::string_view tenant, Outcome o, int64_t now_ms) {
    if (tenant.empty()) return;
    const BreakerPolicy& p = policy_ ? *policy_ : no_policy;
    auto it = tenants_.find(tenant);
    if (it == tenants_.end()) {
        if (!p.automatic) return;  // nothing to count for
        it = tenants_.emplace(std::string(tenant), Tenant{}).first;
    }
    Tenant& t = it->second;
    int64_t minute = now_ms / 60'000;
    Minute& m = t.minutes[size_t(minute % 60)];
    if (m.minute != minute) m = Minute{minute};
    bool attempt = o != Outcome::complaint && o != Outcome::async_hard_bounce;
    m.attempts += attempt;
    m.hard += o == Outcome::hard_bounce || o == Outcome::async_hard_bounce;
    m.blocks += o == Outcome::block;
    m.complaints += o == Outcome::complaint;
    if (!p.automatic || t.state == State::paused || t.state == State::open) return;
    const BreakerLimits& l = p.limits_for(tenant);
    if (t.state == State::half_open) {
        if (attempt && ++t.probes_seen < l.probe_attempts) return;
        if (!attempt) return;
        Rates since{};  // the probes: what came after the breaker went half-open
        for (const auto& x : t.minutes)
            if (x.minute >= t.since_ms / 60'000) {
                since.attempts += x.attempts;
                since.hard += x.hard;
                since.blocks += x.blocks;
                since.complaints += x.complaints;
            }
        std::string why = tripped(since, l);
        if (why.empty()) return move(it->first, t, State::closed, now_ms, "the probes went well");
        t.open_ms = std::min(t.open_ms * 2, l.open_s * 8000);
        t.until_ms = now_ms + t.open_ms;
        return move(it->first, t, State::open, now_ms, "probes: " + why);
    }
    Rates r = totals(t, l, now_ms);
    if (r.attempts < l.min_attempts) return;
    std::string why = tripped(r, l);
    if (why.empty()) return;
    t.open_ms = l.open_s * 1000;
    t.until_ms = now_ms + t.open_ms;
    move(it->first, t, State::open, now_ms, why);
}

bool TenantBreaker::allow(std::string_view tenant, int64_t now_ms) {
    if (!held_ || tenant.empty()) return true;
    auto it = tenants_.find(tenant);
    if (it == tenants_.end()) return true;
    Tenant& t = it->second;
    const BreakerPolicy& p = policy_ ? *policy_ : no_policy;
    const BreakerLimits& l = p.limits_for(tenant);
    switch (t.state) {
        case State::closed:
            return true;
        case State::paused:
            return false;
        case State::open:
            if (now_ms < t.until_ms) return false;
            move(it->first, t, State::half_open, now_ms, "probing after " + t.reason);
            [[fallthrough]];
        case State::half_open: {
            uint32_t every = uint32_t(std::max(1.0, std::round(1.0 / std::max(l.probe, 0.001))));
            return t.probe_ticket++ % every == 0;
        }
    }
    return true;
}

std::string TenantBreaker::pause(const std::string& tenant, const std::string& reason,
                                 int64_t now_ms) {
    if (tenant.empty() || tenant.find_first_of(" \t\r\n") != std::string::npos)
        return "error: a tenant name without white space";
    Tenant& t = tenants_[tenant];
    move(tenant, t, State::paused, now_ms, reason.empty() ? "paused by the operator" : reason);
    return "ok: tenant " + tenant + " paused (its mail waits in the queue)";
}

std::string TenantBreaker::resume(const std::string& tenant, int64_t now_ms) {
    auto it = tenants_.find(tenant);
    if (it == tenants_.end() || it->second.state == State::closed)
        return "ok: tenant " + tenant + " was not held";
    move(it->first, it->second, State::closed, now_ms, "resumed by the operator");
    return "ok: tenant " + tenant + " resumed";
}

void TenantBreaker::sweep(int64_t now_ms) {
    for (auto it = tenants_.begin(); it != tenants_.end();) {
        bool idle = it->second.state == State::closed;
        for (const auto& m : it->second.minutes) idle &= m.minute < now_ms / 60'000 - 60;
        it = idle ? tenants_.erase(it) : std::next(it);
    }
}

std::string TenantBreaker::json(int64_t now_ms, bool all) const {
    const BreakerPolicy& p = policy_ ? *policy_ : no_policy;
    std::string list = "[";
    for (const auto& [name, t] : tenants_) {
        if (!all && t.state == State::closed) continue;
        Rates r = totals(t, p.limits_for(name), now_ms);
        JsonObject o;
        o.str("tenant", name).str("state", state_name(t.state)).num("since_ms", t.since_ms);
        if (t.state == State::open) o.num("until_ms", t.until_ms);
        o.str("reason", t.reason).num("attempts", int64_t(r.attempts));
        o.num("hard_bounces", int64_t(r.hard)).num("blocks", int64_t(r.blocks));
        o.num("complaints", int64_t(r.complaints));
        if (list.size() > 1) list += ',';
        list += o.done();
    }
    list += ']';
    return JsonObject().boolean("automatic", p.automatic).raw("tenants", list).done();
}

std::string TenantBreaker::prometheus() const {
    std::string out =
        "# HELP kasi_tenant_breaker_state Tenants whose mail is held: 1 open, 2 half-open, 3 "
        "paused by the operator (closed tenants are not listed).\n"
        "# TYPE kasi_tenant_breaker_state gauge\n";
    for (const auto& [name, t] : tenants_) {
        if (t.state == State::closed) continue;
        out += fmt::format("kasi_tenant_breaker_state{{tenant=\"{}\"}} {}\n",
                           prometheus_label(name), int(t.state));
    }
    return out;
}

// One held tenant per line: name TAB state TAB since TAB until TAB open_ms TAB reason.
std::string TenantBreaker::save() const {
    std::string out = "kasi-breaker 1\n";
    for (const auto& [name, t] : tenants_) {
        if (t.state == State::closed) continue;
        std::string reason = t.reason;
        std::replace_if(
            reason.begin(), reason.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
        out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", name, state_name(t.state), t.since_ms,
                           t.until_ms, t.open_ms, reason);
    }
    return out;
}

bool TenantBreaker::load(std::string_view text, int64_t now_ms, std::string& err) {
    auto lines = split_list(text, "\n");
    if (lines.empty() || lines[0] != "kasi-breaker 1") {
        err = "not a breaker state file (the first line is not 'kasi-breaker 1')";
        return false;
    }
    for (size_t i = 1; i < lines.size(); ++i) {
        auto f = split_fields(lines[i], '\t');
        if (f.size() != 6 || f[0].empty()) continue;
        State s;
        if (f[1] == "open")
            s = State::open;
        else if (f[1] == "half_open")
            s = State::half_open;
        else if (f[1] == "paused")
            s = State::paused;
        else
            continue;
        unsigned long long since = 0, until = 0, open = 0;
        if (!parse_u64(f[2], since) || !parse_u64(f[3], until) || !parse_u64(f[4], open)) continue;
        Tenant& t = tenants_[f[0]];
        t.state = s;
        t.since_ms = int64_t(since);
        t.until_ms = int64_t(until);
        t.open_ms = int64_t(open);
        t.reason = f[5];
    }
    (void)now_ms;
    refresh_held();
    return true;
}

}  // namespace kasi
