#include "core/shaping/shaping_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/util/json.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr size_t evidence_kept = 3;
constexpr double min_rate = 1.0 / 60;      // a cut never goes below one message a minute
constexpr double unknown_rate = 1.0;       // what a pair "sent" when it sent nothing yet
constexpr int64_t pair_idle_ms = 600'000;  // a pair without activity this long is forgotten
// Replies to attempts already under way when an action started (a pipelined batch, the
// connections still open) say nothing about the cut: within this time of a trigger they
// are evidence, not a reason to escalate.
constexpr int64_t settle_ms = 30'000;

bool has(const std::vector<std::string>& list, std::string_view v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
}

std::string when(int64_t ms) {
    return ms ? fmt::format("{}", ms / 1000) : "0";
}

}  // namespace

std::string ShapingEngine::pair_key(bool domain_scope, std::string_view subject,
                                    std::string_view provider) {
    return fmt::format("{}|{}|{}", domain_scope ? "domain" : "source", subject, provider);
}

void ShapingEngine::set_rules(std::shared_ptr<const ShapingRules> rules, int64_t now_ms) {
    rules_ = std::move(rules);
    scoped_[0] = scoped_[1] = false;
    if (rules_)
        for (const auto& r : rules_->rules) scoped_[r.scope == ShapingRule::Scope::domain] = true;
    for (auto it = actions_.begin(); it != actions_.end();) {
        if (rule(it->second.rule)) {
            ++it;
            continue;
        }
        Action a = std::move(it->second);
        it = actions_.erase(it);
        emit("ended", a, now_ms);
        changed(a);
    }
}

const ShapingRule* ShapingEngine::rule(const std::string& name) const {
    if (!rules_) return nullptr;
    for (const auto& r : rules_->rules)
        if (r.name == name) return &r;
    return nullptr;
}

void ShapingEngine::count_attempt(Pair& p, int64_t now_ms) {
    int64_t sec = now_ms / 1000;
    if (p.first_sec == 0) p.first_sec = sec;
    int64_t last = p.last_sec;
    if (sec > last) {
        for (int64_t s = std::max(last + 1, sec - 59); s <= sec; ++s) p.sent[s % 60] = 0;
        p.last_sec = sec;
        last = sec;
    }
    if (sec > last - 60) ++p.sent[sec % 60];
}

double ShapingEngine::observed_rate(const Pair& p, int64_t now_ms) const {
    int64_t now = now_ms / 1000, last = p.last_sec;
    uint64_t n = 0;
    for (int64_t s = std::max(last - 59, now - 59); s <= last; ++s) n += p.sent[s % 60];
    // over the last minute, or over the pair's life when it is younger than that
    int64_t span = p.first_sec ? std::clamp<int64_t>(now - p.first_sec + 1, 1, 60) : 60;
    return double(n) / double(span);
}

bool ShapingEngine::matches(const ShapingRule& r, const ShapingInput& in) const {
    using K = ShapingInput::Kind;
    bool kind = (in.kind == K::deferred && r.on_deferred) ||
                (in.kind == K::bounced && r.on_bounced) ||
                (in.kind == K::connection && r.on_connection);
    if (!kind || !has(r.providers, in.provider) || !has(r.classes, in.cls)) return false;
    return !r.reply || RE2::PartialMatch(in.reply, *r.reply);
}

