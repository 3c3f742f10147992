// See lua_bounded.h. Each wrapper raises its errors before it builds anything, with no
// C++ object alive (a Lua error unwinds through these frames).
#include "policy/lua_bounded.h"

#include <cmath>
#include <cstring>

#include "policy/lua_pattern.h"
#include "policy/lua_state.h"

namespace kasi {

namespace {

constexpr uint64_t bytes_per_instruction = 64;

size_t max_string(lua_State* L) {
    LuaState* st = LuaState::of(L);
    return st ? st->limits().max_string : LuaLimits{}.max_string;
}

void charge(lua_State* L, uint64_t cost) {
    if (LuaState* st = LuaState::of(L)) st->charge(L, cost);
}

// Calls the wrapped function (upvalue 1) with every argument of this call, leaving its
// `nresults` results on the stack.
void call_original(lua_State* L, int nresults) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, nresults);
}

int too_long(lua_State* L, const char* fn, double len) {
    return luaL_error(L, "%s: the result would be %.0f bytes, more than %d (lua.ini max_string_kb)",
                      fn, len, int(max_string(L)));
}

// string.rep(s, n [, sep])
int str_rep(lua_State* L) {
    size_t len = 0, seplen = 0;
    const char* s = luaL_checklstring(L, 1, &len);
    double n = std::floor(luaL_checknumber(L, 2));
    const char* sep = luaL_optlstring(L, 3, "", &seplen);
    if (!(n >= 1)) {  // also NaN
        lua_pushliteral(L, "");
        return 1;
    }
    double total = double(len) * n + double(seplen) * (n - 1);
    if (total > double(max_string(L))) return too_long(L, "string.rep", total);
    auto size = size_t(total);
    charge(L, size / bytes_per_instruction + 1);
    if (size == 0) {  // an empty string, however many times
        lua_pushliteral(L, "");
        return 1;
    }
    auto count = size_t(n);  // at most max_string + 1 here
    auto* buf = static_cast<char*>(lua_newuserdata(L, size));
    char* out = buf;
    for (size_t i = 0; i < count; ++i) {
        std::memcpy(out, s, len);
        out += len;
        if (seplen && i + 1 < count) {
            std::memcpy(out, sep, seplen);
            out += seplen;
        }
    }
    lua_pushlstring(L, buf, size);
    lua_remove(L, -2);
    return 1;
}

