#include "policy/lua_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/util/uv_handle.h"

namespace kasi {

namespace {

// hiredis' event hooks on a uv_poll_t. Our own rather than <hiredis/adapters/libuv.h>:
// the 0.14 adapter ignores a poll error (libuv reports POLLERR, e.g. after a reset, as a
// status and stops the handle), so a connection reset by the server was never noticed
// and every later command timed out. Here an error is handed to hiredis as readable, and
// its read fails and tears the connection down.
struct UvEvents {
    redisAsyncContext* ctx = nullptr;
    uv_poll_t poll{};
    int events = 0;
};

void uv_events_cb(uv_poll_t* h, int status, int events) {
    auto* e = static_cast<UvEvents*>(h->data);
    if (!e->ctx) return;
    if (status < 0) {
        redisAsyncHandleRead(e->ctx);  // the read fails: hiredis disconnects
        return;
    }
    if (events & UV_READABLE) redisAsyncHandleRead(e->ctx);
    if (e->ctx && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ctx);
}

void uv_events_update(UvEvents* e, int add, int del) {
    e->events = (e->events | add) & ~del;
    if (e->events)
        uv_poll_start(&e->poll, e->events, uv_events_cb);
    else
        uv_poll_stop(&e->poll);
}

bool uv_events_attach(redisAsyncContext* ac, uv_loop_t* loop) {
    auto* e = new UvEvents;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        delete e;
        return false;
    }
    e->ctx = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = [](void* p) { uv_events_update(static_cast<UvEvents*>(p), UV_READABLE, 0); };
    ac->ev.delRead = [](void* p) { uv_events_update(static_cast<UvEvents*>(p), 0, UV_READABLE); };
    ac->ev.addWrite = [](void* p) { uv_events_update(static_cast<UvEvents*>(p), UV_WRITABLE, 0); };
    ac->ev.delWrite = [](void* p) { uv_events_update(static_cast<UvEvents*>(p), 0, UV_WRITABLE); };
    ac->ev.cleanup = [](void* p) {
        auto* e = static_cast<UvEvents*>(p);
        e->ctx = nullptr;  // the context is being freed
        uv_close(reinterpret_cast<uv_handle_t*>(&e->poll),
                 [](uv_handle_t* h) { delete static_cast<UvEvents*>(h->data); });
    };
    return true;
}

RedisReply convert(const redisReply* r) {
    RedisReply out;
    if (!r) return out;
    switch (r->type) {
        case REDIS_REPLY_INTEGER:
            out.type = RedisReply::Type::integer;
            out.integer = r->integer;
            break;
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
            out.type = r->type == REDIS_REPLY_STRING   ? RedisReply::Type::string
                       : r->type == REDIS_REPLY_STATUS ? RedisReply::Type::status
                                                       : RedisReply::Type::error;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ARRAY:
            out.type = RedisReply::Type::array;
            for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
            break;
        default:
            break;
    }
    return out;
}

RedisReply error_reply(std::string text) {
    RedisReply r;
    r.type = RedisReply::Type::error;
    r.str = std::move(text);
    return r;
}

// One pending command: answered by the reply, the timeout or the link's end, whichever
// comes first; freed when both hiredis and the timer are done with it.
class Link;
struct Pending {
    Link* link = nullptr;  // valid while the timer can fire: the link answers all at close
    std::function<void(const RedisReply&)> done;
    UvHandle<uv_timer_t> timer;
    bool answered = false;
    bool in_hiredis = true;
    void answer(const RedisReply& r) {
        if (answered) return;
        answered = true;
        timer.close();
        auto fn = std::move(done);
        done = nullptr;
        if (fn) fn(r);
    }
};

class Link {
  public:
    Link(uv_loop_t* loop, RedisServer server) : loop_(loop), server_(std::move(server)) {}
    ~Link() { close(); }

    bool broken() const { return ctx_ == nullptr; }

    // A command that timed out leaves the connection suspect (a stalled server, a half-open
    // socket): the next command starts a new one.
    void mark_stale() { stale_ = true; }

