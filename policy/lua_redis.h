// kasi.redis: Redis commands from Lua hooks, asynchronous on the hook's event loop
// (hiredis' async API with its libuv adapter). config/redis.ini [server] host, port, db
// and timeout (Haraka's haraka-plugin-redis keys); without a redis.ini the functions
// raise "no Redis server configured".
//
// One connection per event loop and server address, opened on first use, shared by every
// Lua state of that loop (all generations), re-opened after it breaks. A command waits at
// most `timeout` seconds: then the hook gets nil, "timeout", a late reply is dropped and
// the next command opens a new connection (the server may be stalled).
// Links are closed by the loop's owner (redis_close_loop) before the loop is closed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kasi {

struct RedisReply {
    enum class Type { nil, integer, string, status, array, error } type = Type::nil;
    long long integer = 0;
    std::string str;  // string, status, error
    std::vector<RedisReply> elements;
};

struct RedisServer {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    int timeout_ms = 2000;
    bool operator==(const RedisServer&) const = default;
};

// Sends `args` on `loop`'s link to `server`; `done` runs on the loop exactly once, with
// the reply or an error reply ("timeout", "connection lost: ...").
void redis_command(uv_loop_t* loop, const RedisServer& server, std::vector<std::string> args,
                   std::function<void(const RedisReply&)> done);

// Closes `loop`'s links (pending commands get "connection closed"); call on the loop's
// thread before uv_loop_close, then run the loop once more.
void redis_close_loop(uv_loop_t* loop);

}  // namespace kasi