void ShapingEngine::observe(const ShapingInput& in, int64_t now_ms) {
    if (!active()) return;
    for (bool domain_scope : {false, true}) {
        std::string_view subject = domain_scope ? in.domain : in.source;
        if (!scoped_[domain_scope] || subject.empty()) continue;
        std::string key = pair_key(domain_scope, subject, in.provider);
        Pair& p = pairs_[key];
        if (in.kind != ShapingInput::Kind::connection) count_attempt(p, now_ms);
        if (in.kind == ShapingInput::Kind::delivered) continue;
        for (const auto& r : rules_->rules) {
            if ((r.scope == ShapingRule::Scope::domain) != domain_scope || !matches(r, in))
                continue;
            auto& times = p.matches[r.name];
            times.push_back(now_ms);
            while (!times.empty() && times.front() <= now_ms - r.window_s * 1000) times.pop_front();
            while (times.size() > r.threshold) times.pop_front();
            auto a = actions_.find(key + "|" + r.name);
            bool settling = a != actions_.end() && now_ms - a->second.last_trigger_ms < settle_ms;
            if (times.size() >= r.threshold && !settling) {
                times.clear();
                trigger(r, domain_scope, subject, in.provider, in, p, now_ms);
            } else if (a != actions_.end()) {
                a->second.evidence.emplace_back(now_ms, std::string(in.reply));  // while in force
                if (a->second.evidence.size() > evidence_kept) a->second.evidence.pop_front();
            }
        }
    }
}

void ShapingEngine::trigger(const ShapingRule& r, bool domain_scope, std::string_view subject,
                            std::string_view provider, const ShapingInput& in, const Pair& p,
                            int64_t now) {
    auto [it, fresh] =
        actions_.try_emplace(pair_key(domain_scope, subject, provider) + "|" + r.name);
    Action& a = it->second;
    if (fresh) {
        a.rule = r.name;
        a.origin = r.origin;
        a.domain_scope = domain_scope;
        a.subject = std::string(subject);
        a.provider = std::string(provider);
        a.started_ms = now;
    }
    bool at_max = !fresh && a.level >= r.max_level;  // holds longer, cuts no further
    a.level = std::min(a.level + 1, r.max_level);
    double esc = std::pow(r.escalate, a.level - 1);
    const ShapingAction& x = r.action;
    if (at_max) {
        // the hold below is all that changes
    } else if (x.rate) {
        a.rate = std::max(min_rate, *x.rate / esc);
    } else if (x.rate_factor < 1) {
        double cur = a.rate > 0 ? a.rate : observed_rate(p, now);
        if (cur <= 0) cur = unknown_rate;
        if (a.base_rate == 0) a.base_rate = cur;
        a.rate = std::max(min_rate, cur * x.rate_factor);
    }
    if (x.connections_factor < 1 && !at_max)
        a.conn_factor = std::max(0.01, a.conn_factor * x.connections_factor);
    if (x.connections) a.connections = *x.connections;
    if (x.messages_per_connection) a.messages_per_connection = *x.messages_per_connection;
    if (x.suspend_s > 0 && !at_max)
        a.suspended_until_ms = now + int64_t(double(x.suspend_s) * 1000 * esc);
    a.pool = x.pool;
    a.last_trigger_ms = now;
    a.hold_until_ms = std::max(now + r.hold_s * 1000, a.suspended_until_ms);
    a.next_step_ms = a.hold_until_ms;
    a.evidence.emplace_back(now, std::string(in.reply));
    if (a.evidence.size() > evidence_kept) a.evidence.pop_front();
    emit(fresh ? "triggered" : "escalated", a, now);
    changed(a);
}

// One step back after the hold; false when the action has ended.
bool ShapingEngine::step_back(Action& a, const ShapingRule& r, int64_t now) {
    a.level = std::max(0, a.level - 1);
    if (a.rate > 0) {
        a.rate *= r.recover;
        bool reached = a.base_rate > 0 ? a.rate >= a.base_rate : a.level == 0;
        if (reached) a.rate = 0;
    }
    a.conn_factor = std::min(1.0, a.conn_factor * r.recover);
    if (a.level == 0) {
        a.connections = 0;
        a.messages_per_connection = 0;
        a.pool.clear();
    }
    a.next_step_ms = now + r.recover_every_s * 1000;
    return a.level > 0 || a.rate > 0 || a.conn_factor < 1;
}