    void send(std::vector<std::string> args, std::function<void(const RedisReply&)> done) {
        if (stale_) {
            stale_ = false;
            close();
        }
        if (!ctx_ && !connect()) return done(error_reply("connection failed: " + last_error_));
        auto* p = new Pending{this, std::move(done), {}, false, true};
        uv_timer_init(loop_, p->timer.get());
        p->timer->data = p;
        uv_timer_start(
            p->timer.get(),
            [](uv_timer_t* t) {
                auto* p = static_cast<Pending*>(t->data);
                p->link->mark_stale();
                p->answer(error_reply("timeout"));
                if (!p->in_hiredis) delete p;
            },
            uint64_t(server_.timeout_ms), 0);
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        if (redisAsyncCommandArgv(ctx_, &Link::on_reply, p, int(argv.size()), argv.data(),
                                  lens.data()) != REDIS_OK) {
            p->in_hiredis = false;
            p->answer(error_reply("cannot send the command"));
            delete p;
        }
    }

    void close() {
        if (!ctx_) return;
        redisAsyncContext* c = ctx_;
        ctx_ = nullptr;
        c->data = nullptr;
        redisAsyncFree(c);  // pending callbacks run with a null reply
    }

  private:
    bool connect() {
        ctx_ = redisAsyncConnect(server_.host.c_str(), server_.port);
        if (!ctx_ || ctx_->err) {
            last_error_ = ctx_ ? ctx_->errstr : "out of memory";
            if (ctx_) redisAsyncFree(ctx_);
            ctx_ = nullptr;
            return false;
        }
        ctx_->data = this;
        if (!uv_events_attach(ctx_, loop_)) {
            last_error_ = "cannot watch the socket";
            redisAsyncFree(ctx_);
            ctx_ = nullptr;
            return false;
        }
        redisAsyncSetConnectCallback(ctx_, [](const redisAsyncContext* c, int status) {
            auto* self = static_cast<Link*>(c->data);
            if (status != REDIS_OK && self) {
                log::warn("kasi.redis: cannot connect to {}:{}: {}", self->server_.host,
                          self->server_.port, c->errstr);
                self->ctx_ = nullptr;  // hiredis frees the context itself
            }
        });
        redisAsyncSetDisconnectCallback(ctx_, [](const redisAsyncContext* c, int status) {
            auto* self = static_cast<Link*>(c->data);
            if (!self) return;
            if (status != REDIS_OK)
                log::warn("kasi.redis: connection to {}:{} lost: {}", self->server_.host,
                          self->server_.port, c->errstr);
            self->ctx_ = nullptr;
        });
        if (server_.db != 0) {
            std::string db = std::to_string(server_.db);
            const char* argv[] = {"SELECT", db.c_str()};
            redisAsyncCommandArgv(ctx_, nullptr, nullptr, 2, argv, nullptr);
        }
        return true;
    }

    static void on_reply(redisAsyncContext*, void* r, void* privdata) {
        auto* p = static_cast<Pending*>(privdata);
        p->in_hiredis = false;
        if (r)
            p->answer(convert(static_cast<redisReply*>(r)));
        else
            p->answer(error_reply("connection lost"));
        delete p;
    }

    uv_loop_t* loop_;
    RedisServer server_;
    redisAsyncContext* ctx_ = nullptr;
    std::string last_error_;
    bool stale_ = false;
};

std::mutex links_mu;
std::map<uv_loop_t*, std::map<std::string, std::unique_ptr<Link>>>& links() {
    static std::map<uv_loop_t*, std::map<std::string, std::unique_ptr<Link>>> m;
    return m;
}

}  // namespace

void redis_command(uv_loop_t* loop, const RedisServer& server, std::vector<std::string> args,
                   std::function<void(const RedisReply&)> done) {
    Link* link;
    {
        std::lock_guard<std::mutex> lock(links_mu);
        auto& mine = links()[loop];
        auto key = fmt::format("{}:{}/{}", server.host, server.port, server.db);
        auto& l = mine[key];
        if (!l) l = std::make_unique<Link>(loop, server);
        link = l.get();
    }
    link->send(std::move(args), std::move(done));
}

void redis_close_loop(uv_loop_t* loop) {
    std::map<std::string, std::unique_ptr<Link>> mine;
    {
        std::lock_guard<std::mutex> lock(links_mu);
        auto it = links().find(loop);
        if (it == links().end()) return;
        mine = std::move(it->second);
        links().erase(it);
    }
    mine.clear();  // closes them, on this (the loop's) thread
}

}  // namespace kasi
