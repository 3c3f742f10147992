#include "policy/lua_state.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <ctime>

#include "core/util/file.h"
#include "policy/lua_bounded.h"

namespace kasi {

namespace {

constexpr int hook_period = 1000;             // instructions between budget checks
constexpr size_t bytes_per_instruction = 64;  // what an allocation costs the budget
const char* const state_key = "kasi.state";

std::atomic<bool> interrupted{false};

uint64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
}

// The sandbox's pcall and xpcall: Lua wrappers (so yields still pass through the builtin
// pcall) that re-raise once the call has overrun a limit.
const char* const pcall_wrappers = R"lua(
local rawpcall, rawxpcall, killed, error = ...
local function check(ok, ...)
  if not ok then
    local why = killed()
    if why then error(why, 0) end
  end
  return ok, ...
end
return function(f, ...) return check(rawpcall(f, ...)) end,
       function(f, h, ...) return check(rawxpcall(f, h, ...)) end
)lua";

}  // namespace

void lua_interrupt_all() {
    interrupted.store(true, std::memory_order_relaxed);
}

bool lua_interrupted() {
    return interrupted.load(std::memory_order_relaxed);
}

bool LuaModuleSources::find(const std::string& name, const std::vector<std::string>& search_path,
                            std::string& path, std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_name_.find(name); it != by_name_.end()) {
        path = it->second.first;
        text = it->second.second;
        return true;
    }
    std::string rel = name;
    for (char& c : rel)
        if (c == '.') c = '/';
    for (const auto& dir : search_path) {
        path = dir + "/" + rel + ".lua";
        if (!read_whole_file(path, text)) continue;
        by_name_[name] = {path, text};
        return true;
    }
    return false;
}

LuaState::LuaState(LuaLimits limits, std::vector<std::string> search_path,
                   std::shared_ptr<LuaModuleSources> modules)
    : limits_(limits),
      search_path_(std::move(search_path)),
      modules_(modules ? std::move(modules) : std::make_shared<LuaModuleSources>()) {
    L_ = lua_newstate(&LuaState::alloc, this);
    if (!L_) return;
    luaJIT_setmode(L_, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushlightuserdata(L_, this);
    lua_setfield(L_, LUA_REGISTRYINDEX, state_key);
    open_sandbox();
    lua_sethook(L_, &LuaState::count_hook, LUA_MASKCOUNT, hook_period);
}

LuaState::~LuaState() {
    if (L_) lua_close(L_);
}

LuaState* LuaState::of(lua_State* L) {
    lua_getfield(L, LUA_REGISTRYINDEX, state_key);
    auto* s = static_cast<LuaState*>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return s;
}

void* LuaState::alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
    auto* self = static_cast<LuaState*>(ud);
    if (nsize == 0) {
        if (ptr) self->used_ -= osize;
        std::free(ptr);
        return nullptr;
    }
    size_t old = ptr ? osize : 0;
    if (nsize > old) {
        size_t grow = nsize - old;
        bool over_state = self->used_ + grow > self->limits_.state_memory;
        bool over_call =
            self->in_call_ && self->used_ + grow > self->slice_base_ + self->limits_.call_memory;
        if (over_state || over_call) {
            if (self->in_call_ && !self->killed_) {
                self->killed_ = true;
                self->kill_reason_ = "not enough memory";
            }
            return nullptr;
        }
    }
    void* p = std::realloc(ptr, nsize);
    if (!p) return nullptr;
    self->used_ = self->used_ - old + nsize;
    if (self->in_call_ && nsize > old) {  // copying bytes is work: it costs instructions
        uint64_t cost = (nsize - old) / bytes_per_instruction;
        self->left_ -= std::min(cost, self->left_);
        if (self->left_ <= hook_period && !self->hook_soon_) {
            // let the count hook end the call at the next instruction, not 1000 later
            self->hook_soon_ = true;
            lua_sethook(self->L_, &LuaState::count_hook, LUA_MASKCOUNT, 1);
        }
    }
    return p;
}

void LuaState::count_hook(lua_State* L, lua_Debug*) {
    LuaState* self = of(L);
    if (!self || !self->in_call_) return;
    if (self->killed_) self->raise_killed(L);  // past a limit: whatever it does now fails
    if (interrupted.load(std::memory_order_relaxed)) {
        self->kill(L, 0, "the policy call was interrupted: kasi is shutting down");
        self->raise_killed(L);
    }
    if (self->left_ <= hook_period) {
        self->left_ = 0;
        self->kill(
            L, 0,
            fmt::format("instruction budget exceeded ({} instructions)", self->limits_.instructions)
                .c_str());
        self->raise_killed(L);
    }
    if (monotonic_ms() > self->slice_deadline_ms_) {
        self->kill(L, 0,
                   fmt::format("ran for more than {} ms without yielding (lua.ini run_ms)",
                               self->limits_.run_ms)
                       .c_str());
        self->raise_killed(L);
    }
    self->left_ -= hook_period;
}

