// The Lua policy engine: the sandbox (what is and is not reachable), the instruction and
// memory budgets (and that pcall cannot swallow them), require, plugin validation errors
// with file:line, hook answers, and hooks that yield in kasi.sleep resumed on a real libuv
// loop, many at once.
#include <catch2/catch.hpp>

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/hooks/runner.h"
#include "core/server/server_config.h"
#include "core/smtp/server/session.h"
#include "policy/lua_api.h"
#include "policy/lua_counters.h"
#include "policy/lua_loop.h"
#include "policy/lua_metrics.h"
#include "policy/lua_state.h"
#include "test/unit/no_session_host.h"

using namespace kasi;
using kasi::test::NoHost;
namespace fs = std::filesystem;

namespace {

// Runs `code` as one call under the state's budgets; returns "" or the error text.
std::string run(LuaState& s, const std::string& code) {
    lua_State* L = s.L();
    std::string err;
    if (!s.load(code, "test.lua", err)) return err;
    s.begin_slice(s.limits().instructions);
    int rc = lua_pcall(L, 0, 1, 0);
    s.end_slice();
    std::string out;
    if (rc != 0) out = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)";
    lua_pop(L, 1);
    return out;
}

// Runs `code` and returns its (string) result.
std::string eval(LuaState& s, const std::string& code) {
    lua_State* L = s.L();
    std::string err;
    REQUIRE(s.load(code, "test.lua", err));
    s.begin_slice(s.limits().instructions);
    int rc = lua_pcall(L, 0, 1, 0);
    s.end_slice();
    std::string out = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(nil)";
    lua_pop(L, 1);
    if (rc != 0) FAIL(out);
    return out;
}

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/kasi-lua-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    void write(const std::string& rel, const std::string& text) const {
        fs::create_directories((path / rel).parent_path());
        std::ofstream(path / rel) << text;
    }
};

}  // namespace

TEST_CASE("the sandbox has no way out to the system") {
    LuaState s({}, {});
    REQUIRE(s.ok());
    for (const char* expr :
         {"io",          "debug",         "ffi",           "jit",       "package",   "coroutine",
          "load",        "loadstring",    "dofile",        "loadfile",  "newproxy",  "module",
          "os.execute",  "os.exit",       "os.getenv",     "os.remove", "os.rename", "os.tmpname",
          "string.dump", "require('io')", "require('ffi')"}) {
        INFO(expr);
        std::string r = run(s, std::string("return ") + expr);
        // either nil, or require's "not found"
        if (r.empty())
            CHECK(eval(s, std::string("return tostring(") + expr + ")") == "nil");
        else
            CHECK(r.find("not found") != std::string::npos);
    }
    CHECK(eval(s, "return type(os.time())") == "number");
    CHECK(eval(s, "return string.format('%d-%s', bit.band(7, 3), string.upper('a'))") == "3-A");
    CHECK(eval(s, "return ('x'):rep(3)") == "xxx");
}

TEST_CASE("binary chunks are refused") {
    LuaState s({}, {});
    std::string err;
    CHECK_FALSE(s.load(std::string("\x1bLJ\x02junk"), "evil.lua", err));
    CHECK(err.find("evil.lua: precompiled") == 0);
}

TEST_CASE("an endless loop overruns the instruction budget and names the line") {
    LuaLimits lim;
    lim.instructions = 100'000;
    LuaState s(lim, {});
    std::string r = run(s, "local x = 0\nwhile true do\n  x = x + 1\nend");
    CHECK(r.find("instruction budget exceeded") != std::string::npos);
    CHECK(r.find("test.lua:") == 0);
    CHECK(s.killed());
    // the next call starts with a fresh budget
    CHECK(eval(s, "local n = 0 for i = 1, 1000 do n = n + i end return tostring(n)") == "500500");
    CHECK_FALSE(s.killed());
}

TEST_CASE("pcall and xpcall catch ordinary errors but not an overrun") {
    LuaLimits lim;
    lim.instructions = 100'000;
    LuaState s(lim, {});
    CHECK(eval(s, "local ok, e = pcall(error, 'boom', 0) return tostring(ok) .. ':' .. e") ==
          "false:boom");
    CHECK(eval(s,
               "return tostring(select(2, xpcall(function() error('x', 0) end, "
               "function(m) return 'handled ' .. m end)))") == "handled x");
    std::string r = run(s, "local ok = pcall(function() while true do end end)\nreturn 'escaped'");
    CHECK(r.find("instruction budget exceeded") != std::string::npos);
    r = run(s,
            "for i = 1, 100 do xpcall(function() while true do end end, function() end) end\n"
            "return 'escaped'");
    CHECK(r.find("instruction budget exceeded") != std::string::npos);
}