// table.concat(t [, sep [, i [, j]]]): measured first, then the original builds it
// (upvalue 1).
int tab_concat(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t seplen = 0;
    luaL_optlstring(L, 2, "", &seplen);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer j = lua_isnoneornil(L, 4) ? lua_Integer(lua_objlen(L, 1)) : luaL_checkinteger(L, 4);
    double total = 0;
    double cap = double(max_string(L));
    for (lua_Integer k = i; k <= j; ++k) {
        lua_pushnumber(L, double(k));
        lua_rawget(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            total += double(lua_objlen(L, -1));
        else if (lua_type(L, -1) == LUA_TNUMBER)
            total += 24;  // at most, as "%.14g" formats it
        else
            return luaL_error(L, "invalid value (at index %d) in table for 'concat'", int(k));
        lua_pop(L, 1);
        if (k > i) total += double(seplen);
        if (total > cap) return too_long(L, "table.concat", total);
        if (((k - i) & 1023) == 1023) charge(L, 1024);
    }
    charge(L, uint64_t(total) / bytes_per_instruction + 1);
    call_original(L, 1);
    return 1;
}

// string.format: the original (upvalue 1), then the size check.
int str_format(lua_State* L) {
    call_original(L, 1);
    size_t len = lua_objlen(L, -1);
    if (len > max_string(L)) return too_long(L, "string.format", double(len));
    charge(L, len / bytes_per_instruction);
    return 1;
}

// table.insert(t, [pos,] v): moving the elements after pos is work.
int tab_insert(lua_State* L) {
    if (lua_gettop(L) == 3 && lua_istable(L, 1)) {
        double n = double(lua_objlen(L, 1));
        double pos = lua_tonumber(L, 2);
        if (n > pos) charge(L, uint64_t(n - pos) / 4 + 1);
    }
    call_original(L, 0);
    return 0;
}

// table.sort(t [, less]): about n log2 n comparisons, paid up front (a Lua comparator
// also pays for its own instructions).
int tab_sort(lua_State* L) {
    if (lua_istable(L, 1)) {
        double n = double(lua_objlen(L, 1));
        if (n > 1) charge(L, uint64_t(n * std::log2(n)));
    }
    call_original(L, 0);
    return 0;
}

// tonumber(s [, base]): scanning a long string is work too.
int base_tonumber(lua_State* L) {
    if (lua_type(L, 1) == LUA_TSTRING) charge(L, lua_objlen(L, 1) / 16);
    call_original(L, 1);
    return 1;
}

// string.upper/lower/reverse/sub: the original (upvalue 1), then the bytes it produced
// are paid for (LuaJIT builds them in a reused buffer, so the allocator may not see
// them: a result equal to an existing string is not allocated again).
int str_charged(lua_State* L) {
    call_original(L, 1);
    charge(L, lua_objlen(L, -1) / bytes_per_instruction);
    return 1;
}

// collectgarbage(opt): a full collection walks the whole state, so it costs what the state
// holds; "count" is free; what would change the collector for every plugin of the state
// ("stop", "setpause", ...) is refused.
int base_collectgarbage(lua_State* L) {
    const char* opt = luaL_optstring(L, 1, "collect");
    if (std::strcmp(opt, "count") == 0) {
        lua_pushnumber(L, double(lua_gc(L, LUA_GCCOUNT, 0)) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
        return 1;
    }
    bool step = std::strcmp(opt, "step") == 0;
    if (!step && std::strcmp(opt, "collect") != 0)
        return luaL_error(L, "collectgarbage('%s') is not available to policies", opt);
    charge(L, uint64_t(lua_gc(L, LUA_GCCOUNT, 0)) * 1024 / bytes_per_instruction);
    if (step) {
        lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, int(luaL_optinteger(L, 2, 0))));
        return 1;
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_pushinteger(L, 0);
    return 1;
}

// table.maxn walks every key of the table in C: the same in Lua, where each step counts.
const char* const maxn_source = R"lua(
local pairs, type = pairs, type
return function(t)
  local m = 0
  for k in pairs(t) do
    if type(k) == 'number' and k > m then m = k end
  end
  return m
end
)lua";

// table[name] = wrapper with the original as upvalue 1 (or no upvalue when `plain`).
void wrap(lua_State* L, const char* table, const char* name, lua_CFunction fn, bool plain) {
    if (table)
        lua_getglobal(L, table);
    else
        lua_pushvalue(L, LUA_GLOBALSINDEX);
    if (plain) {
        lua_pushcfunction(L, fn);
    } else {
        lua_getfield(L, -1, name);
        lua_pushcclosure(L, fn, 1);
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

}  // namespace

void install_bounded_functions(lua_State* L) {
    install_lua_patterns(L);
    wrap(L, "string", "rep", str_rep, true);
    wrap(L, "string", "format", str_format, false);
    for (const char* name : {"upper", "lower", "reverse", "sub"})
        wrap(L, "string", name, str_charged, false);
    wrap(L, "table", "concat", tab_concat, false);
    wrap(L, "table", "insert", tab_insert, false);
    wrap(L, "table", "sort", tab_sort, false);
    wrap(L, nullptr, "tonumber", base_tonumber, false);
    wrap(L, nullptr, "collectgarbage", base_collectgarbage, true);
    lua_getglobal(L, "table");
    if (luaL_loadbuffer(L, maxn_source, std::strlen(maxn_source), "=table.maxn") == 0 &&
        lua_pcall(L, 0, 1, 0) == 0)
        lua_setfield(L, -2, "maxn");
    else
        lua_pop(L, 1);  // the error; table.maxn stays LuaJIT's
    lua_pop(L, 1);
}

}  // namespace kasi
