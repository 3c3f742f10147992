#include "policy/lua_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "core/classify/provider_table.h"
#include "core/config/config_dir.h"
#include "core/dns/mx.h"
#include "core/dns/resolver.h"
#include "core/hooks/hook.h"
#include "core/log/log.h"
#include "core/queue/queue_manager.h"
#include "core/queue/verp.h"
#include "core/smtp/unsubscribe.h"
#include "core/util/clock.h"
#include "core/util/ip.h"
#include "core/util/uv_handle.h"
#include "policy/lua_counters.h"
#include "policy/lua_http.h"
#include "policy/lua_loop.h"
#include "policy/lua_metrics.h"
#include "policy/lua_objects.h"
#include "policy/lua_redis.h"
#include "policy/lua_reputation.h"
#include "policy/lua_suppression.h"

namespace kasi {

namespace {

std::string joined_args(lua_State* L) {
    std::string out;
    int n = lua_gettop(L);
    lua_getglobal(L, "tostring");
    for (int i = 1; i <= n; ++i) {
        lua_pushvalue(L, -1);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        size_t len;
        const char* s = lua_tolstring(L, -1, &len);
        if (i > 1) out += ' ';
        if (s) out.append(s, len);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return out;
}

template <log::Level level>
int log_at(lua_State* L) {
    if (level < log::level()) return 0;
    lua_Debug ar;
    std::string where;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        where = fmt::format("{}:{}: ", ar.short_src, ar.currentline);
    log::write(level, fmt::format("lua: {}{}", where, joined_args(L)));
    return 0;
}

int api_now(lua_State* L) {
    lua_pushnumber(L, double(now_ms()) / 1000.0);
    return 1;
}

LuaLoop& in_hook(lua_State* L, const char* what) {
    LuaLoop* lp = LuaLoop::of(L);
    if (!lp || !lp->running_call() || !lp->loop())
        luaL_error(L, "%s works only inside a hook (a plugin's main chunk cannot wait)", what);
    return *lp;
}

// A kasi.sleep timer. Until it fires it is owned by the registry of its loop, not by the
// call: a call abandoned by a hook timeout or a closed connection leaves its timer to fire
// into nothing, and a timer still pending when the loop stops is closed by
// lua_close_loop() instead of leaking.
struct SleepOp {
    UvHandle<uv_timer_t> timer;
    std::weak_ptr<LuaLoop> lp;
    uint64_t id = 0;
};

std::mutex sleeps_mu;  // the map is shared by every loop's thread; each touches its own
std::map<uv_loop_t*, std::map<SleepOp*, std::unique_ptr<SleepOp>>>& sleeps() {
    static std::map<uv_loop_t*, std::map<SleepOp*, std::unique_ptr<SleepOp>>> m;
    return m;
}

std::unique_ptr<SleepOp> take_sleep(uv_loop_t* loop, SleepOp* op) {
    std::lock_guard<std::mutex> lock(sleeps_mu);
    auto loop_it = sleeps().find(loop);
    if (loop_it == sleeps().end()) return nullptr;
    auto it = loop_it->second.find(op);
    if (it == loop_it->second.end()) return nullptr;
    auto own = std::move(it->second);
    loop_it->second.erase(it);
    return own;
}

int api_sleep(lua_State* L) {
    double secs = luaL_checknumber(L, 1);
    if (!(secs >= 0) || secs > 3600) return luaL_error(L, "kasi.sleep: 0 to 3600 seconds");
    LuaLoop& lp = in_hook(L, "kasi.sleep");
    {
        auto op = std::make_unique<SleepOp>();
        op->lp = lp.weak_from_this();
        op->id = lp.running_call();
        uv_timer_init(lp.loop(), op->timer.get());
        SleepOp* raw = op.get();
        raw->timer->data = raw;
        uv_timer_start(
            raw->timer.get(),
            [](uv_timer_t* t) {
                auto own = take_sleep(t->loop, static_cast<SleepOp*>(t->data));
                if (!own) return;
                if (auto lp = own->lp.lock()) lp->deliver(own->id, [](lua_State*) { return 0; });
            },
            uint64_t(std::llround(secs * 1000)), 0);
        std::lock_guard<std::mutex> lock(sleeps_mu);
        sleeps()[lp.loop()][raw] = std::move(op);
    }  // no C++ object alive past here: await() may yield
    return lp.await(L);
}

int push_dns(lua_State* L, const DnsResponse& r, DnsType type) {
    if (r.status != DnsStatus::ok) {
        lua_pushnil(L);
        lua_pushstring(L, std::string(dns_status_name(r.status)).c_str());
        return 2;
    }
    lua_createtable(L, int(r.records.size()), 0);
    int n = 0;
    for (const auto& rec : r.records) {
        if (rec.type != type) continue;
        if (type == DnsType::mx) {
            lua_createtable(L, 0, 3);
            lua_pushstring(L, rec.name.c_str());
            lua_setfield(L, -2, "exchange");
            lua_pushinteger(L, rec.pref);
            lua_setfield(L, -2, "priority");
            lua_pushinteger(L, rec.ttl);
            lua_setfield(L, -2, "ttl");
        } else if (type == DnsType::a || type == DnsType::aaaa) {
            lua_pushstring(L, rec.addr.str().c_str());
        } else if (type == DnsType::txt) {
            lua_pushlstring(L, rec.text.data(), rec.text.size());
        } else {
            lua_pushstring(L, rec.name.c_str());
        }
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

template <DnsType type>
int api_dns(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    LuaLoop& lp = in_hook(L, "kasi.dns");
    auto res = lp.running_resolver().lock();
    if (!res) return luaL_error(L, "kasi.dns: no resolver on this loop");
    if (type == DnsType::ptr) {
        auto ip = IpAddr::parse(name);
        if (!ip) return luaL_error(L, "kasi.dns.ptr: '%s' is not an IP address", name.c_str());
        name = reverse_name(*ip);
    } else {
        std::string ascii, err;
        if (!idna_to_ascii(name, ascii, err))
            return luaL_error(L, "kasi.dns: invalid name '%s': %s", name.c_str(), err.c_str());
        name = ascii;
    }
    std::weak_ptr<LuaLoop> weak = lp.weak_from_this();
    uint64_t id = lp.running_call();
    res->query(name, type, [weak, id](const DnsResponse& r) {
        auto lp = weak.lock();
        if (!lp) return;
        lp->deliver(id, [r](lua_State* co) { return push_dns(co, r, type); });
    });
    return lp.await(L);
}

// kasi.config.<kind>(name): `build` reads the file through ConfigDir and pushes one value;
// the value is cached per state (files are read once per generation and loop).
template <class Build>
int config_cached(lua_State* L, char kind, Build build) {
    std::string name = luaL_checkstring(L, 1);
    LuaLoop* lp = LuaLoop::of(L);
    std::string key = std::string(1, kind) + ":" + name;
    auto& cache = lp->config_cache();
    if (auto it = cache.find(key); it != cache.end()) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, it->second);
        return 1;
    }
    Diagnostics d;
    if (!build(ConfigDir(lp->env().config_dir), name, d) || !d.ok()) {
        std::string msg = d.errors.empty() ? "cannot read " + name : d.errors.front();
        return luaL_error(L, "kasi.config: %s", msg.c_str());
    }
    lua_pushvalue(L, -1);
    cache[key] = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

int api_config_get(lua_State* L) {
    return config_cached(L, 'v',
                         [L](const ConfigDir& dir, const std::string& name, Diagnostics& d) {
                             auto v = dir.value(name, d);
                             if (!d.ok()) return false;
                             if (v)
                                 lua_pushstring(L, v->text.c_str());
                             else
                                 lua_pushnil(L);
                             return true;
                         });
}

int api_config_list(lua_State* L) {
    return config_cached(L, 'l',
                         [L](const ConfigDir& dir, const std::string& name, Diagnostics& d) {
                             auto lines = dir.list(name, d);
                             if (!d.ok()) return false;
                             lua_createtable(L, int(lines.size()), 0);
                             for (size_t i = 0; i < lines.size(); ++i) {
                                 lua_pushstring(L, lines[i].text.c_str());
                                 lua_rawseti(L, -2, int(i + 1));
                             }
                             return true;
                         });
}

void push_ini_value(lua_State* L, const std::optional<std::string>& v) {
    if (!v) {
        lua_pushboolean(L, 1);  // a valueless key: present
        return;
    }
    switch (ini_infer_type(v)) {
        case IniType::integer:
        case IniType::floating:
            lua_pushnumber(L, std::strtod(v->c_str(), nullptr));
            break;
        default:
            lua_pushstring(L, v->c_str());
    }
}

// kasi.config.ini(name) -> { main = {k = v, ...}, section = {...} }; numbers as numbers,
// key[] arrays as arrays, valueless keys as true.
int api_config_ini(lua_State* L) {
    return config_cached(L, 'i',
                         [L](const ConfigDir& dir, const std::string& name, Diagnostics& d) {
                             Ini ini = dir.ini(name, d);
                             if (!d.ok()) return false;
                             lua_newtable(L);
                             for (const auto& sec : ini.sections) {
                                 lua_newtable(L);
                                 for (const auto& e : sec.entries) {
                                     if (e.is_array) {
                                         lua_createtable(L, int(e.array.size()), 0);
                                         for (size_t i = 0; i < e.array.size(); ++i) {
                                             push_ini_value(L, e.array[i]);
                                             lua_rawseti(L, -2, int(i + 1));
                                         }
                                     } else {
                                         push_ini_value(L, e.value);
                                     }
                                     lua_setfield(L, -2, e.key.c_str());
                                 }
                                 lua_setfield(L, -2, sec.name.c_str());
                             }
                             return true;
                         });
}

int push_redis_reply(lua_State* L, const RedisReply& r) {
    switch (r.type) {
        case RedisReply::Type::nil:
            lua_pushnil(L);
            return 1;
        case RedisReply::Type::integer:
            lua_pushnumber(L, double(r.integer));
            return 1;
        case RedisReply::Type::string:
        case RedisReply::Type::status:
            lua_pushlstring(L, r.str.data(), r.str.size());
            return 1;
        case RedisReply::Type::array:
            lua_createtable(L, int(r.elements.size()), 0);
            for (size_t i = 0; i < r.elements.size(); ++i) {
                const RedisReply& e = r.elements[i];
                if (e.type == RedisReply::Type::error)  // inside an array: its text
                    lua_pushlstring(L, e.str.data(), e.str.size());
                else
                    push_redis_reply(L, e);
                lua_rawseti(L, -2, int(i + 1));
            }
            return 1;
        case RedisReply::Type::error:
            lua_pushnil(L);
            lua_pushlstring(L, r.str.data(), r.str.size());
            return 2;
    }
    return 0;
}

// kasi.redis.command(name, args...) and kasi.redis.<name>(args...) (upvalue 1: the name).
int api_redis_command(lua_State* L) {
    LuaLoop& lp = in_hook(L, "kasi.redis");
    const auto& server = lp.env().redis;
    if (!server) return luaL_error(L, "kasi.redis: no Redis server configured (config/redis.ini)");
    std::vector<std::string> args;
    if (lua_type(L, lua_upvalueindex(1)) == LUA_TSTRING)
        args.push_back(lua_tostring(L, lua_upvalueindex(1)));
    int n = lua_gettop(L);
    for (int i = 1; i <= n; ++i) {
        if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
            return luaL_error(L, "kasi.redis: argument %d is a %s, not a string or number", i,
                              luaL_typename(L, i));
        size_t len = 0;
        const char* s = lua_tolstring(L, i, &len);
        args.emplace_back(s, len);
    }
    if (args.empty()) return luaL_error(L, "kasi.redis.command: no command");
    std::weak_ptr<LuaLoop> weak = lp.weak_from_this();
    uint64_t id = lp.running_call();
    redis_command(lp.loop(), *server, std::move(args), [weak, id](const RedisReply& r) {
        if (auto l = weak.lock())
            l->deliver(id, [r](lua_State* co) { return push_redis_reply(co, r); });
    });
    return lp.await(L);
}

// kasi.redis.incr etc.: any missing field is the command of that name.
int api_redis_index(lua_State* L) {
    std::string name = luaL_checkstring(L, 2);
    for (char& c : name) c = char(std::toupper(static_cast<unsigned char>(c)));
    lua_pushstring(L, name.c_str());
    lua_pushcclosure(L, api_redis_command, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);  // cached for next time
    return 1;
}

int push_http_response(lua_State* L, const HttpClientResponse& r) {
    if (!r.error.empty()) {
        lua_pushnil(L);
        lua_pushstring(L, r.error.c_str());
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, r.status);
    lua_setfield(L, -2, "status");
    lua_newtable(L);
    for (const auto& [k, v] : r.headers) {
        lua_getfield(L, -1, k.c_str());
        if (lua_isstring(L, -1)) {  // repeated: joined as HTTP allows
            std::string joined = std::string(lua_tostring(L, -1)) + ", " + v;
            lua_pop(L, 1);
            lua_pushstring(L, joined.c_str());
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, v.data(), v.size());
        }
        lua_setfield(L, -2, k.c_str());
    }
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, r.body.data(), r.body.size());
    lua_setfield(L, -2, "body");
    return 1;
}

bool http_token(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    return true;
}

// kasi.http.request{ url =, method =, headers = {}, body =, timeout =, max_bytes = }
//   -> { status =, headers = {lower-case name = value}, body = } or nil, error
int api_http_request(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    LuaLoop& lp = in_hook(L, "kasi.http.request");
    HttpClientRequest req;
    auto str_field = [L](const char* name, std::string& out) {
        lua_getfield(L, 1, name);
        if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
            size_t len = 0;
            const char* s = lua_tolstring(L, -1, &len);
            out.assign(s, len);
        } else if (!lua_isnil(L, -1)) {
            luaL_error(L, "kasi.http.request: %s must be a string", name);
        }
        lua_pop(L, 1);
    };
    str_field("url", req.url);
    str_field("method", req.method);
    str_field("body", req.body);
    for (char& c : req.method) c = char(std::toupper(static_cast<unsigned char>(c)));
    if (req.url.empty()) return luaL_error(L, "kasi.http.request: url is required");
    if (!http_token(req.method)) return luaL_error(L, "kasi.http.request: bad method");
    lua_getfield(L, 1, "timeout");
    double timeout = luaL_optnumber(L, -1, 10);
    lua_pop(L, 1);
    if (!(timeout > 0) || timeout > 300)
        return luaL_error(L, "kasi.http.request: timeout is 0 to 300 seconds");
    req.timeout_ms = int(timeout * 1000);
    lua_getfield(L, 1, "max_bytes");
    double max_bytes = luaL_optnumber(L, -1, double(req.max_response_bytes));
    lua_pop(L, 1);
    if (!(max_bytes >= 0) || max_bytes > double(64 << 20))
        return luaL_error(L, "kasi.http.request: max_bytes is at most 64 MiB");
    req.max_response_bytes = size_t(max_bytes);
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING ||
                (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                return luaL_error(L, "kasi.http.request: headers are name = string");
            lua_pushvalue(L, -2);
            std::string k = lua_tostring(L, -1);
            lua_pop(L, 1);
            std::string v = lua_tostring(L, -1);
            if (!http_token(k) || v.find_first_of("\r\n") != std::string::npos)
                return luaL_error(L, "kasi.http.request: bad header '%s'", k.c_str());
            req.headers.emplace_back(k, v);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    SSL_CTX* tls = lp.http_tls();
    std::weak_ptr<LuaLoop> weak = lp.weak_from_this();
    uint64_t id = lp.running_call();
    http_request(lp.loop(), tls, std::move(req), [weak, id](HttpClientResponse r) {
        if (auto l = weak.lock())
            l->deliver(id, [r = std::move(r)](lua_State* co) { return push_http_response(co, r); });
    });
    return lp.await(L);
}

QueueManager& delivery_loop(lua_State* L, const char* what) {
    LuaLoop* lp = LuaLoop::of(L);
    QueueManager* qm = lp && lp->loop() ? QueueManager::on_loop(lp->loop()) : nullptr;
    if (!qm) luaL_error(L, "%s works only in outbound hooks (the delivery loop)", what);
    return *qm;
}

// kasi.queue.limits(key) -> {max_connections=, ..., set_by=} or nil
int api_queue_limits(lua_State* L) {
    std::string key = luaL_checkstring(L, 1);
    const ReadyQueue* rq = delivery_loop(L, "kasi.queue.limits").ready_queue(key);
    if (!rq) {
        lua_pushnil(L);
        return 1;
    }
    push_limits(L, rq->limits());
    return 1;
}

// kasi.queue.set_limits(key, {max_message_rate = '10/min', ...}, seconds) -> true or nil, err
int api_queue_set_limits(lua_State* L) {
    std::string key = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    double secs = luaL_checknumber(L, 3);
    if (!(secs > 0) || secs > 7 * 86400)
        return luaL_error(L, "kasi.queue.set_limits: 1 second to 7 days");
    QueueManager& qm = delivery_loop(L, "kasi.queue.set_limits");
    LimitOverride o{LimitOverride::Kind::site, key, "lua"};
    std::string err;
    if (!limits_from_lua(L, 2, o, err))
        return luaL_error(L, "kasi.queue.set_limits: %s", err.c_str());
    if (!qm.set_temporary_limits(key, o, int64_t(secs))) {
        lua_pushnil(L);
        lua_pushstring(L, ("no ready queue " + key).c_str());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

// kasi.metrics.counter(name [, n = 1 [, labels]]) / kasi.metrics.gauge(name, value [, labels])
template <bool Counter>
int api_metric(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    double v = Counter ? luaL_optnumber(L, 2, 1) : luaL_checknumber(L, 2);
    PolicyMetrics::Labels labels;
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) == LUA_TSTRING &&
                (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
                lua_pushvalue(L, -2);
                std::string k = lua_tostring(L, -1);
                lua_pop(L, 1);
                labels.emplace_back(k, lua_tostring(L, -1));
            }
            lua_pop(L, 1);
        }
        std::sort(labels.begin(), labels.end());
    } else if (!lua_isnoneornil(L, 3)) {
        return luaL_error(L, "kasi.metrics: labels are a table of strings");
    }
    std::string err;
    bool ok = Counter ? PolicyMetrics::global().add(name, labels, v, err)
                      : PolicyMetrics::global().set(name, labels, v, err);
    if (!ok) return luaL_error(L, "kasi.metrics: %s", err.c_str());
    return 0;
}

std::string counter_key(lua_State* L) {
    size_t len = 0;
    const char* k = luaL_checklstring(L, 1, &len);
    std::string key(k, len);
    if (key.empty() || key.size() > CounterStore::max_key ||
        key.find_first_of("\t\r\n") != std::string::npos)
        luaL_error(L, "kasi.counter: a key is 1 to %d characters without tabs or line breaks",
                   int(CounterStore::max_key));
    return key;
}

// kasi.counter.add(key [, n = 1 [, ttl_seconds]]) -> the new value
int api_counter_add(lua_State* L) {
    std::string key = counter_key(L);
    auto n = int64_t(luaL_optnumber(L, 2, 1));
    auto ttl = int64_t(luaL_optnumber(L, 3, 0));
    lua_pushnumber(L, double(CounterStore::global().add(key, n, ttl, now_ms())));
    return 1;
}

// kasi.counter.get(key) -> the value (0 for a counter never added to, or expired)
int api_counter_get(lua_State* L) {
    std::string key = counter_key(L);
    lua_pushnumber(L, double(CounterStore::global().get(key, now_ms())));
    return 1;
}

// The secret (and VERP prefix) of verp.ini / unsubscribe.ini, read once per state and
// generation like kasi.config; an error when the file has no secret.
template <class Config>
void push_token_config(lua_State* L, char kind, const char* file) {
    config_cached(L, kind, [L, file](const ConfigDir& dir, const std::string&, Diagnostics& d) {
        auto c = Config::load(dir, d);
        if (!d.ok()) return false;
        if (!c) {
            d.error(file, 0, "not configured");
            return false;
        }
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, c->secret().data(), c->secret().size());
        lua_setfield(L, -2, "secret");
        if constexpr (std::is_same_v<Config, VerpConfig>) {
            lua_pushstring(L, c->prefix().c_str());
            lua_setfield(L, -2, "prefix");
        }
        return true;
    });
}