TEST_CASE("a call that allocates too much fails, and the state lives on") {
    LuaLimits lim;
    lim.call_memory = size_t(8) << 20;
    lim.state_memory = size_t(32) << 20;
    LuaState s(lim, {});
    std::string r = run(s,
                        "local t = {}\n"
                        "for i = 1, 10000000 do t[i] = string.rep('x', 64) .. i end");
    CHECK(r.find("not enough memory") != std::string::npos);
    // pcall cannot catch its way past the cap either
    r = run(s,
            "local ok = pcall(function() local t = {} for i = 1, 1e7 do t[i] = {i} end end)\n"
            "return 'escaped'");
    CHECK(r.find("not enough memory") != std::string::npos);
    lua_gc(s.L(), LUA_GCCOLLECT, 0);
    CHECK(s.memory_used() < lim.call_memory);
    CHECK(eval(s, "return tostring(#string.rep('y', 1000))") == "1000");
}

TEST_CASE("require loads text modules from the search path, once") {
    TempDir a, b;
    a.write("lib/one.lua", "count = (count or 0) + 1\nreturn { name = 'one', n = count }");
    b.write("lib/two.lua", "return { name = 'two' }");
    b.write("lib/one.lua", "return { name = 'shadowed' }");
    LuaState s({}, {a.path.string(), b.path.string()});
    CHECK(eval(s, "return require('lib.one').name .. require('lib.two').name") == "onetwo");
    CHECK(eval(s, "require('lib.one') return tostring(require('lib.one').n)") == "1");
    std::string r = run(s, "return require('lib.missing')");
    CHECK(r.find("module 'lib.missing' not found") != std::string::npos);
    CHECK(r.find(a.path.string() + "/lib/missing.lua") != std::string::npos);
    r = run(s, "return require('../etc/passwd')");
    CHECK(r.find("invalid module name") != std::string::npos);
    b.write("lib/broken.lua", "return {\n");
    r = run(s, "return require('lib.broken')");
    CHECK(r.find("lib/broken.lua:2:") != std::string::npos);
}

namespace {

std::shared_ptr<LuaEnv> env_of(const std::vector<std::pair<std::string, std::string>>& plugins,
                               LuaLimits lim = {}) {
    auto env = std::make_shared<LuaEnv>();
    env->limits = lim;
    for (const auto& [name, src] : plugins)
        env->plugins.push_back({name, "/etc/kasi/plugins/" + name + ".lua", src, {}});
    return env;
}

std::string validate(const std::string& src) {
    auto env = env_of({{"p", src}});
    std::string err;
    if (LuaLoop::validate(*env, err)) return "";
    return err;
}

}  // namespace

TEST_CASE("plugin validation names the file and line") {
    CHECK(validate("return { hook_rcpt = function() end }") == "");
    CHECK(validate("local x = 1\nreturn { hook_rcpt = function(\n")
              .find("/etc/kasi/plugins/p.lua:3:") == 0);
    CHECK(validate("return {\n  hook_rcpt = function() end,\n  hook_recpt = function() end,\n}") ==
          "/etc/kasi/plugins/p.lua:3: unknown hook 'hook_recpt'");
    CHECK(validate("return { hook_mail = 42 }") ==
          "/etc/kasi/plugins/p.lua: hook_mail is a number, not a function");
    CHECK(validate("return 7") ==
          "/etc/kasi/plugins/p.lua: the file must return a table of hook functions, not number");
    CHECK(validate("\n\nerror('bad setup')").find("/etc/kasi/plugins/p.lua:3: bad setup") == 0);
    CHECK(validate("kasi.sleep(1)").find("works only inside a hook") != std::string::npos);
    LuaLimits lim;
    lim.instructions = 50'000;
    auto env = env_of({{"p", "while true do end"}}, lim);
    std::string err;
    CHECK_FALSE(LuaLoop::validate(*env, err));
    CHECK(err.find("p.lua:1: instruction budget exceeded") != std::string::npos);
    // the hooks each plugin defines are recorded
    env = env_of({{"a", "return { hook_helo = function() end, hook_data_post = function() end }"},
                  {"b", "return { helper = 1 }"}});
    REQUIRE(LuaLoop::validate(*env, err));
    auto hooks = env->plugins[0].hooks;
    std::sort(hooks.begin(), hooks.end());
    CHECK(hooks == std::vector<Hook>{Hook::helo, Hook::data_post});
    CHECK(env->plugins[1].hooks.empty());
}