// luaL_error would name the caller of the running function (a hook has no frame of its
// own): name the line of the Lua function at `level` instead.
void LuaState::kill(lua_State* L, int level, const char* why) {
    killed_ = true;
    lua_Debug ar;
    kill_reason_.clear();
    if (lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        kill_reason_ = fmt::format("{}:{}: ", ar.short_src, ar.currentline);
    kill_reason_ += why;
}

void LuaState::raise_killed(lua_State* L) {
    lua_pushlstring(L, kill_reason_.data(), kill_reason_.size());
    lua_error(L);
    std::abort();  // lua_error does not return
}

void LuaState::charge(lua_State* L, uint64_t cost) {
    if (!in_call_) return;
    if (killed_) raise_killed(L);
    if (cost < left_) {
        left_ -= cost;
        return;
    }
    left_ = 0;
    kill(
        L, 1,
        fmt::format("instruction budget exceeded ({} instructions)", limits_.instructions).c_str());
    raise_killed(L);
}

void LuaState::begin_slice(uint64_t left) {
    left_ = left;
    in_call_ = true;
    killed_ = false;
    slice_base_ = used_;
    slice_deadline_ms_ = monotonic_ms() + limits_.run_ms;
    if (hook_soon_) {
        hook_soon_ = false;
        lua_sethook(L_, &LuaState::count_hook, LUA_MASKCOUNT, hook_period);
    }
}

uint64_t LuaState::end_slice() {
    in_call_ = false;
    return left_;
}

bool LuaState::load(const std::string& source, const std::string& chunkname, std::string& err) {
    return load(L_, source, chunkname, err);
}

bool LuaState::load(lua_State* L, const std::string& source, const std::string& chunkname,
                    std::string& err) {
    if (!source.empty() && source[0] == '\x1b') {
        err = chunkname + ": precompiled (binary) chunks are not accepted";
        return false;
    }
    if (luaL_loadbuffer(L, source.data(), source.size(), ("@" + chunkname).c_str()) != 0) {
        err = lua_tostring(L, -1) ? lua_tostring(L, -1) : "unknown load error";
        lua_pop(L, 1);
        return false;
    }
    return true;
}

// require(name): name.lua (dots become slashes) from the search path, run once, cached in
// the registry table kasi.loaded. Text only; no C modules.
int LuaState::require(lua_State* L) {
    LuaState* self = of(L);
    std::string name = luaL_checkstring(L, 1);
    for (char c : name)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return luaL_error(L, "require: invalid module name '%s'", name.c_str());
    lua_getfield(L, LUA_REGISTRYINDEX, "kasi.loaded");
    lua_getfield(L, -1, name.c_str());
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    std::string path, src;
    if (self->modules_->find(name, self->search_path_, path, src)) {
        std::string err;
        if (!load(L, src, path, err)) return luaL_error(L, "%s", err.c_str());
        lua_pushstring(L, name.c_str());
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name.c_str());
        return 1;
    }
    std::string rel = name;
    for (char& c : rel)
        if (c == '.') c = '/';
    std::string where;
    for (const auto& dir : self->search_path_) where += "\n\tno file '" + dir + "/" + rel + ".lua'";
    return luaL_error(L, "module '%s' not found:%s", name.c_str(), where.c_str());
}

void LuaState::open_sandbox() {
    static const luaL_Reg libs[] = {{"", luaopen_base},
                                    {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_BITLIBNAME, luaopen_bit},
                                    {LUA_OSLIBNAME, luaopen_os}};
    for (const auto& lib : libs) {
        lua_pushcfunction(L_, lib.func);
        lua_pushstring(L_, lib.name);
        lua_call(L_, 1, 0);
    }
    install_bounded_functions(L_);
    lua_pushvalue(L_, LUA_GLOBALSINDEX);
    int g = lua_gettop(L_);
    for (const char* name : {"load", "loadstring", "dofile", "loadfile", "newproxy", "module",
                             "gcinfo", "coroutine"}) {
        lua_pushnil(L_);
        lua_setfield(L_, g, name);
    }
    lua_getfield(L_, g, "string");
    lua_pushnil(L_);
    lua_setfield(L_, -2, "dump");
    lua_pop(L_, 1);
    // os: time and dates only
    lua_getfield(L_, g, "os");
    int os = lua_gettop(L_);
    lua_newtable(L_);
    for (const char* name : {"time", "clock", "date", "difftime"}) {
        lua_getfield(L_, os, name);
        lua_setfield(L_, -2, name);
    }
    lua_setfield(L_, g, "os");
    lua_pop(L_, 1);
    // the loaded-module cache for require; the standard names are preloaded
    lua_newtable(L_);
    for (const char* name : {"string", "table", "math", "bit", "os"}) {
        lua_getfield(L_, g, name);
        lua_setfield(L_, -2, name);
    }
    lua_setfield(L_, LUA_REGISTRYINDEX, "kasi.loaded");
    lua_pushcfunction(L_, &LuaState::require);
    lua_setfield(L_, g, "require");
    // pcall/xpcall that cannot swallow a limit
    std::string err;
    if (load(pcall_wrappers, "=kasi.sandbox", err)) {
        lua_getfield(L_, g, "pcall");
        lua_getfield(L_, g, "xpcall");
        lua_pushcfunction(L_, [](lua_State* L) -> int {
            LuaState* s = of(L);
            if (s && s->killed_)
                lua_pushstring(L, s->kill_reason_.c_str());
            else
                lua_pushnil(L);
            return 1;
        });
        lua_getfield(L_, g, "error");
        lua_call(L_, 4, 2);
        lua_setfield(L_, g, "xpcall");
        lua_setfield(L_, g, "pcall");
    }
    lua_pop(L_, 1);
}

std::string lua_error_with_traceback(lua_State* co, const std::string& msg) {
    luaL_traceback(co, co, msg.c_str(), 0);
    std::string out = lua_tostring(co, -1) ? lua_tostring(co, -1) : msg;
    lua_pop(co, 1);
    return out;
}

}  // namespace kasi
