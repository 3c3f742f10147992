// GET /health: liveness (this loop answered) and readiness (the spool accepts writes: the
// directory is writable with free space and the spool's last write did not fail, and the
// delivery loop answers within 2 s). 200 when ready, 503 when not; the body says which check
// failed, for a load balancer's log and a human. Free space alone is not enough: a disk with
// some room left still refuses every message bigger than that room; the spool's own state
// (core/spool/writer.h) says not ready from the first failed write until a write succeeds
// or its probe finds room again.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/http/api.h"
#include "core/queue/outbound.h"
#include "core/server/loop_inbox.h"
#include "core/server/server_config.h"
#include "core/spool/spool.h"
#include "core/util/json.h"
#include "core/util/uv_handle.h"

namespace kasi {

namespace {

constexpr uint64_t loop_timeout_ms = 2000;

struct HealthCheck {
    HttpRespond respond;
    UvHandle<uv_timer_t> timer;
    uint64_t started = 0;
    bool spool_ok = false;
    std::string spool_detail;
    bool answered = false;

    void finish(bool loop_ok, double loop_ms) {
        if (answered) return;
        answered = true;
        timer.close();
        bool ready = spool_ok && loop_ok;
        JsonObject spool, loop, checks;
        spool.boolean("ok", spool_ok).str("detail", spool_detail);
        loop.boolean("ok", loop_ok);
        if (loop_ok)
            loop.real("latency_ms", loop_ms);
        else
            loop.str("detail", fmt::format("no answer within {} ms", loop_timeout_ms));
        checks.raw("spool", spool.done()).raw("delivery_loop", loop.done());
        JsonObject o;
        o.str("status", ready ? "ok" : "unavailable").boolean("live", true).boolean("ready", ready);
        o.raw("checks", checks.done());
        respond(HttpResponse::json(ready ? 200 : 503, o.done()));
    }
};

void check_spool(const std::string& dir, const Spool* spool, HealthCheck& h) {
    struct statvfs st {};
    int write_error = spool ? spool->write_error() : 0;
    if (write_error != 0) {
        h.spool_detail = fmt::format(
            "{}: the last write failed: {}; messages are refused until a "
            "write succeeds or space returns",
            dir, std::strerror(write_error));
    } else if (::access(dir.c_str(), W_OK) != 0) {
        h.spool_detail = fmt::format("{}: {}", dir, std::strerror(errno));
    } else if (::statvfs(dir.c_str(), &st) != 0) {
        h.spool_detail = fmt::format("{}: statvfs: {}", dir, std::strerror(errno));
    } else {
        uint64_t free_bytes = uint64_t(st.f_bavail) * st.f_frsize;
        h.spool_ok = free_bytes > 0 && st.f_favail > 0;
        h.spool_detail = fmt::format("{}: {} MiB free", dir, free_bytes >> 20);
    }
}

}  // namespace

void api_health(const ApiEnv& env, HttpRespond respond) {
    auto h = std::make_shared<HealthCheck>();
    h->respond = std::move(respond);
    h->started = uv_hrtime();
    check_spool(env.cfg->settings.queue_dir, env.spool, *h);
    if (!env.outbound) return h->finish(false, 0);
    uv_timer_init(env.loop, h->timer.get());
    h->timer->data = h.get();
    uv_timer_start(
        h->timer.get(), [](uv_timer_t* t) { static_cast<HealthCheck*>(t->data)->finish(false, 0); },
        loop_timeout_ms, 0);
    LoopInbox* inbox = env.inbox;
    env.outbound->inspect([h, inbox](const QueueManager* qm) {
        bool ok = qm != nullptr;
        inbox->post([h, ok] { h->finish(ok, double(uv_hrtime() - h->started) / 1e6); });
    });
}

}  // namespace kasi