namespace {

// Lua plugins registered on a hook table and run through real HookRunners on a loop, one
// runner and session per simulated client.
struct Fixture : HookRunner::Sink {
    uv_loop_t loop;
    std::unique_ptr<NoHost> host;
    std::shared_ptr<LuaLoop> lua;
    std::shared_ptr<HookTable> table = std::make_shared<HookTable>();
    struct Client {
        std::shared_ptr<Session> session;
        std::shared_ptr<HookRunner> runner;
        std::unique_ptr<HookCall> call;
        std::string arg;
    };
    std::vector<Client> clients;
    std::vector<std::pair<size_t, Result>> done;  // (client, answer) in completion order
    Hook hook = Hook::helo;

    struct ClientSink : HookRunner::Sink {
        Fixture* f;
        size_t i;
        void hook_done(Hook, Result r) override { f->done.emplace_back(i, std::move(r)); }
    };
    std::vector<std::unique_ptr<ClientSink>> sinks;

    explicit Fixture(const std::string& src, Hook h = Hook::helo, LuaLimits lim = {}) : hook(h) {
        uv_loop_init(&loop);
        host = std::make_unique<NoHost>(&loop);
        auto env = env_of({{"p", src}}, lim);
        std::string err;
        REQUIRE(LuaLoop::validate(*env, err));
        lua = LuaLoop::create(env, &loop, err);
        REQUIRE(lua);
        auto lp = lua;
        table->add(h, "p", [lp, h](HookCall& c) { return lp->call(0, h, c); });
        table->finalize();
    }
    ~Fixture() override {
        clients.clear();
        lua.reset();
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
    void hook_done(Hook, Result) override {}

    // Starts the hook for a new client whose helo argument is `arg`.
    void start(const std::string& arg) {
        size_t i = clients.size();
        sinks.push_back(std::make_unique<ClientSink>());
        sinks.back()->f = this;
        sinks.back()->i = i;
        Client c;
        c.session = std::make_shared<Session>(*host, SessionConfig{}, false);
        c.runner = std::make_shared<HookRunner>(&loop, *sinks.back());
        c.arg = arg;
        clients.push_back(std::move(c));
        auto& cl = clients.back();
        cl.call = std::make_unique<HookCall>(HookCall{hook, cl.session.get()});
        cl.call->arg = cl.arg;
        cl.runner->run(table, *cl.call);
    }
    Result one(const std::string& arg) {
        size_t before = done.size();
        start(arg);
        uv_run(&loop, UV_RUN_DEFAULT);
        REQUIRE(done.size() == before + 1);
        return done.back().second;
    }
};

}  // namespace

TEST_CASE("hook answers: codes, names, texts; anything else is a temporary failure") {
    Fixture f(R"lua(
return { hook_helo = function(conn, arg)
  if arg == 'nothing' then return end
  if arg == 'deny' then return DENY, 'go away' end
  if arg == 'name' then return 'DENYSOFT', 'later' end
  if arg == 'kasi' then return kasi.OK end
  if arg == 'number' then return OK, 42 end
  if arg == 'badcode' then return 42 end
  if arg == 'badname' then return 'MAYBE' end
  if arg == 'crlf' then return DENY, 'a\r\nb' end
  if arg == 'table' then return OK, {} end
  if arg == 'error' then error('policy bug') end
  if arg == 'index' then local t = nil; return t.x end
  if arg == 'loop' then while true do end end
  return OK, 'hello ' .. arg
end }
)lua");
    auto r = f.one("nothing");
    CHECK(r.code == Code::cont);
    r = f.one("deny");
    CHECK(r.code == Code::deny);
    CHECK(r.msg == "go away");
    r = f.one("name");
    CHECK(r.code == Code::denysoft);
    CHECK(r.msg == "later");
    CHECK(f.one("kasi").code == Code::ok);
    r = f.one("number");
    CHECK(r.code == Code::ok);
    CHECK(r.msg == "42");
    for (const char* bad : {"badcode", "badname", "crlf", "table", "error", "index", "loop"}) {
        INFO(bad);
        r = f.one(bad);
        CHECK(r.code == Code::denysoft);
        CHECK(r.msg == "Temporary failure (policy error)");
    }
    r = f.one("there");
    CHECK(r.code == Code::ok);
    CHECK(r.msg == "hello there");
}

TEST_CASE("hooks that sleep yield to the loop and resume in their own order") {
    Fixture f(R"lua(
local finished = 0
return { hook_helo = function(conn, arg)
  local ms = tonumber(arg)
  conn.notes.mine = arg
  kasi.sleep(ms / 1000)
  kasi.sleep(0)
  finished = finished + 1
  return OK, arg .. ':' .. conn.notes.mine .. ':' .. finished
end }
)lua");
    // 200 clients; client i sleeps (i * 37) % 200 ms, all distinct
    const int n = 200;
    for (int i = 0; i < n; ++i) f.start(std::to_string((i * 37) % n));
    CHECK(f.done.empty());  // every hook yielded
    uv_run(&f.loop, UV_RUN_DEFAULT);
    REQUIRE(f.done.size() == size_t(n));
    int prev = -1;
    for (size_t k = 0; k < f.done.size(); ++k) {
        auto& [i, r] = f.done[k];
        std::string arg = f.clients[i].arg;
        CHECK(r.code == Code::ok);
        // each client got its own values back, and they finished shortest sleep first
        CHECK(r.msg == arg + ":" + arg + ":" + std::to_string(k + 1));
        CHECK(std::stoi(arg) > prev);
        prev = std::stoi(arg);
    }
}

TEST_CASE("a client that leaves while its hook sleeps does not disturb the others") {
    Fixture f(R"lua(
return { hook_helo = function(conn, arg)
  kasi.sleep(0.02)
  local ok, err = pcall(function() return conn.notes.x end)
  if not ok then return DENY, 'gone' end
  return OK, arg
end }
)lua");
    f.start("a");
    f.start("b");
    f.start("c");
    f.clients[1].runner->cancel();
    f.clients[1].session.reset();
    uv_run(&f.loop, UV_RUN_DEFAULT);
    std::vector<std::string> got;
    for (auto& [i, r] : f.done) got.push_back(r.msg);
    CHECK(got == std::vector<std::string>{"a", "c"});
}

TEST_CASE("an overrun after a yield still fails only that call") {
    LuaLimits lim;
    lim.instructions = 200'000;
    Fixture f(R"lua(
return { hook_helo = function(conn, arg)
  kasi.sleep(0.001)
  if arg == 'spin' then local n = 0 while true do n = n + 1 end end
  return OK, arg
end }
)lua",
              Hook::helo, lim);
    f.start("x");
    f.start("spin");
    f.start("y");
    uv_run(&f.loop, UV_RUN_DEFAULT);
    REQUIRE(f.done.size() == 3);
    std::map<std::string, Result> by;
    for (auto& [i, r] : f.done) by[f.clients[i].arg] = r;
    CHECK(by["x"].code == Code::ok);
    CHECK(by["y"].code == Code::ok);
    CHECK(by["spin"].code == Code::denysoft);
}

