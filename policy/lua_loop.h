// The Lua side of one event loop for one config generation: a sandboxed state with every
// Lua plugin loaded, and the hook calls running in it.
//
// Each hook call is a coroutine. call() resumes it at once; if it finishes, the answer is
// returned synchronously; if it yields inside a kasi API function (DNS, sleep, ...), the
// hook is suspended and the API's callback resumes the coroutine on this loop later
// (deliver()). Results that an API produces synchronously (a DNS cache hit) are handed
// back without yielding. A call that errors, overruns its instruction or memory budget,
// or returns something that is not a hook answer logs "file:line: message" with a
// traceback and answers DENYSOFT: a policy can fail a message, never the server.
//
// Lifetime: owned by LuaRuntime (one per loop, created on first use on that loop's
// thread). Asynchronous callbacks hold a weak_ptr and a call id, so a reload or a hook
// timeout simply makes late answers disappear.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/hooks/plugin.h"
#include "core/tls/ssl_ptr.h"
#include "policy/lua_redis.h"
#include "policy/lua_state.h"

namespace kasi {

class Resolver;

struct LuaPluginDef {
    std::string name;    // as listed in config/plugins
    std::string path;    // DIR/plugins/NAME.lua
    std::string source;  // read once, at config load
    std::vector<Hook> hooks;
};

// What every state of one config generation is built from (read-only, shared).
struct LuaEnv {
    std::vector<LuaPluginDef> plugins;
    LuaLimits limits;
    std::vector<std::string> search_path;  // for require()
    std::string config_dir;                // DIR/config, for kasi.config
    std::optional<RedisServer> redis;      // config/redis.ini, for kasi.redis
    std::string http_ca_file;              // lua.ini http_ca_file ("" = the system's CAs)
    // what require() read, shared by all states of the generation
    std::shared_ptr<LuaModuleSources> modules = std::make_shared<LuaModuleSources>();
};

class LuaLoop : public std::enable_shared_from_this<LuaLoop> {
  public:
    // Builds the state and runs every plugin's main chunk; null with `err` on failure.
    static std::shared_ptr<LuaLoop> create(std::shared_ptr<const LuaEnv> env, uv_loop_t* loop,
                                           std::string& err);
    // Builds a state on no loop, to validate a generation (config check, reload), and
    // records which hooks each plugin defines.
    static bool validate(LuaEnv& env, std::string& err);

    std::optional<Result> call(size_t plugin, Hook h, HookCall& c);

    // ---- for API functions (lua_api.cpp) ----
    static LuaLoop* of(lua_State* L);
    uv_loop_t* loop() const { return loop_; }
    const LuaEnv& env() const { return *env_; }
    LuaState& state() { return state_; }
    // The id of the call running now; 0 outside a hook (the main chunk).
    uint64_t running_call() const;
    std::weak_ptr<Resolver> running_resolver() const;
    // Hands the outcome of an asynchronous operation to call `id`: `push` pushes the
    // values the API function returns and returns how many.
    using Pusher = std::function<int(lua_State*)>;
    void deliver(uint64_t id, Pusher push);
    // Called by an API function right after starting its operation: returns the values
    // at once if they were delivered synchronously, else yields.
    int await(lua_State* L);
    // Per-state cache for kasi.config (files are read once per generation and loop).
    std::unordered_map<std::string, int>& config_cache() { return config_cache_; }
    // The TLS client context of kasi.http.request, made on first use; null (logged) if the
    // CA file cannot be loaded.
    SSL_CTX* http_tls();

    ~LuaLoop();

  private:
    struct Call;
    LuaLoop(std::shared_ptr<const LuaEnv> env, uv_loop_t* loop);
    bool load_plugins(std::string& err);
    std::optional<Result> resume(Call& c, int nargs, HookCall* hc);
    std::optional<Result> finish(Call& c, Result r);
    Result answer(Call& c, int nresults, HookCall* hc);
    Result fail(Call& c, const std::string& why);

    std::shared_ptr<const LuaEnv> env_;
    uv_loop_t* loop_;
    LuaState state_;
    std::vector<int> plugin_refs_;  // registry refs of each plugin's table
    std::unordered_map<uint64_t, std::unique_ptr<Call>> calls_;
    std::unordered_map<std::string, int> config_cache_;
    SslCtxPtr http_tls_;
    bool http_tls_failed_ = false;
    Call* running_ = nullptr;
    uint64_t next_id_ = 1;
};

}  // namespace kasi
