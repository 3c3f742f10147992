#include "policy/lua_extensions.h"

#include "core/log/log.h"
#include "core/util/clock.h"
#include "policy/lua_api.h"
#include "policy/lua_counters.h"
#include "policy/lua_metrics.h"
#include "policy/lua_state.h"
#include "policy/lua_reputation.h"
#include "policy/lua_suppression.h"

namespace kasi {

namespace {

void load_counters(const std::string& dir) {
    std::string err;
    if (!CounterStore::global().load(dir + "/counters.tsv", now_ms(), err))
        log::warn("policy counters: {}", err);
}

void save_counters(const std::string& dir) {
    std::string err;
    if (!CounterStore::global().save(dir + "/counters.tsv", now_ms(), err))
        log::warn("policy counters: {}", err);
}

}  // namespace

void add_policy_extensions(Extensions& e) {
    e.on_loop_close.push_back(&lua_close_loop);
    e.metrics.push_back([] { return PolicyMetrics::global().prometheus(); });
    e.state.push_back({&load_counters, &save_counters});
    e.interrupt.push_back(&lua_interrupt_all);
    e.suppressions.push_back(&set_lua_suppressions);
    e.reputation.push_back(&set_lua_reputation);
}

}  // namespace kasi
