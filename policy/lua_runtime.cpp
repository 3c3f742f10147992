#include "policy/lua_runtime.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "core/hooks/runner.h"
#include "core/log/log.h"

#ifndef KASI_SOURCE_LUA_DIR
#define KASI_SOURCE_LUA_DIR KASI_LUA_DIR
#endif

namespace kasi {

namespace {

std::string base_of(const ConfigDir& cfg) {
    return std::filesystem::path(cfg.root()).parent_path().string();
}

std::string plugin_path(const ConfigDir& cfg, const std::string& name) {
    return base_of(cfg) + "/plugins/" + name + ".lua";
}

bool valid_lua_name(const std::string& name) {
    if (name.empty() || name.find("..") != std::string::npos) return false;
    for (char c : name)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
              c == '/'))
            return false;
    return true;
}

}  // namespace

std::string default_lua_dir() {
    const char* env = std::getenv("KASI_LUA_DIR");
    if (env && *env) return env;
    struct stat st;
    if (::stat(KASI_LUA_DIR, &st) == 0 && S_ISDIR(st.st_mode)) return KASI_LUA_DIR;
    return KASI_SOURCE_LUA_DIR;
}

// config/lua.ini: limits and the library path, shared by every Lua plugin.
LuaEnv load_lua_env(const ConfigDir& cfg, Diagnostics& d) {
    LuaEnv env;
    Ini ini = cfg.ini("lua.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main"});
    r.check_known("main", {"memory_mb", "call_memory_mb", "instructions", "pattern_steps",
                           "max_string_kb", "run_ms", "library_path", "http_ca_file"});
    env.limits.state_memory = size_t(r.get_int("main", "memory_mb", 256, 4, 65536)) << 20;
    env.limits.call_memory = size_t(r.get_int("main", "call_memory_mb", 64, 1, 65536)) << 20;
    env.limits.instructions =
        uint64_t(r.get_int("main", "instructions", 10'000'000, 10'000, 1LL << 40));
    env.limits.pattern_steps =
        uint64_t(r.get_int("main", "pattern_steps", 1'000'000, 1'000, 1LL << 40));
    env.limits.max_string = size_t(r.get_int("main", "max_string_kb", 16384, 1, 1 << 20)) << 10;
    env.limits.run_ms = uint32_t(r.get_int("main", "run_ms", 1000, 10, 600'000));
    std::string base = base_of(cfg);
    env.search_path = {base + "/plugins", base + "/lua"};
    for (auto& p : r.get_list("main", "library_path"))
        env.search_path.push_back(p.empty() || p[0] == '/' ? p : base + "/" + p);
    env.search_path.push_back(default_lua_dir());
    env.config_dir = cfg.root();
    env.http_ca_file = r.get_str("main", "http_ca_file", "");
    if (!env.http_ca_file.empty() && env.http_ca_file[0] != '/')
        env.http_ca_file = base + "/" + env.http_ca_file;
    if (cfg.exists("redis.ini")) {
        Ini rini = cfg.ini("redis.ini", d);
        IniReader rr(rini, d);
        rr.check_known("server", {"host", "port", "db", "timeout"});
        RedisServer s;
        s.host = rr.get_str("server", "host", s.host);
        s.port = int(rr.get_int("server", "port", 6379, 1, 65535));
        s.db = int(rr.get_int("server", "db", 0, 0, 1000));
        s.timeout_ms = int(rr.get_int("server", "timeout", 2, 1, 600)) * 1000;
        env.redis = s;
    }
    return env;
}

std::shared_ptr<LuaLoop> LuaRuntime::loop_state(uv_loop_t* loop) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = loops_.find(loop);
    if (it != loops_.end()) return it->second;
    std::string err;
    auto lp = LuaLoop::create(env_, loop, err);
    if (!lp) {
        if (!failed_logged_) log::error("lua: cannot build the policy state: {}", err);
        failed_logged_ = true;
        return nullptr;
    }
    loops_.emplace(loop, lp);
    return lp;
}

bool is_lua_plugin(const ConfigDir& cfg, const std::string& name) {
    struct stat st;
    return valid_lua_name(name) && ::stat(plugin_path(cfg, name).c_str(), &st) == 0 &&
           S_ISREG(st.st_mode);
}

void add_lua_plugin(const ConfigDir& cfg, const std::string& name, int line, uint32_t timeout_ms,
                    Diagnostics& d, HookTable& table) {
    std::shared_ptr<LuaRuntime> rt;
    for (const auto& p : table.plugins())
        if (auto r = std::dynamic_pointer_cast<LuaRuntime>(p)) rt = r;
    if (!rt) {
        rt = std::make_shared<LuaRuntime>(load_lua_env(cfg, d));
        table.keep(rt);
    }
    LuaPluginDef def;
    def.name = name;
    def.path = plugin_path(cfg, name);
    if (!ConfigDir(base_of(cfg) + "/plugins").read_file(name + ".lua", def.source, d)) {
        d.error(cfg.root() + "/plugins", line, fmt::format("cannot read {}", def.path));
        return;
    }
    // Validate alone (its own main chunk, its own state) to name this file in any error.
    const LuaEnv& all = rt->env_for_building();
    LuaEnv one{{def}, all.limits, all.search_path, all.config_dir};
    std::string err;
    if (!LuaLoop::validate(one, err)) {
        if (err.rfind(def.path, 0) == 0)
            d.errors.push_back(err);  // already "file:line: message"
        else
            d.error(def.path, 0, err);
        return;
    }
    def.hooks = one.plugins[0].hooks;
    size_t index = rt->plugin_count();
    rt->env_for_building().plugins.push_back(def);
    LuaRuntime* raw = rt.get();
    for (Hook h : def.hooks)
        table.add(
            h, name,
            [raw, index, h](HookCall& c) -> std::optional<Result> {
                auto lp = raw->loop_state(c.runner->loop());
                if (!lp) return Result::denysoft("Temporary failure (policy error)");
                return lp->call(index, h, c);
            },
            0, timeout_ms, true);
}

}  // namespace kasi