void ShapingEngine::tick(int64_t now_ms) {
    for (auto it = actions_.begin(); it != actions_.end();) {
        Action& a = it->second;
        const ShapingRule* r = rule(a.rule);
        if (!r || now_ms < a.hold_until_ms || now_ms < a.next_step_ms) {
            ++it;
            continue;
        }
        bool still = step_back(a, *r, now_ms);
        emit(still ? "stepped_back" : "ended", a, now_ms);
        Action copy = still ? Action{} : std::move(a);
        if (still) {
            changed(a);
            ++it;
        } else {
            it = actions_.erase(it);
            changed(copy);
        }
    }
    if (now_ms - last_sweep_ms_ < 60'000) return;
    last_sweep_ms_ = now_ms;
    for (auto it = pairs_.begin(); it != pairs_.end();) {
        bool idle = (now_ms / 1000 - it->second.last_sec) * 1000 > pair_idle_ms;
        for (const auto& [name, times] : it->second.matches)
            idle &= times.empty() || times.back() < now_ms - pair_idle_ms;
        it = idle ? pairs_.erase(it) : std::next(it);
    }
}

void ShapingEngine::changed(const Action& a) {
    if (!a.domain_scope) target_.shaping_changed(a.subject, a.provider);
}

std::optional<ShapingEffect> ShapingEngine::combined(bool domain_scope, std::string_view subject,
                                                     std::string_view provider) const {
    if (actions_.empty()) return std::nullopt;
    std::string prefix = pair_key(domain_scope, subject, provider) + "|";
    std::optional<ShapingEffect> e;
    for (auto it = actions_.lower_bound(prefix);
         it != actions_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        const Action& a = it->second;
        if (!e) e.emplace();
        if (a.rate > 0) e->rate = e->rate > 0 ? std::min(e->rate, a.rate) : a.rate;
        e->conn_factor = std::min(e->conn_factor, a.conn_factor);
        if (a.connections)
            e->connections =
                e->connections ? std::min(e->connections, a.connections) : a.connections;
        if (a.messages_per_connection)
            e->messages_per_connection =
                e->messages_per_connection
                    ? std::min(e->messages_per_connection, a.messages_per_connection)
                    : a.messages_per_connection;
        e->suspended_until_ms = std::max(e->suspended_until_ms, a.suspended_until_ms);
        if (!a.pool.empty()) e->pool = a.pool;
        e->why += fmt::format("{}adaptive {} level {} until {}", e->why.empty() ? "" : "; ", a.rule,
                              a.level, when(std::max(a.hold_until_ms, a.next_step_ms)));
    }
    return e;
}

std::optional<ShapingEffect> ShapingEngine::effect(std::string_view source,
                                                   std::string_view provider) const {
    return combined(false, source, provider);
}

std::optional<ShapingEffect> ShapingEngine::domain_effect(std::string_view domain,
                                                          std::string_view provider) const {
    return combined(true, domain, provider);
}

namespace {

std::string action_json(const ShapingEngine::Action& a, const char* what, int64_t now) {
    std::string ev = "[";
    for (const auto& [t, reply] : a.evidence) {
        if (ev.size() > 1) ev += ',';
        ev += JsonObject().num("time_ms", t).str("reply", reply).done();
    }
    ev += ']';
    JsonObject o;
    if (what) o.str("type", "Adaptive").num("time_ms", now).str("action", what);
    o.str("rule", a.rule)
        .str("origin", a.origin)
        .str("scope", a.domain_scope ? "domain" : "source");
    o.str(a.domain_scope ? "domain" : "source", a.subject).str("provider", a.provider);
    o.num("level", a.level);
    if (a.rate > 0) o.real("max_message_rate", a.rate);
    if (a.conn_factor < 1) o.real("connections_factor", a.conn_factor);
    if (a.connections) o.num("max_connections", a.connections);
    if (a.messages_per_connection) o.num("max_messages_per_connection", a.messages_per_connection);
    if (a.suspended_until_ms > now) o.num("suspended_until_ms", a.suspended_until_ms);
    if (!a.pool.empty()) o.str("pool", a.pool);
    o.num("started_ms", a.started_ms).num("last_trigger_ms", a.last_trigger_ms);
    o.num("hold_until_ms", a.hold_until_ms).num("next_step_ms", a.next_step_ms);
    o.raw("evidence", ev);
    return o.done();
}

}  // namespace

void ShapingEngine::emit(const char* what, const Action& a, int64_t now) const {
    if (event_) event_(action_json(a, what, now));
}

std::string ShapingEngine::json(int64_t now_ms) const {
    std::string list = "[";
    for (const auto& [k, a] : actions_) {
        if (list.size() > 1) list += ',';
        list += action_json(a, nullptr, now_ms);
    }
    list += ']';
    std::string files = "[";
    if (rules_)
        for (const auto& f : rules_->files) {
            if (files.size() > 1) files += ',';
            json_escape(files, f);  // quoted
        }
    files += ']';
    return JsonObject()
        .num("rules", rules_ ? int64_t(rules_->rules.size()) : 0)
        .raw("files", files)
        .raw("actions", list)
        .done();
}

// One action per line: its fields tab-separated, the evidence as time=reply pairs after them.
std::string ShapingEngine::save() const {
    std::string out = "kasi-adaptive 1\n";
    auto field = [&out](std::string_view v) {
        for (char c : v) out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
        out += '\t';
    };
    for (const auto& [k, a] : actions_) {
        field(a.rule);
        field(a.origin);
        field(a.domain_scope ? "domain" : "source");
        field(a.subject);
        field(a.provider);
        field(fmt::format("{} {} {} {} {} {} {} {} {} {} {}", a.level, a.rate, a.base_rate,
                          a.conn_factor, a.connections, a.messages_per_connection,
                          a.suspended_until_ms, a.started_ms, a.last_trigger_ms, a.hold_until_ms,
                          a.next_step_ms));
        field(a.pool);
        for (const auto& [t, reply] : a.evidence) field(fmt::format("{}={}", t, reply));
        out.back() = '\n';
    }
    return out;
}

bool ShapingEngine::load(std::string_view text, int64_t now_ms, std::string& err) {
    auto lines = split_list(text, "\n");
    if (lines.empty() || lines[0] != "kasi-adaptive 1") {
        err = "not an adaptive state file (the first line is not 'kasi-adaptive 1')";
        return false;
    }
    for (size_t i = 1; i < lines.size(); ++i) {
        auto f = split_fields(lines[i], '\t');
        if (f.size() < 7) continue;
        Action a;
        a.rule = f[0];
        a.origin = f[1];
        a.domain_scope = f[2] == "domain";
        a.subject = f[3];
        a.provider = f[4];
        a.pool = f[6];
        auto nums = split_list(f[5], " ");
        if (nums.size() != 11 || a.rule.empty() || a.subject.empty()) continue;
        char* end = nullptr;
        std::vector<double> v;
        for (const auto& n : nums) {
            v.push_back(std::strtod(n.c_str(), &end));
            if (*end || !std::isfinite(v.back())) break;
        }
        if (v.size() != 11 || *end) continue;
        a.level = std::clamp(int(v[0]), 0, 10);
        a.rate = std::max(0.0, v[1]);
        a.base_rate = std::max(0.0, v[2]);
        a.conn_factor = std::clamp(v[3], 0.01, 1.0);
        a.connections = std::max(0, int(v[4]));
        a.messages_per_connection = std::max(0, int(v[5]));
        a.suspended_until_ms = int64_t(v[6]);
        a.started_ms = int64_t(v[7]);
        a.last_trigger_ms = int64_t(v[8]);
        a.hold_until_ms = int64_t(v[9]);
        a.next_step_ms = int64_t(v[10]);
        for (size_t e = 7; e < f.size(); ++e) {
            auto eq = f[e].find('=');
            unsigned long long t = 0;
            if (eq != std::string::npos && parse_u64(f[e].substr(0, eq), t))
                a.evidence.emplace_back(int64_t(t), f[e].substr(eq + 1));
        }
        (void)now_ms;
        std::string key = pair_key(a.domain_scope, a.subject, a.provider) + "|" + a.rule;
        actions_[key] = std::move(a);
    }
    return true;
}

}  // namespace kasi