std::string table_str(lua_State* L, int idx, const char* field) {
    lua_getfield(L, idx, field);
    size_t n = 0;
    const char* v = lua_tolstring(L, -1, &n);
    std::string out = v ? std::string(v, n) : std::string();
    lua_pop(L, 1);
    return out;
}

// kasi.verp.decode(address) -> {message_id=, recipient= | rcpt_index=} or nil, why
int api_verp_decode(lua_State* L) {
    std::string addr = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_pushstring(L, "verp.ini");
    lua_replace(L, 1);  // config_cached reads the name from argument 1
    push_token_config<VerpConfig>(L, 'V', "verp.ini");
    std::string why;
    auto v = verp_decode(table_str(L, -1, "secret"), table_str(L, -1, "prefix"), addr, why);
    if (!v) {
        lua_pushnil(L);
        lua_pushstring(L, why.c_str());
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, v->message_id.c_str());
    lua_setfield(L, -2, "message_id");
    if (v->rcpt_index >= 0) {
        lua_pushinteger(L, v->rcpt_index);
        lua_setfield(L, -2, "rcpt_index");
    } else {
        lua_pushstring(L, v->recipient.c_str());
        lua_setfield(L, -2, "recipient");
    }
    return 1;
}

// kasi.unsubscribe.verify(token) -> {recipient=, list=, tenant=, issued=} or nil
int api_unsubscribe_verify(lua_State* L) {
    std::string token = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_pushstring(L, "unsubscribe.ini");
    lua_replace(L, 1);
    push_token_config<UnsubscribeConfig>(L, 'U', "unsubscribe.ini");
    auto t = verify_unsubscribe_token(table_str(L, -1, "secret"), token);
    if (!t) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, t->recipient.c_str());
    lua_setfield(L, -2, "recipient");
    lua_pushstring(L, t->list.c_str());
    lua_setfield(L, -2, "list");
    lua_pushstring(L, t->tenant.c_str());
    lua_setfield(L, -2, "tenant");
    lua_pushnumber(L, double(t->issued_s));
    lua_setfield(L, -2, "issued");
    return 1;
}

