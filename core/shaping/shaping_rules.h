// Automation rules: traffic shaping that reacts to what providers answer. A rule watches the
// outcomes of one scope — an egress source at a provider, or a sending domain at a provider —
// and when `threshold` of them match within `window`, acts on that pair only:
//
//   match     providers (empty: any), outcomes (deferred, bounced, connection: a refusal
//             before any transaction), classes (the taxonomy's: rate_limited,
//             reputation_block, ...; empty: any), and `reply`, a regular expression (RE2) on
//             "CODE ENHANCED TEXT" of the reply (empty: any). All given must hold.
//   action    rate: the pair's message rate becomes rate_factor x what it was (its imposed
//             rate, else what it sent over the last minute), or `rate` messages per second;
//             connections: the cap becomes connections_factor x the configured one, or
//             `connections`; messages_per_connection; suspend: no new connection for
//             suspend_s; pool: new traffic of a source scope goes to another egress pool;
//             alert: only an Adaptive event. Every action also writes an Adaptive event.
//   lifetime  the action holds for `hold_s` after the last trigger; then every
//             recover_every_s it steps back by `recover` (a cut rate x1.25, a cut connection
//             cap x1.25 ...) until it is back where it started, and ends. A trigger while it
//             holds or recovers escalates: the cut is applied again (compounding), the
//             suspension lasts escalate x longer, up to max_level.
//
// The rules are data: the shipped defaults in lua/kasi/adaptive.lua, changed by the
// operator in config/adaptive.lua, read by the `adaptive` plugin (plugins/adaptive) into
// this form at every (re)load; core/shaping/shaping_engine.h applies them.
#pragma once

#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/shaping/tenant_breaker.h"

namespace kasi {

struct ShapingAction {
    double rate_factor = 1;          // 0 < f <= 1; 1 = the rate is not cut
    std::optional<double> rate;      // messages per second, instead of a factor
    double connections_factor = 1;   // 0 < f <= 1
    std::optional<int> connections;  // a cap, instead of a factor
    std::optional<int> messages_per_connection;
    int64_t suspend_s = 0;
    std::string pool;  // source scope: new traffic to this egress pool
    bool alert = false;
};

struct ShapingRule {
    enum class Scope { source, domain };
    std::string name;    // unique within the set
    std::string origin;  // "FILE:LINE" where it was defined (events, kasictl)
    Scope scope = Scope::source;
    std::vector<std::string> providers;  // empty: any provider
    bool on_deferred = true, on_bounced = false, on_connection = true;
    std::vector<std::string> classes;  // empty: any class
    std::string reply_pattern;         // as written; "" = any
    std::shared_ptr<const RE2> reply;  // compiled reply_pattern (null when "")
    uint32_t threshold = 3;
    int64_t window_s = 300;
    ShapingAction action;
    int64_t hold_s = 600;
    int64_t recover_every_s = 120;
    double recover = 1.25;  // > 1
    double escalate = 2.0;  // >= 1
    int max_level = 4;
};

struct ShapingRules {
    std::vector<ShapingRule> rules;
    BreakerPolicy breaker;  // the per-tenant circuit breakers' thresholds (tenant_breaker.h)
    std::vector<std::string> files;  // what they were read from, for `kasictl adaptive`
};

}  // namespace kasi
