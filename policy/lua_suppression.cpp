#include "policy/lua_suppression.h"

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/suppression/suppression_service.h"
#include "core/util/clock.h"
#include "policy/lua_loop.h"

namespace kasi {

namespace {

std::atomic<SuppressionService*> the_list{nullptr};
constexpr const char* no_list = "no suppression list (suppression.ini [main] enabled = false)";

void set_str(lua_State* L, const char* k, const std::string& v) {
    lua_pushlstring(L, v.data(), v.size());
    lua_setfield(L, -2, k);
}

void push_entry(lua_State* L, const SuppressionEntry& e) {
    lua_createtable(L, 0, 6);
    set_str(L, "address", e.address);
    set_str(L, "scope", e.scope.empty() ? std::string("global") : e.scope);
    set_str(L, "reason", std::string(reason_name(e.reason)));
    lua_pushinteger(L, lua_Integer(e.created));
    lua_setfield(L, -2, "created");
    lua_pushinteger(L, lua_Integer(e.expires));
    lua_setfield(L, -2, "expires");
    set_str(L, "event", e.event);
}

// A scope as Lua names it: "global" (or "") is the store's "".
std::string scope_arg(lua_State* L, int idx, const char* what) {
    size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    std::string scope(s, n);
    if (scope == "global") scope.clear();
    std::string err;
    if (!valid_scope(scope, err)) luaL_error(L, "%s: bad scope: %s", what, err.c_str());
    return scope;
}

// kasi.suppression.check(address [, scopes])
int api_check(lua_State* L) {
    std::string address = luaL_checkstring(L, 1);
    std::vector<std::string> scopes;
    if (lua_type(L, 2) == LUA_TSTRING) {
        scopes.push_back(scope_arg(L, 2, "kasi.suppression.check"));
    } else if (lua_istable(L, 2)) {
        size_t n = lua_objlen(L, 2);
        if (n > 64) return luaL_error(L, "kasi.suppression.check: at most 64 scopes");
        for (size_t i = 1; i <= n; ++i) {
            lua_rawgeti(L, 2, int(i));
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "kasi.suppression.check: scopes are strings");
            scopes.push_back(scope_arg(L, -1, "kasi.suppression.check"));
            lua_pop(L, 1);
        }
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_error(L, "kasi.suppression.check: scopes are a string or a list");
    }
    SuppressionService* svc = the_list.load();
    if (!svc) {
        lua_pushnil(L);
        lua_pushstring(L, no_list);
        return 2;
    }
    auto e = svc->store().check(address, scopes, now_ms() / 1000);
    if (!e) {
        lua_pushnil(L);
        return 1;
    }
    push_entry(L, *e);
    return 1;
}

// One add, from the hook's loop to the thread pool and back.
struct AddOp {
    uv_work_t req{};
    SuppressionService* svc = nullptr;
    SuppressionEntry entry;
    std::string err;
    bool ok = false;
    std::weak_ptr<LuaLoop> lp;
    uint64_t id = 0;
};

// Back on the hook's loop: the answer goes to the call (if it still waits).
void added(std::unique_ptr<AddOp> op) {
    auto l = op->lp.lock();
    if (!l) return;
    l->deliver(op->id, [ok = op->ok, err = op->err](lua_State* co) {
        if (ok) {
            lua_pushboolean(co, 1);
            return 1;
        }
        lua_pushnil(co);
        lua_pushlstring(co, err.data(), err.size());
        return 2;
    });
}

// The options table of kasi.suppression.add into `e`.
void add_options(lua_State* L, SuppressionEntry& e, int64_t& ttl) {
    if (lua_isnoneornil(L, 2)) return;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "kasi.suppression.add: option keys are names");
        std::string k = lua_tostring(L, -2);
        int t = lua_type(L, -1);
        if (k == "scope" && t == LUA_TSTRING) {
            e.scope = scope_arg(L, -1, "kasi.suppression.add");
        } else if (k == "reason" && t == LUA_TSTRING) {
            auto r = parse_reason(lua_tostring(L, -1));
            if (!r) luaL_error(L, "kasi.suppression.add: unknown reason '%s'", lua_tostring(L, -1));
            e.reason = *r;
        } else if (k == "expires" && t == LUA_TNUMBER) {
            double v = lua_tonumber(L, -1);
            if (!(v >= 0) || v > 100.0 * 365 * 86400)
                luaL_error(L, "kasi.suppression.add: expires is 0 (never) or seconds from now");
            ttl = int64_t(v);
        } else if (k == "event" && t == LUA_TSTRING) {
            e.event = lua_tostring(L, -1);
        } else {
            luaL_error(L, "kasi.suppression.add: bad option '%s'", k.c_str());
        }
        lua_pop(L, 1);
    }
}

// Starts one add: 0 once it is queued (the answer comes through deliver()), else the
// number of values it pushed (the answer now).
int start_add(lua_State* L, LuaLoop& lp) {
    std::string address = luaL_checkstring(L, 1);
    SuppressionEntry e;
    e.reason = SuppressionReason::manual;
    e.event = "lua";
    int64_t ttl = 0;
    add_options(L, e, ttl);
    SuppressionService* svc = the_list.load();
    std::string err;
    if (svc) {
        e = svc->entry(address, e.scope, e.reason, e.event, now_ms() / 1000, ttl);
        SuppressionEntry check = e;
        if (!validate_entry(check, err)) err = "kasi.suppression.add: " + err;
    } else {
        err = no_list;
    }
    if (err.empty()) {
        auto op = std::make_unique<AddOp>();
        op->svc = svc;
        op->entry = std::move(e);
        op->lp = lp.weak_from_this();
        op->id = lp.running_call();
        op->req.data = op.get();
        int rc = uv_queue_work(
            lp.loop(), &op->req,
            [](uv_work_t* req) {
                auto* op = static_cast<AddOp*>(req->data);
                op->ok = op->svc->add({op->entry}, "lua", op->err);
            },
            [](uv_work_t* req, int) {
                added(std::unique_ptr<AddOp>(static_cast<AddOp*>(req->data)));
            });
        if (rc == 0) {
            (void)op.release();  // libuv owns it until the after-work callback
            return 0;
        }
        err = uv_strerror(rc);
    }
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
}

// kasi.suppression.add(address [, options])
int api_add(lua_State* L) {
    LuaLoop* lp = LuaLoop::of(L);
    if (!lp || !lp->running_call() || !lp->loop())
        return luaL_error(L, "kasi.suppression.add works only inside a hook");
    int now = start_add(L, *lp);
    if (now > 0) return now;
    return lp->await(L);  // no C++ object of this call is alive here: await() may yield
}

}  // namespace

void set_lua_suppressions(SuppressionService* svc) {
    the_list.store(svc);
}

void install_lua_suppression(lua_State* L) {
    lua_newtable(L);
    lua_pushcfunction(L, api_check);
    lua_setfield(L, -2, "check");
    lua_pushcfunction(L, api_add);
    lua_setfield(L, -2, "add");
    lua_setfield(L, -2, "suppression");
}

}  // namespace kasi