TEST_CASE("require works inside a coroutine (a hook) too") {
    TempDir a;
    a.write("ver.lua", "return 'v4'");
    LuaState s({}, {a.path.string()});
    lua_State* co = lua_newthread(s.L());
    std::string err;
    REQUIRE(LuaState::load(co, "return require('ver') .. require('ver')", "hook.lua", err));
    s.begin_slice(s.limits().instructions);
    int rc = lua_resume(co, 0);
    s.end_slice();
    REQUIRE(rc == 0);
    CHECK(std::string(lua_tostring(co, -1)) == "v4v4");
    CHECK(lua_gettop(s.L()) == 1);  // only the thread: nothing leaked onto the main stack
}

TEST_CASE("counters: add, expiry, save and load") {
    CounterStore s;
    int64_t t = 1'000'000;
    CHECK(s.add("a", 1, 0, t) == 1);
    CHECK(s.add("a", 2, 0, t) == 3);
    CHECK(s.add("day", 5, 10, t) == 5);  // expires at t + 10 s
    CHECK(s.get("day", t + 9'000) == 5);
    CHECK(s.get("day", t + 10'000) == 0);
    CHECK(s.add("day", 1, 10, t + 10'000) == 1);  // a fresh counter
    TempDir d;
    std::string path = (d.path / "counters.tsv").string(), err;
    REQUIRE(s.save(path, t + 10'000, err));
    CounterStore back;
    REQUIRE(back.load(path, t + 10'000, err));
    CHECK(back.get("a", t) == 3);
    CHECK(back.get("day", t + 19'000) == 1);
    CounterStore later;  // what expired while Kasi was down is not loaded
    REQUIRE(later.load(path, t + 30'000, err));
    CHECK(later.size() == 1);
    CounterStore missing;
    CHECK(missing.load((d.path / "none.tsv").string(), t, err));
}

TEST_CASE("policy metrics: types, names, labels, exposition, cardinality cap") {
    PolicyMetrics m;
    std::string err;
    CHECK(m.add("sent_total", {{"domain", "a.test"}}, 2, err));
    CHECK(m.add("sent_total", {{"domain", "a.test"}}, 1, err));
    CHECK(m.set("queue_depth", {}, 7, err));
    CHECK_FALSE(m.set("sent_total", {}, 1, err));  // a counter, not a gauge
    CHECK(err.find("is a counter") != std::string::npos);
    CHECK_FALSE(m.add("kasi_mine", {}, 1, err));
    CHECK_FALSE(m.add("9lives", {}, 1, err));
    CHECK_FALSE(m.add("neg_total", {}, -1, err));
    CHECK(m.add("q_total", {{"v", "say \"hi\"\n"}}, 1, err));
    std::string text = m.prometheus();
    CHECK(text.find("# TYPE sent_total counter\nsent_total{domain=\"a.test\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("# TYPE queue_depth gauge\nqueue_depth 7\n") != std::string::npos);
    CHECK(text.find("q_total{v=\"say \\\"hi\\\"\\n\"} 1") != std::string::npos);
    for (int i = 0; i < 10010; ++i) m.add("many_total", {{"i", std::to_string(i)}}, 1, err);
    CHECK(m.prometheus().find("kasi_policy_metrics_dropped_total 13\n") != std::string::npos);
}

// ---- string patterns and C functions with bounded work ----

namespace {

// Every case of `pattern_cases` as one line per case: "ok | type:value | ..." or
// "err | string:message" (without the position prefix, which differs).
const char* const pattern_cases = R"lua(
local out = {}
local function esc(s)  -- printable, one line, whatever the bytes (no patterns used)
  local t = {}
  for i = 1, #s do
    local b = s:byte(i)
    t[i] = (b < 32 or b > 126 or b == 92) and ('\\' .. b .. ';') or string.char(b)
  end
  return table.concat(t)
end
local function ser(ok, ...)
  local t = {ok and 'ok' or 'err'}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    if not ok and type(v) == 'string' then v = v:gsub('^[^:]*:%d+: ', '') end
    t[#t + 1] = type(v) .. ':' .. esc(tostring(v))
  end
  return table.concat(t, ' | ')
end
local function gm(s, p)
  local r = {}
  for a, b in string.gmatch(s, p) do
    r[#r + 1] = tostring(a) .. '/' .. tostring(b)
    if #r > 20 then break end
  end
  return table.concat(r, ',')
end
local finds = {
  {'hello world', 'o'}, {'hello world', 'o', 6}, {'hello world', 'l+'}, {'hello', '^h'},
  {'hello', '^e'}, {'hello', 'o$'}, {'hello', '$'}, {'a$b', '$b'}, {'a$b', 'a$'},
  {'hello world from lua', '(%w+) (%w+)'}, {'key = value', '(%w+)%s*=%s*(%w+)'},
  {'  trim me  ', '^%s*(.-)%s*$'}, {'f(a(b)c)d', '%b()'}, {'f(a(b', '%b()'},
  {'THE (quick) fox', '%f[%a]%a+'}, {'THE (quick) fox', '%f[%A]'}, {'hello', '()ll()'},
  {'abc', '()'}, {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'aaab', 'a*b'}, {'b', 'a?b'},
  {'x = 10, y = 20', '(%a)%s*=%s*(%d+)'}, {'[[x]]', '%[(.-)%]'}, {'abcabc', '(abc)%1'},
  {'abab', '(a)(b)%2'}, {'one;two;;three', '([^;]*)'}, {'a.b.c', '%.'},
  {'a.b.c', '.', 1, true}, {'a+b', '+', 1, true}, {'a+b', 'a+b'}, {'hello', 'l', -2},
  {'hello', 'l', -100}, {'hello', '', 10}, {'hello', '', 6}, {'', ''}, {'', '^$'},
  {'abc', '[a-b]+'}, {'abc', '[^a]+'}, {'a]b', '[]]'}, {'a-b', '[a-]+'}, {'a-b', '[%a-]+'},
  {'a%b', '%%'}, {'tab\there', '%c'}, {'Hello123_', '[%w_]+'}, {'0x1F', '%x+', 3},
  {'\195\169a', '%a'}, {'\0ab', '%z'}, {'\0ab', '%Z+'}, {'hi there', '%g+'},
  {'foo', '(f)(o)(o)'}, {'date 2026-12-07', '(%d+)-(%d+)-(%d+)'}, {'ABCdef', '%u+'},
  {'ABCdef', '%l+'}, {'a,b', '%p'}, {'x  y', '%s+'}, {'x  y', '%S+'}, {'abc', '[%]]'},
  {'ab]c', '[^]]+'}, {'abc', 'b', 0}, {'abc', 'c', -1}, {'aXb', '%u'}, {'a.b', '[.]'},
  {'hello', 'h(.)(.)'}, {'hello', '(h)(e)(l)(l)(o)()'}, {'a\nb', '\n'}, {'abc', 'a.-c'},
  {'ab', '^(a)(b)$'}, {'<a><b>', '<(.-)>'}, {'<a><b>', '<(.*)>'}, {'1.5e10', '^[+-]?%d+%.?%d*[eE]?%d*$'},
  {'user@example.com', '^([^@]+)@(.+)$'}, {'abc', '%f[%w]%w+%f[%W]'}, {'aaa', '%f[a]'},
  {'abc', '%'}, {'abc', '[a'}, {'abc', '(a'}, {'abc', 'a)'}, {'abc', '%1'}, {'abc', '%f'},
  {'abc', '%f(a'}, {'abc', '%b'}, {'abc', '%bx'}, {'abc', '(()'},
  {string.rep('a', 40), string.rep('(a)', 33)}, {'aaa', string.rep('a?', 300)},
  {'abc', 'a\0b'}, {'a\0b', 'a\0b'}, {'a\0b', 'a%zb'}, {'a\0b', '[\0]'},
}
for _, c in ipairs(finds) do
  out[#out + 1] = 'find ' .. ser(pcall(string.find, c[1], c[2], c[3], c[4]))
  out[#out + 1] = 'match ' .. ser(pcall(string.match, c[1], c[2], c[3]))
  out[#out + 1] = 'method ' .. ser(pcall(function() return (c[1]):match(c[2], c[3]) end))
end
local gsubs = {
  {'hello world', 'o', '0'}, {'hello world', '(o)', '[%1]'}, {'hello', '', '-'},
  {'abc', '%w', '%0%0'}, {'hello world', '%w+', '%0 %0', 1}, {'abc', 'b', '%'},
  {'abc', 'b', '%x'}, {'hello world', '(%w+)', {hello = 'HI'}}, {'abc', '^a', 'X'},
  {'aaa', '^a', 'X'}, {'abc', 'x*', '-'}, {'abc', '.', {a = 1, b = true}}, {'abc', 'b', 5},
  {'abc', '%w', '%2'}, {'abc', '%w', '%1'}, {'hello world', '(%w+) (%w+)', '%2 %1'},
  {'abc', '.', function(c) return c:upper() end}, {'abc', '.', function() return false end},
  {'abc', '(.)()', function(c, p) return c .. p end}, {'a,b,c', ',', ';', 0},
  {'a,b,c', ',', ';', -1}, {'abc', '', ''}, {'abc', '$', '!'}, {'abc', '^', '!'},
  {'x', 'x', {}}, {'abc', 'b', nil}, {'abc', 'b', true},
}
for _, c in ipairs(gsubs) do
  out[#out + 1] = 'gsub ' .. ser(pcall(string.gsub, c[1], c[2], c[3], c[4]))
end
local gmatches = {
  {'a=1, b=2', '(%w+)=(%w+)'}, {'one two three', '%a+'}, {'abc', ''}, {'abc', '()'},
  {'a,b,,c', '([^,]*)'}, {'^a^a', '^a'}, {'hello', '(l)(l)'}, {'', '.*'},
}
for _, c in ipairs(gmatches) do
  out[#out + 1] = 'gmatch ' .. ser(pcall(gm, c[1], c[2]))
end
-- and random small patterns over random small subjects (an LCG: same in both states)
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end
local tokens = {'a', 'b', '.', '%a', '%d', '[ab]', '[^a]', '*', '+', '-', '?', '(', ')',
                '()', '%1', '^', '$', '%b()', '%f[%w]', ' ', '%s', '[%d ]'}
local chars = {'a', 'b', '1', ' ', '(', ')'}
for i = 1, 400 do
  local p, subj = {}, {}
  for k = 1, rnd(6) do p[k] = tokens[rnd(#tokens)] end
  for k = 1, rnd(12) - 1 do subj[k] = chars[rnd(#chars)] end
  p, subj = table.concat(p), table.concat(subj)
  out[#out + 1] = 'rfind ' .. ser(pcall(string.find, subj, p))
  out[#out + 1] = 'rmatch ' .. ser(pcall(string.match, subj, p, rnd(3) - 1))
  out[#out + 1] = 'rgsub ' .. ser(pcall(string.gsub, subj, p, '<%0>'))
  out[#out + 1] = 'rgmatch ' .. ser(pcall(gm, subj, p))
end
return table.concat(out, '\n')
)lua";

// The same cases run by LuaJIT itself, outside the sandbox.
std::string luajit_reference(const char* code) {
    lua_State* L = luaL_newstate();
    REQUIRE(L);
    luaL_openlibs(L);
    REQUIRE(luaL_loadbuffer(L, code, std::strlen(code), "=reference") == 0);
    REQUIRE(lua_pcall(L, 0, 1, 0) == 0);
    std::string out = lua_tostring(L, -1);
    lua_close(L);
    return out;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> v;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
        v.push_back(s.substr(start, nl - start));
    v.push_back(s.substr(start));
    return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("string patterns give LuaJIT's own results") {
    LuaState s({}, {});
    auto want = lines_of(luajit_reference(pattern_cases));
    auto got = lines_of(eval(s, pattern_cases));
    REQUIRE(got.size() == want.size());
    CHECK(want.size() > 1900);
    for (size_t i = 0; i < want.size(); ++i) {
        INFO("case line " << i + 1);
        CHECK(got[i] == want[i]);
    }
}

TEST_CASE("a pattern with catastrophic backtracking fails fast with a clear error") {
    LuaState s({}, {});
    for (const char* code : {
             "return string.rep('a',30):find(string.rep('a*',30)..'b')",
             "return (string.rep('a',30)):match(string.rep('a*',30)..'b')",
             "return string.gsub(string.rep('a',30), string.rep('a*',30)..'b', '')",
             "for x in string.gmatch(string.rep('a',30), string.rep('a*',30)..'b') do end",
             "return ('x'):rep(5000):find(('(.-)'):rep(20)..'y')",
         }) {
        INFO(code);
        auto t0 = std::chrono::steady_clock::now();
        std::string r = run(s, code);
        CHECK(seconds_since(t0) < 1.0);
        CHECK(r.find("pattern too complex") != std::string::npos);
        CHECK_FALSE(s.killed());  // an ordinary error: pcall may catch it
    }
    // pcall catches it, but the steps were paid for: looping on it ends the call
    auto t0 = std::chrono::steady_clock::now();
    std::string r = run(s,
                        "local s, p = string.rep('a',30), string.rep('a*',30)..'b'\n"
                        "for i = 1, 1e6 do pcall(string.find, s, p) end");
    CHECK(seconds_since(t0) < 2.0);
    CHECK(r.find("instruction budget exceeded") != std::string::npos);
    // a linear pattern over a long subject is not "too complex"
    CHECK(eval(s, "return tostring(#(('ab'):rep(100000)):gsub('b', 'c'))") == "200000");
    CHECK(eval(s, "return (('x'):rep(200000) .. 'y'):match('^x*(y)$')") == "y");
}

TEST_CASE("lua.ini pattern_steps sets the step limit") {
    LuaLimits lim;
    lim.pattern_steps = 1000;
    LuaState s(lim, {});
    CHECK(eval(s, "return ('k=v'):match('(%w+)=(%w+)')") == "k");
    std::string r = run(s, "return ('a'):rep(12):find(('a*'):rep(12)..'b')");
    CHECK(r.find("pattern too complex (more than 1") != std::string::npos);
}

TEST_CASE("string.rep, table.concat and string.format results are capped") {
    LuaLimits lim;
    lim.max_string = 4096;
    LuaState s(lim, {});
    CHECK(eval(s, "return ('ab'):rep(3, ',')") == "ab,ab,ab");
    CHECK(eval(s, "return string.rep('x', 0) .. string.rep('x', -1) .. '|'") == "|");
    CHECK(eval(s, "return string.rep('', 1e300) .. string.rep('', 1e9, '') .. '|'") == "|");
    CHECK(eval(s, "return tostring(#string.rep('x', 4096))") == "4096");
    CHECK(eval(s, "return table.concat({1, 'a', 2.5}, '-')") == "1-a-2.5");
    CHECK(eval(s, "return table.concat({'a', 'b', 'c'}, '', 2, 3)") == "bc");
    CHECK(eval(s, "return string.format('%5.1f|%s|%q', 1.5, 'x', 'a\\nb')") ==
          "  1.5|x|\"a\\\nb\"");
    for (const char* code : {"return string.rep('x', 4097)", "return ('xy'):rep(2048, ',')",
                             "return string.rep('x', 1e300)",
                             "local t = {} for i = 1, 1000 do t[i] = 'abcde' end "
                             "return table.concat(t)",
                             "return table.concat({'a', 'b'}, ('-'):rep(4095))",
                             "local s = ('x'):rep(3000) return string.format('%s%s', s, s)",
                             "return ('x'):rep(4000):gsub('x', 'yy')"}) {
        INFO(code);
        std::string r = run(s, code);
        CHECK(r.find("max_string_kb") != std::string::npos);
    }
    CHECK(run(s, "return table.concat({'a', {}})").find("invalid value (at index 2)") !=
          std::string::npos);
}

TEST_CASE("C functions pay for their work out of the instruction budget") {
    LuaLimits lim;
    lim.instructions = 1'000'000;
    LuaState s(lim, {});
    for (const char* code : {
             // 1 MiB per instruction: without charging, minutes of memcpy
             "for i = 1, 1e7 do local x = ('x'):rep(1048576) end",
             "local t = {} for i = 1, 2e5 do t[i] = i end "
             "for i = 1, 1e7 do table.insert(t, 1, i) end",
             "local t = {} for i = 1, 1e5 do t[i] = -i end for i = 1, 1e7 do table.sort(t) end",
             "local s = ('1'):rep(1e6) for i = 1, 1e7 do local n = tonumber(s) end",
             "local s = ('x'):rep(1e6) for i = 1, 1e7 do local u = s:upper() end",
             "local s = ('x'):rep(1e6) for i = 1, 1e7 do local f = s:find('y', 1, true) end",
             "local t = {} for i = 1, 2e5 do t[i] = i end for i = 1, 1e7 do local m = "
             "table.maxn(t) end",
             "local t = {} for i = 1, 1e5 do t[i] = {} end for i = 1, 1e7 do collectgarbage() end",
         }) {
        INFO(code);
        auto t0 = std::chrono::steady_clock::now();
        std::string r = run(s, code);
        CHECK(seconds_since(t0) < 3.0);
        CHECK(r.find("instruction budget exceeded") != std::string::npos);
    }
}

TEST_CASE("collectgarbage cannot stop or retune the shared collector; table.maxn works") {
    LuaState s({}, {});
    CHECK(run(s, "collectgarbage('stop')").find("not available to policies") != std::string::npos);
    CHECK(run(s, "collectgarbage('setpause', 1000)").find("not available") != std::string::npos);
    CHECK(eval(s, "return type(collectgarbage('count'))") == "number");
    CHECK(eval(s, "collectgarbage() collectgarbage('step') return 'ok'") == "ok");
    CHECK(eval(s, "return tostring(table.maxn({1, 2, [10] = 3, x = 4}))") == "10");
    CHECK(eval(s, "return tostring(table.maxn({}))") == "0");
}

TEST_CASE("memory limits hold for strings C functions build") {
    LuaLimits lim;
    lim.call_memory = size_t(8) << 20;
    lim.state_memory = size_t(64) << 20;
    LuaState s(lim, {});
    for (const char* code :
         {"return ('x'):rep(12 * 1048576)", "local s = ('x'):rep(4 * 1048576) return s .. s .. s",
          "local s = ('x'):rep(1048576) local t = {} "
          "for i = 1, 12 do t[i] = s end return table.concat(t)",
          "return (('x'):rep(3 * 1048576)):gsub('x', 'yyyy')"}) {
        INFO(code);
        CHECK(run(s, code).find("not enough memory") != std::string::npos);
    }
}

TEST_CASE("a call that runs long without yielding ends after run_ms") {
    LuaLimits lim;
    lim.instructions = uint64_t(1) << 40;
    lim.run_ms = 200;
    LuaState s(lim, {});
    auto t0 = std::chrono::steady_clock::now();
    // comparing two long strings is one VM instruction that no budget charges
    std::string r = run(s,
                        "local a = ('x'):rep(4e6) local b = a:sub(2) .. 'y' local n = 0\n"
                        "while true do if a < b then n = n + 1 end end");
    CHECK(seconds_since(t0) < 3.0);
    CHECK(r.find("ran for more than 200 ms without yielding") != std::string::npos);
}

TEST_CASE("kasi.provider_of and the provider profiles read the one provider table") {
    LuaState s({}, {KASI_SOURCE_ROOT "/lua"});
    REQUIRE(s.ok());
    install_kasi_api(s.L());
    CHECK(eval(s, "return kasi.provider_of('ALT1.gmail-smtp-in.l.google.com.')") == "google");
    CHECK(eval(s, "return kasi.provider_of('mx.example.org')") == "other");
    CHECK(run(s, "return kasi.provider_of()").find("bad argument") != std::string::npos);
    auto profile = [&](const std::string& hosts) {
        return eval(s, "local p = require('kasi.providers').match({" + hosts +
                           "}) return p and p.name or 'none'");
    };
    CHECK(profile("'gmail-smtp-in.l.google.com', 'alt1.gmail-smtp-in.l.google.com'") == "gmail");
    CHECK(profile("'example-com.mail.protection.outlook.com'") == "office365");
    CHECK(profile("'outlook-com.olc.protection.outlook.com'") == "outlook");
    CHECK(profile("'mta6.am0.yahoodns.net', 'mx.example.org'") == "none");  // every MX must be
    CHECK(profile("'mx.mail.ru'") == "mailru");
    // an operator's profile by suffix alone, or a provider narrowed by suffix
    CHECK(eval(s,
               "local p = require('kasi.providers').match({'a.mx.corp.example'}, "
               "{ { name = 'corp', mx_suffixes = { '.mx.corp.example' } } }) return p.name") ==
          "corp");
    CHECK(eval(s,
               "local p = require('kasi.providers').match({'aspmx.l.google.com'}, "
               "{ { name = 'g2', provider = 'google', mx_suffixes = { '.l.google.com' } } }) "
               "return p.name") == "g2");
}
