// See adaptive.h. The steps of one load: the Lua environment of the generation (lua.ini),
// the source (config/adaptive.lua, or a one-line chunk that returns the shipped defaults),
// one budgeted run in a fresh sandbox that has `rule`, then the returned set is read with
// raw table access (no Lua code runs after the budgeted call): each rule checked, and the
// breaker table (breaker_reader.h).
#include "plugins/adaptive/adaptive.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/classify/provider_table.h"
#include "core/queue/egress.h"
#include "plugins/adaptive/breaker_reader.h"
#include "plugins/adaptive/rule_reader.h"
#include "policy/lua_config_file.h"
#include "policy/lua_runtime.h"

namespace kasi {

namespace {

const char* const origins_key = "kasi.adaptive.origins";  // registry: rule table -> origin
const char* const module_name = "kasi.adaptive";
constexpr size_t max_rules = 1000;

class AdaptivePlugin : public Plugin {
  public:
    std::string name() const override { return "adaptive"; }
};

// What the rules are read from: config/adaptive.lua, else a chunk returning the defaults.
struct RuleSource {
    std::string path, text;
};

// rule(t [, level]): records where t is written and returns it. Level 1 (the default) is
// the function that calls rule, 2 its caller, as for error(msg, level). Raises its errors
// before it builds anything (a Lua error unwinds this frame).
int rule_function(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int level = luaL_optint(L, 2, 1);
    lua_Debug ar;
    if (level < 1 || !lua_getstack(L, level, &ar) || !lua_getinfo(L, "Sl", &ar) ||
        ar.currentline <= 0)
        return luaL_argerror(L, 2, "no Lua function at that level");
    const char* src = ar.source[0] == '@' ? ar.source + 1 : ar.source;
    lua_getfield(L, LUA_REGISTRYINDEX, origins_key);
    lua_pushvalue(L, 1);
    lua_pushfstring(L, "%s:%d", src, ar.currentline);
    lua_rawset(L, -3);
    lua_settop(L, 1);
    return 1;
}

void install_rule_function(lua_State* L) {
    lua_newtable(L);  // the origins, weak-keyed: a rule dropped by the file is forgotten
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, origins_key);
    lua_pushcfunction(L, rule_function);
    lua_setglobal(L, "rule");
}

// The origin rule() recorded for the table at absolute index `idx`; "" if none.
std::string origin_of(lua_State* L, int idx) {
    lua_getfield(L, LUA_REGISTRYINDEX, origins_key);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    std::string out = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    lua_pop(L, 2);
    return out;
}

RuleSite site_of(const std::string& origin) {
    size_t colon = origin.rfind(':');
    if (colon == std::string::npos) return {origin, 0};
    return {origin.substr(0, colon), std::atoi(origin.c_str() + colon + 1)};
}

// The number of the last line that is not blank (where a file's `return` usually is).
int last_line(const std::string& text) {
    int line = 1, last = 1;
    for (char c : text) {
        if (c == '\n')
            ++line;
        else if (!std::isspace(static_cast<unsigned char>(c)))
            last = line;
    }
    return last;
}

// A Lua error "SRC:LINE: message" -> d.error(file, LINE, message). Lua shortens a long
// SRC to "...TAIL"; it is matched against `files` to name the whole path again.
void report_lua_error(const std::string& err, const std::vector<std::string>& files,
                      const std::string& fallback, Diagnostics& d) {
    for (size_t pos = err.find(':'); pos != std::string::npos; pos = err.find(':', pos + 1)) {
        size_t end = pos + 1;
        while (end < err.size() && std::isdigit(static_cast<unsigned char>(err[end]))) ++end;
        if (end == pos + 1 || end >= err.size() || err[end] != ':') continue;
        std::string file = err.substr(0, pos);
        for (const auto& f : files)
            if (file.starts_with("...") && f.ends_with(file.substr(3))) file = f;
        size_t text = err.find_first_not_of(' ', end + 1);
        d.error(file, std::atoi(err.c_str() + pos + 1),
                text == std::string::npos ? "" : err.substr(text));
        return;
    }
    d.error(fallback, 0, err);
}

// lua.ini, read for its limits and require() path. Its problems are the Lua runtime's to
// report too: only those not reported yet are passed on.
LuaEnv lua_env(const ConfigDir& cfg, Diagnostics& d) {
    Diagnostics mine;
    LuaEnv env = load_lua_env(cfg, mine);
    for (auto& e : mine.errors)
        if (std::find(d.errors.begin(), d.errors.end(), e) == d.errors.end()) d.errors.push_back(e);
    for (auto& w : mine.warnings)
        if (std::find(d.warnings.begin(), d.warnings.end(), w) == d.warnings.end())
            d.warnings.push_back(w);
    return env;
}

std::optional<RuleSource> rule_source(const ConfigDir& cfg, Diagnostics& d) {
    RuleSource src;
    if (!cfg.exists("adaptive.lua"))
        return RuleSource{module_name, fmt::format("return require('{}').defaults()", module_name)};
    src.path = cfg.path_of("adaptive.lua").value_or(cfg.root() + "/adaptive.lua");
    if (!cfg.read_file("adaptive.lua", src.text, d)) {
        d.error(src.path, 0, "cannot read the file");
        return std::nullopt;
    }
    return src;
}

// The shipped module's path, if `require` found it (for messages and ShapingRules::files).
std::string module_path(const LuaEnv& env) {
    std::string path, text;
    return env.modules->find(module_name, env.search_path, path, text) ? path : "";
}

bool module_loaded(lua_State* L) {
    lua_getfield(L, LUA_REGISTRYINDEX, "kasi.loaded");
    lua_getfield(L, -1, module_name);
    bool loaded = !lua_isnil(L, -1);
    lua_pop(L, 2);
    return loaded;
}

RuleContext rule_context(const ConfigDir& cfg) {
    RuleContext ctx;
    if (ProviderTable::shipped_error().empty())
        ctx.providers = ProviderTable::shipped().providers();
    Diagnostics ignored;  // egress.ini's own problems are reported where it is loaded
    for (const auto& p : load_egress_config(cfg, ignored).pools) ctx.pools.push_back(p.name);
    return ctx;
}

// rules[i] (on top of the stack) -> out.rules.
bool read_entry(lua_State* L, size_t i, const RuleSite& set, const RuleContext& ctx,
                ShapingRules& out, Diagnostics& d) {
    int idx = lua_gettop(L);
    std::string origin = lua_istable(L, idx) ? origin_of(L, idx) : "";
    if (origin.empty()) {
        d.error(set.file, set.line,
                fmt::format("rules[{}] is {}: write rule{{ name = ..., ... }} so that Kasi knows "
                            "where the rule is written",
                            i,
                            lua_istable(L, idx) ? "a table not made with rule{...}"
                                                : std::string("a ") + luaL_typename(L, idx)));
        return false;
    }
    auto r = read_rule(L, idx, site_of(origin), ctx, d);
    if (r) out.rules.push_back(std::move(*r));
    return r.has_value();
}

bool check_unique(const ShapingRules& rules, Diagnostics& d) {
    bool ok = true;
    for (size_t i = 0; i < rules.rules.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (rules.rules[i].name == rules.rules[j].name) {
                auto at = site_of(rules.rules[i].origin);
                d.error(at.file, at.line,
                        fmt::format("adaptive rule '{}': name: used twice (first at {})",
                                    rules.rules[i].name, rules.rules[j].origin));
                ok = false;
                break;
            }
    return ok;
}

// The list at absolute index `list`: a sequence of rule{...} tables.
bool read_list(lua_State* L, int list, const RuleSite& set, const RuleContext& ctx,
               ShapingRules& out, Diagnostics& d) {
    size_t n = lua_objlen(L, list), count = 0;
    for (lua_pushnil(L); lua_next(L, list); lua_pop(L, 1)) ++count;
    if (count != n) {
        d.error(set.file, set.line,
                "rules: must be a list, without holes or named keys "
                "(remove a rule with set:remove(name))");
        return false;
    }
    if (n > max_rules) {
        d.error(set.file, set.line, fmt::format("rules: {} rules, more than {}", n, max_rules));
        return false;
    }
    bool ok = true;
    for (size_t i = 1; i <= n; ++i) {
        lua_rawgeti(L, list, int(i));
        ok = read_entry(L, i, set, ctx, out, d) && ok;
        lua_pop(L, 1);
    }
    return check_unique(out, d) && ok;
}

// The set's `breaker` (absent: the breakers do not trip on rates). Its errors name the line
// rule() recorded for its table (s:set_breaker{...}, s:tenant(...)), else the set's.
bool read_breaker_of(lua_State* L, int top, const RuleSite& set, ShapingRules& out,
                     Diagnostics& d) {
    lua_pushliteral(L, "breaker");
    lua_rawget(L, top);
    bool ok = true;
    if (!lua_isnil(L, -1)) {
        auto recorded = [L](int idx) -> std::optional<RuleSite> {
            std::string origin = lua_istable(L, idx) ? origin_of(L, idx) : "";
            if (origin.empty()) return std::nullopt;
            return site_of(origin);
        };
        auto policy = read_breaker(L, lua_gettop(L), set, recorded, d);
        if (policy) out.breaker = std::move(*policy);
        ok = policy.has_value();
    }
    lua_settop(L, top);
    return ok;
}

// The set the file returned, on top of the stack: { rules = { ... }, breaker = { ... } }.
bool read_set(lua_State* L, const RuleSite& set, const RuleContext& ctx, ShapingRules& out,
              Diagnostics& d) {
    int top = lua_gettop(L);
    if (!lua_istable(L, top)) {
        d.error(set.file, set.line,
                fmt::format("must return a rule set (such as require('kasi.adaptive').defaults()"
                            "), not a {}",
                            luaL_typename(L, top)));
        return false;
    }
    bool ok = true;
    for (lua_pushnil(L); lua_next(L, top); lua_pop(L, 1)) {
        std::string_view key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (key != "rules" && key != "breaker") {
            d.error(set.file, set.line,
                    "the returned set may have only the keys `rules` and `breaker`");
            ok = false;
        }
    }
    lua_pushliteral(L, "rules");
    lua_rawget(L, top);
    if (!lua_istable(L, -1)) {
        d.error(set.file, set.line, "the returned set has no list `rules`");
        ok = false;
    } else {
        ok = read_list(L, lua_gettop(L), set, ctx, out, d) && ok;
    }
    lua_settop(L, top);
    return read_breaker_of(L, top, set, out, d) && ok;
}

}  // namespace

std::shared_ptr<const ShapingRules> load_adaptive_rules(const ConfigDir& cfg, Diagnostics& d) {
    LuaEnv env = lua_env(cfg, d);
    auto src = rule_source(cfg, d);
    if (!src) return nullptr;
    LuaConfigFile lua(env);
    if (!lua.ok()) {
        d.error(src->path, 0, "cannot create a Lua state");
        return nullptr;
    }
    install_rule_function(lua.L());
    std::string err, shipped = module_path(env);
    if (!lua.run(src->text, src->path, err)) {
        report_lua_error(err, {src->path, shipped}, src->path, d);
        return nullptr;
    }
    lua_gc(lua.L(), LUA_GCCOLLECT, 0);  // room for reading, whatever the file left behind
    auto rules = std::make_shared<ShapingRules>();
    if (module_loaded(lua.L()) && !shipped.empty()) rules->files.push_back(shipped);
    if (src->path != module_name) rules->files.push_back(src->path);
    if (!read_set(lua.L(), {src->path, last_line(src->text)}, rule_context(cfg), *rules, d))
        return nullptr;
    return rules;
}

std::shared_ptr<Plugin> make_adaptive_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                             HookTable& table, uint32_t) {
    auto rules = load_adaptive_rules(cfg, d);
    if (!rules) return nullptr;
    table.set_shaping_rules(std::move(rules));
    return std::make_shared<AdaptivePlugin>();
}

}  // namespace kasi
