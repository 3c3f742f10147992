#include "policy/lua_reputation.h"

#include <atomic>
#include <string>

#include "core/classify/taxonomy.h"
#include "core/reputation/reputation_service.h"

namespace kasi {

namespace {

std::atomic<ReputationService*> the_matrix{nullptr};
constexpr const char* no_matrix = "no reputation matrix (reputation.ini [main] enabled = false)";

void set_str(lua_State* L, const char* k, const std::string& v) {
    lua_pushlstring(L, v.data(), v.size());
    lua_setfield(L, -2, k);
}

void set_num(lua_State* L, const char* k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

void push_cell(lua_State* L, const RepRow& r) {
    const RepTotals& t = r.totals;
    lua_createtable(L, 0, 14);
    set_str(L, "source", r.key.source);
    set_str(L, "domain", r.key.domain);
    set_str(L, "provider", r.key.provider);
    set_str(L, "tenant", r.key.tenant);
    set_num(L, "attempts", double(t.attempts()));
    for (size_t i = 0; i < rep_outcome_count; ++i)
        set_num(L, std::string(rep_outcome_name(RepOutcome(i))).c_str(), double(t.by_outcome[i]));
    set_num(L, "score", r.score);
    lua_createtable(L, 0, 5);
    for (size_t i = 0; i < rep_outcome_count; ++i)
        set_num(L, std::string(rep_outcome_name(RepOutcome(i))).c_str(), t.rate(RepOutcome(i)));
    lua_setfield(L, -2, "rates");
    lua_createtable(L, 0, 3);
    auto names = known_classes();
    for (RepOutcome o : {RepOutcome::deferred, RepOutcome::bounced, RepOutcome::async_bounce}) {
        lua_newtable(L);
        for (const auto& [k, n] : t.by_class)
            if (k.first == o && k.second < names.size())
                set_num(L, std::string(names[k.second]).c_str(), double(n));
        lua_setfield(L, -2, std::string(rep_outcome_name(o)).c_str());
    }
    lua_setfield(L, -2, "classes");
}

// The keys of the table at `idx` into a filter; `exact` (get): a key left out is "".
RepFilter read_keys(lua_State* L, int idx, const char* what, bool exact, size_t* limit) {
    luaL_checktype(L, idx, LUA_TTABLE);
    RepFilter f;
    if (exact) f.source = f.domain = f.provider = f.tenant = std::string();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: keys are names", what);
        std::string k = lua_tostring(L, -2);
        int t = lua_type(L, -1);
        std::optional<std::string>* slot = k == "source"     ? &f.source
                                           : k == "domain"   ? &f.domain
                                           : k == "provider" ? &f.provider
                                           : k == "tenant"   ? &f.tenant
                                                             : nullptr;
        if (slot && t == LUA_TSTRING) {
            *slot = lua_tostring(L, -1);
        } else if (!exact && k == "rollups" && t == LUA_TBOOLEAN) {
            f.rollups_only = lua_toboolean(L, -1);
        } else if (!exact && k == "limit" && t == LUA_TNUMBER) {
            double v = lua_tonumber(L, -1);
            if (!(v >= 1 && v <= 10000)) luaL_error(L, "%s: limit is 1 to 10000", what);
            *limit = size_t(v);
        } else {
            luaL_error(L, "%s: bad key '%s'", what, k.c_str());
        }
        lua_pop(L, 1);
    }
    if (f.domain) {
        std::string& d = *f.domain;
        for (auto& c : d) c = char(std::tolower(static_cast<unsigned char>(c)));
    }
    return f;
}

int off(lua_State* L) {
    lua_pushnil(L);
    lua_pushstring(L, no_matrix);
    return 2;
}

// kasi.reputation.get{...}
int api_get(lua_State* L) {
    RepFilter f = read_keys(L, 1, "kasi.reputation.get", true, nullptr);
    ReputationService* svc = the_matrix.load();
    if (!svc) return off(L);
    auto row = svc->get({*f.source, *f.domain, *f.provider, *f.tenant});
    if (!row) {
        lua_pushnil(L);
        return 1;
    }
    push_cell(L, *row);
    return 1;
}

// kasi.reputation.list{...}
int api_list(lua_State* L) {
    size_t limit = 100;
    RepFilter f = lua_isnoneornil(L, 1) ? RepFilter{}
                                        : read_keys(L, 1, "kasi.reputation.list", false, &limit);
    ReputationService* svc = the_matrix.load();
    if (!svc) return off(L);
    auto rows = svc->rows(f, limit);
    lua_createtable(L, int(rows.size()), 0);
    for (size_t i = 0; i < rows.size(); ++i) {
        push_cell(L, rows[i]);
        lua_rawseti(L, -2, int(i + 1));
    }
    return 1;
}

}  // namespace

void set_lua_reputation(ReputationService* svc) {
    the_matrix.store(svc);
}

void install_lua_reputation(lua_State* L) {
    lua_newtable(L);
    lua_pushcfunction(L, api_get);
    lua_setfield(L, -2, "get");
    lua_pushcfunction(L, api_list);
    lua_setfield(L, -2, "list");
    lua_setfield(L, -2, "reputation");
}

}  // namespace kasi
