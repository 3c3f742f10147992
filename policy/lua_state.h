// One sandboxed LuaJIT state. Everything that makes a policy safe to run on an event loop
// lives here:
//   - the allocator enforces a cap on the whole state and a cap on what one call may
//     allocate; a refused allocation is a Lua "not enough memory" error;
//   - a count hook enforces an instruction budget per call. The JIT compiler is off in
//     policy states because compiled traces never call hooks, and a budget that a hot loop
//     can escape is no budget. The interpreter is still fast for policy code;
//   - C functions that do work in proportion to their input (patterns, string.rep,
//     table.concat, table.insert, ...) charge it to the same budget (lua_pattern.cpp,
//     lua_bounded.cpp), and every byte the call allocates costs 1/64 instruction, so
//     no C function can multiply the work one instruction does without paying for it;
//     and the count hook also ends a call that has run `run_ms` without yielding, or
//     once lua_interrupt_all() was called (shutdown);
//   - once a call has overrun either limit it is "killed": the sandbox's pcall/xpcall
//     re-raise, so a policy cannot catch its way past a limit;
//   - the library is base (without load/loadstring/dofile/loadfile/newproxy), string
//     (without dump), table, math, bit and a safe subset of os. No io, debug, ffi, jit,
//     package or coroutine (hooks already run as coroutines; a nested one would swallow
//     the yields of kasi.dns and kasi.sleep). `require` loads only text modules from the
//     policy search path.
#pragma once

#include <lua.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kasi {

struct LuaLimits {
    size_t state_memory = size_t(256) << 20;  // bytes, whole state
    size_t call_memory = size_t(64) << 20;    // bytes one call may grow the state by
    uint64_t instructions = 10'000'000;       // VM instructions per hook call
    uint64_t pattern_steps = 1'000'000;       // matcher steps per string function call
                                              // (plus 32 per byte of the subject)
    size_t max_string = size_t(16) << 20;     // bytes: string.rep, table.concat, ...
    uint32_t run_ms = 1000;                   // longest a call may run without yielding
};

// Ends every policy call that is running, on every state, at its next instruction-budget
// check (and fails every call after it): the shutdown deadline calls this so that no loop
// can stay inside a policy. Safe from any thread.
void lua_interrupt_all();
bool lua_interrupted();

// The module files `require` has read, shared by every state of one config generation:
// a module is read from disk once per generation, so all loops run the same code even if
// the file changes on disk in between (the change is a new generation's business).
class LuaModuleSources {
  public:
    // The path and text of module `name` from `search_path`; false if no file has it.
    bool find(const std::string& name, const std::vector<std::string>& search_path,
              std::string& path, std::string& text);

  private:
    std::mutex mu_;
    std::map<std::string, std::pair<std::string, std::string>> by_name_;
};

class LuaState {
  public:
    // `search_path`: directories `require("x.y")` looks in for x/y.lua, in order.
    // `modules`: the generation's module cache (a private one when null).
    LuaState(LuaLimits limits, std::vector<std::string> search_path,
             std::shared_ptr<LuaModuleSources> modules = nullptr);
    ~LuaState();
    LuaState(const LuaState&) = delete;
    LuaState& operator=(const LuaState&) = delete;

    lua_State* L() const { return L_; }
    bool ok() const { return L_ != nullptr; }
    size_t memory_used() const { return used_; }
    const LuaLimits& limits() const { return limits_; }

    // Budget bookkeeping around one resume of a call's coroutine. `left` is what the call
    // has not used yet; end_slice() returns what is left after this slice.
    void begin_slice(uint64_t left);
    uint64_t end_slice();
    bool killed() const { return killed_; }
    bool in_call() const { return in_call_; }
    uint64_t left() const { return left_; }
    // Work a C function did for the call (bytes copied, matcher steps), in instructions.
    // Past the budget the call is killed and this raises its error (so call it where a
    // Lua error may unwind: no C++ object with a destructor alive). Outside a call: free.
    void charge(lua_State* L, uint64_t cost);

    // Compiles a text chunk (binary chunks are refused). On success the function is on
    // the stack; on failure `err` is "file:line: message" and the stack is unchanged.
    bool load(const std::string& source, const std::string& chunkname, std::string& err);
    // The same onto the stack of `L` (a coroutine of this state, as in require()).
    static bool load(lua_State* L, const std::string& source, const std::string& chunkname,
                     std::string& err);

    static LuaState* of(lua_State* L);  // the LuaState that owns L (or one of its threads)

  private:
    static void* alloc(void* ud, void* ptr, size_t osize, size_t nsize);
    static void count_hook(lua_State* L, lua_Debug* ar);
    // Marks the call killed because of `why` (prefixed with the running line at `level`).
    void kill(lua_State* L, int level, const char* why);
    [[noreturn]] void raise_killed(lua_State* L);
    static int require(lua_State* L);
    void open_sandbox();

    lua_State* L_ = nullptr;
    LuaLimits limits_;
    std::vector<std::string> search_path_;
    std::shared_ptr<LuaModuleSources> modules_;
    size_t used_ = 0;
    size_t slice_base_ = 0;
    bool in_call_ = false;
    bool killed_ = false;
    std::string kill_reason_;  // the error a killed call re-raises
    uint64_t left_ = 0;
    uint64_t slice_deadline_ms_ = 0;  // monotonic; run_ms after begin_slice()
    bool hook_soon_ = false;          // the count hook was set to fire at once
};

// "file:line: message" plus a traceback of `co`, for logging a failed call.
std::string lua_error_with_traceback(lua_State* co, const std::string& msg);

}  // namespace kasi