// kasi.provider_of(host) -> the mailbox provider of an MX host or a domain ("google",
// "microsoft", ..., "other"): the one provider table of Kasi (core/classify/provider_table.h).
int api_provider_of(lua_State* L) {
    size_t n = 0;
    const char* host = luaL_checklstring(L, 1, &n);
    std::string_view p = ProviderTable::shipped().provider_of(std::string_view(host, n));
    lua_pushlstring(L, p.data(), p.size());
    return 1;
}

void set_fn(lua_State* L, const char* name, lua_CFunction f) {
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
}

}  // namespace

void lua_close_loop(uv_loop_t* loop) {
    std::map<SleepOp*, std::unique_ptr<SleepOp>> mine;
    {
        std::lock_guard<std::mutex> lock(sleeps_mu);
        auto it = sleeps().find(loop);
        if (it != sleeps().end()) {
            mine = std::move(it->second);
            sleeps().erase(it);
        }
    }
    mine.clear();  // closes the timers, on this (the loop's) thread
    http_close_loop(loop);
    redis_close_loop(loop);
}

void install_kasi_api(lua_State* L) {
    lua_newtable(L);  // kasi
    for (int c = 900; c <= 909; ++c) {
        if (Code(c) == Code::hook_next) continue;
        std::string name(code_name(Code(c)));
        lua_pushinteger(L, c);
        lua_setfield(L, -2, name.c_str());
        lua_pushinteger(L, c);
        lua_setglobal(L, name.c_str());
    }
    lua_newtable(L);
    set_fn(L, "debug", log_at<log::Level::debug>);
    set_fn(L, "info", log_at<log::Level::info>);
    set_fn(L, "notice", log_at<log::Level::notice>);
    set_fn(L, "warn", log_at<log::Level::warn>);
    set_fn(L, "error", log_at<log::Level::error>);
    lua_setfield(L, -2, "log");
    set_fn(L, "now", api_now);
    set_fn(L, "provider_of", api_provider_of);
    set_fn(L, "sleep", api_sleep);
    lua_newtable(L);
    set_fn(L, "mx", api_dns<DnsType::mx>);
    set_fn(L, "a", api_dns<DnsType::a>);
    set_fn(L, "aaaa", api_dns<DnsType::aaaa>);
    set_fn(L, "txt", api_dns<DnsType::txt>);
    set_fn(L, "ptr", api_dns<DnsType::ptr>);
    lua_setfield(L, -2, "dns");
    lua_newtable(L);
    set_fn(L, "get", api_config_get);
    set_fn(L, "list", api_config_list);
    set_fn(L, "ini", api_config_ini);
    lua_setfield(L, -2, "config");
    lua_newtable(L);
    set_fn(L, "counter", api_metric<true>);
    set_fn(L, "gauge", api_metric<false>);
    lua_setfield(L, -2, "metrics");
    lua_newtable(L);
    set_fn(L, "limits", api_queue_limits);
    set_fn(L, "set_limits", api_queue_set_limits);
    lua_setfield(L, -2, "queue");
    lua_newtable(L);
    set_fn(L, "request", api_http_request);
    lua_setfield(L, -2, "http");
    lua_newtable(L);  // kasi.redis
    lua_pushnil(L);
    lua_pushcclosure(L, api_redis_command, 1);
    lua_setfield(L, -2, "command");
    lua_newtable(L);
    lua_pushcfunction(L, api_redis_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "redis");
    lua_newtable(L);
    set_fn(L, "add", api_counter_add);
    set_fn(L, "get", api_counter_get);
    lua_setfield(L, -2, "counter");
    lua_newtable(L);
    set_fn(L, "decode", api_verp_decode);
    lua_setfield(L, -2, "verp");
    lua_newtable(L);
    set_fn(L, "verify", api_unsubscribe_verify);
    lua_setfield(L, -2, "unsubscribe");
    install_lua_suppression(L);
    install_lua_reputation(L);
    lua_setglobal(L, "kasi");
    lua_pushcfunction(L, log_at<log::Level::info>);
    lua_setglobal(L, "print");
}

}  // namespace kasi
