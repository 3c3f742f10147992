#include "policy/lua_loop.h"

#include <fmt/format.h>

#include "core/hooks/runner.h"
#include "core/log/log.h"
#include "core/tls/client_tls.h"
#include "policy/lua_api.h"
#include "policy/lua_objects.h"

namespace kasi {

namespace {
const char* const loop_key = "kasi.loop";

// "hook_<name>" for each hook, built once: the field every call looks up.
const std::string& hook_field(Hook h) {
    static const auto names = [] {
        std::vector<std::string> v;
        for (int i = 0; i < hook_count; ++i)
            v.push_back(fmt::format("hook_{}", hook_name(Hook(i))));
        return v;
    }();
    return names[size_t(h)];
}
}  // namespace

struct LuaLoop::Call {
    uint64_t id = 0;
    int ref = LUA_NOREF;  // anchors the coroutine in the registry
    lua_State* co = nullptr;
    Hook hook = Hook::count_;
    size_t plugin = 0;
    uint64_t budget = 0;
    std::weak_ptr<Resolver> resolver;
    PendingHook pending;
    bool suspended = false;  // the hook runner was told to wait
    bool running = false;    // inside lua_resume
    bool awaiting = false;   // yielded in await(): an API owes a deliver()
    Pusher stash;            // delivered while still running
};

LuaLoop::LuaLoop(std::shared_ptr<const LuaEnv> env, uv_loop_t* loop)
    : env_(std::move(env)), loop_(loop), state_(env_->limits, env_->search_path, env_->modules) {}

LuaLoop::~LuaLoop() = default;

SSL_CTX* LuaLoop::http_tls() {
    if (http_tls_ || http_tls_failed_) return http_tls_.get();
    std::string err;
    http_tls_ = make_client_tls_ctx(env_->http_ca_file, err);
    if (!http_tls_) {
        http_tls_failed_ = true;
        log::error("kasi.http.request: no https: {}", err);
    }
    return http_tls_.get();
}

LuaLoop* LuaLoop::of(lua_State* L) {
    lua_getfield(L, LUA_REGISTRYINDEX, loop_key);
    auto* p = static_cast<LuaLoop*>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return p;
}

std::shared_ptr<LuaLoop> LuaLoop::create(std::shared_ptr<const LuaEnv> env, uv_loop_t* loop,
                                         std::string& err) {
    std::shared_ptr<LuaLoop> lp(new LuaLoop(std::move(env), loop));
    if (!lp->state_.ok()) {
        err = "cannot create a Lua state";
        return nullptr;
    }
    if (!lp->load_plugins(err)) return nullptr;
    return lp;
}

bool LuaLoop::validate(LuaEnv& env, std::string& err) {
    LuaLoop lp(std::shared_ptr<const LuaEnv>(&env, [](const LuaEnv*) {}), nullptr);
    if (!lp.state_.ok()) {
        err = "cannot create a Lua state";
        return false;
    }
    if (!lp.load_plugins(err)) return false;
    lua_State* L = lp.state_.L();
    for (size_t i = 0; i < env.plugins.size(); ++i) {
        auto& def = env.plugins[i];
        def.hooks.clear();
        lua_rawgeti(L, LUA_REGISTRYINDEX, lp.plugin_refs_[i]);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                std::string key = lua_tostring(L, -2);
                if (key.rfind("hook_", 0) == 0) {
                    auto h = hook_from_name(key.substr(5));
                    int line = 0;
                    if (lua_isfunction(L, -1)) {
                        lua_Debug ar;
                        lua_pushvalue(L, -1);
                        lua_getinfo(L, ">S", &ar);
                        line = ar.linedefined;
                    }
                    if (!h) {
                        err = fmt::format("{}:{}: unknown hook '{}'", def.path, line, key);
                        lua_settop(L, 0);
                        return false;
                    }
                    if (!lua_isfunction(L, -1)) {
                        err = fmt::format("{}: {} is a {}, not a function", def.path, key,
                                          luaL_typename(L, -1));
                        lua_settop(L, 0);
                        return false;
                    }
                    def.hooks.push_back(*h);
                }
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return true;
}

// Registers the API, then runs each plugin's main chunk in its own environment (globals
// it sets stay its own; reads fall through to the shared globals).
bool LuaLoop::load_plugins(std::string& err) {
    lua_State* L = state_.L();
    lua_pushlightuserdata(L, this);
    lua_setfield(L, LUA_REGISTRYINDEX, loop_key);
    install_kasi_api(L);
    install_lua_objects(L);
    for (const auto& def : env_->plugins) {
        if (!state_.load(def.source, def.path, err)) return false;
        lua_newtable(L);  // the plugin's environment
        lua_newtable(L);
        lua_pushvalue(L, LUA_GLOBALSINDEX);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
        lua_setfenv(L, -2);
        state_.begin_slice(env_->limits.instructions);
        lua_pushcfunction(L, [](lua_State* L) -> int {
            luaL_traceback(L, L, lua_tostring(L, 1) ? lua_tostring(L, 1) : "(error object)", 1);
            return 1;
        });
        lua_insert(L, -2);
        int rc = lua_pcall(L, 0, 1, -2);
        state_.end_slice();
        if (rc != 0) {
            err = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error while loading";
            if (err.find("attempt to yield") != std::string::npos)
                err += " (kasi.dns, kasi.sleep and friends work only inside hooks)";
            lua_pop(L, 2);
            return false;
        }
        lua_remove(L, -2);
        if (!lua_istable(L, -1)) {
            err = fmt::format("{}: the file must return a table of hook functions, not {}",
                              def.path, luaL_typename(L, -1));
            lua_pop(L, 1);
            return false;
        }
        plugin_refs_.push_back(luaL_ref(L, LUA_REGISTRYINDEX));
    }
    return true;
}

uint64_t LuaLoop::running_call() const {
    return running_ ? running_->id : 0;
}

std::weak_ptr<Resolver> LuaLoop::running_resolver() const {
    return running_ ? running_->resolver : std::weak_ptr<Resolver>();
}

std::optional<Result> LuaLoop::call(size_t plugin, Hook h, HookCall& hc) {
    lua_State* L = state_.L();
    auto c = std::make_unique<Call>();
    c->id = next_id_++;
    c->hook = h;
    c->plugin = plugin;
    c->budget = env_->limits.instructions;
    if (hc.runner) c->resolver = hc.runner->resolver();
    c->co = lua_newthread(L);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_State* co = c->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, plugin_refs_[plugin]);
    lua_getfield(co, -1, hook_field(h).c_str());
    lua_remove(co, -2);
    int nargs = push_hook_args(co, hc);
    Call& ref = *c;
    calls_.emplace(c->id, std::move(c));
    return resume(ref, nargs, &hc);
}

std::optional<Result> LuaLoop::resume(Call& c, int nargs, HookCall* hc) {
    c.running = true;
    c.awaiting = false;
    running_ = &c;
    state_.begin_slice(c.budget);
    int rc = lua_resume(c.co, nargs);
    c.budget = state_.end_slice();
    running_ = nullptr;
    c.running = false;
    if (rc == LUA_YIELD) {
        if (!c.awaiting) return finish(c, fail(c, "the hook yielded outside a kasi API call"));
        if (!c.suspended) {
            c.pending = hc->suspend();
            c.suspended = true;
        }
        return std::nullopt;
    }
    if (rc != 0) {
        std::string msg = lua_tostring(c.co, -1) ? lua_tostring(c.co, -1) : "(error object)";
        if (rc == LUA_ERRMEM || msg == "not enough memory")
            msg = fmt::format(
                "not enough memory (limits: {} MiB per call, {} MiB per state; lua.ini "
                "call_memory_mb, memory_mb)",
                env_->limits.call_memory >> 20, env_->limits.state_memory >> 20);
        return finish(c, fail(c, lua_error_with_traceback(c.co, msg)));
    }
    if (c.suspended) hc = c.pending.call();
    return finish(c, answer(c, lua_gettop(c.co), hc));
}

Result LuaLoop::fail(Call& c, const std::string& why) {
    const auto& def = env_->plugins[c.plugin];
    log::error("lua plugin {} hook_{} failed: {}", def.name, hook_name(c.hook), why);
    // classify_response only comments on a verdict already made: the rules' answer stands.
    // So does inbound_report: Kasi's plan for the report stands.
    if (c.hook == Hook::classify_response || c.hook == Hook::inbound_report) return Result::cont();
    return Result::denysoft("Temporary failure (policy error)");
}

// The coroutine returned: its values are the answer (code, then text, seconds or next
// hops). Nothing means CONT.
Result LuaLoop::answer(Call& c, int n, HookCall* hc) {
    lua_State* co = c.co;
    if (n == 0 || lua_isnil(co, 1)) return Result::cont();
    Result r;
    if (lua_type(co, 1) == LUA_TNUMBER) {
        int v = int(lua_tointeger(co, 1));
        if (v < 900 || v > 909 || v == int(Code::hook_next))
            return fail(c, fmt::format("returned {}, which is not a hook code", v));
        r.code = Code(v);
    } else if (lua_type(co, 1) == LUA_TSTRING) {
        auto code = code_from_name(lua_tostring(co, 1));
        if (!code)
            return fail(
                c, fmt::format("returned '{}', which is not a hook code", lua_tostring(co, 1)));
        r.code = *code;
    } else {
        return fail(c, fmt::format("returned a {}, not a hook code", luaL_typename(co, 1)));
    }
    if (n < 2 || lua_isnil(co, 2)) return r;
    if (c.hook == Hook::get_mx && r.code == Code::ok &&
        (lua_istable(co, 2) || lua_type(co, 2) == LUA_TSTRING)) {
        std::vector<NextHop> hops;
        std::string err;
        if (!next_hops_from_lua(co, 2, hops, err)) return fail(c, err);
        if (hc && hc->outbound) hc->outbound->mx = std::move(hops);
        return r;
    }
    if (c.hook == Hook::get_egress && r.code == Code::ok && lua_type(co, 2) == LUA_TSTRING) {
        if (hc && hc->outbound) hc->outbound->source = lua_tostring(co, 2);
        return r;
    }
    if (lua_type(co, 2) == LUA_TSTRING || lua_type(co, 2) == LUA_TNUMBER) {
        size_t len = 0;
        const char* s = lua_tolstring(co, 2, &len);
        r.msg.assign(s, len);
        for (char ch : r.msg)
            if (ch == '\r' || ch == '\n' || ch == '\0')
                return fail(c, "the reply text contains CR, LF or NUL");
        return r;
    }
    if (lua_istable(co, 2) && c.hook == Hook::classify_response && r.code == Code::ok) {
        ResponseOverride o;
        std::string err;
        if (!response_override_from_lua(co, 2, o, err)) return fail(c, err);
        if (hc && hc->outbound) hc->outbound->response = std::move(o);
        return r;
    }
    if (lua_istable(co, 2) && c.hook == Hook::inbound_report && r.code == Code::ok) {
        ReportOverride o;
        std::string err;
        if (!report_override_from_lua(co, 2, o, err)) return fail(c, err);
        if (hc && hc->outbound) hc->outbound->report = std::move(o);
        return r;
    }
    if (lua_istable(co, 2) && c.hook == Hook::queue_limits && r.code == Code::ok) {
        LimitOverride o{LimitOverride::Kind::site, "", "lua:" + env_->plugins[c.plugin].name};
        std::string err;
        if (!limits_from_lua(co, 2, o, err)) return fail(c, err);
        if (hc && hc->outbound) hc->outbound->limits = std::move(o);
        return r;
    }
    return fail(c, fmt::format("returned a {} after the code", luaL_typename(co, 2)));
}

std::optional<Result> LuaLoop::finish(Call& c, Result r) {
    bool suspended = c.suspended;
    PendingHook pending = c.pending;
    luaL_unref(state_.L(), LUA_REGISTRYINDEX, c.ref);
    calls_.erase(c.id);  // c is gone from here on
    if (!suspended) return r;
    pending.resume(std::move(r));
    return std::nullopt;
}

void LuaLoop::deliver(uint64_t id, Pusher push) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;  // the call is gone (error, reload): drop the result
    Call& c = *it->second;
    if (c.running) {
        c.stash = std::move(push);
        return;
    }
    if (!c.awaiting) return;
    auto self = shared_from_this();  // the resumed code may drop the last other reference
    lua_State* co = c.co;
    int n = push(co);
    resume(c, n, nullptr);
}

int LuaLoop::await(lua_State* L) {
    if (!running_) return luaL_error(L, "this kasi function works only inside a hook");
    if (running_->stash) {
        Pusher p = std::move(running_->stash);
        running_->stash = nullptr;
        return p(L);
    }
    running_->awaiting = true;
    return lua_yield(L, 0);
}

}  // namespace kasi
