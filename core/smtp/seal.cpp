#include "core/smtp/seal.h"

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/server/server_config.h"
#include "core/smtp/headers.h"
#include "core/smtp/unsubscribe.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct SealRun {
    uv_loop_t* loop;
    std::shared_ptr<const ServerConfig> cfg;
    SealInput msg;
    std::function<void(SealInput)> done;
};

struct SealWork {
    uv_work_t req;
    std::unique_ptr<SealJob> job;
    std::string body, out, err;
    std::shared_ptr<SealRun> run;
    size_t next = 0;
};

void sealed(SealInput& msg, std::string fields, const std::string& err) {
    if (!err.empty()) log::warn("[{}] {}", msg.id, err);
    if (!fields.empty()) msg.body.insert(0, fields);
}

void run_sealers(std::shared_ptr<SealRun> run, size_t from) {
    static const std::vector<std::shared_ptr<const Sealer>> none;
    const auto& sealers = run->cfg->hooks ? run->cfg->hooks->sealers() : none;  // not a copy
    SealInput& msg = run->msg;
    for (size_t i = from; i < sealers.size(); ++i) {
        auto job = sealers[i]->prepare(msg);
        if (!job) continue;
        if (!job->heavy()) {
            std::string err;
            std::string fields = job->seal(msg.body, err);
            sealed(msg, std::move(fields), err);
            continue;
        }
        auto w = std::make_unique<SealWork>();
        w->job = std::move(job);
        w->body = std::move(msg.body);
        w->run = run;
        w->next = i + 1;
        w->req.data = w.get();
        int rc = uv_queue_work(
            run->loop, &w->req,
            [](uv_work_t* req) {
                auto* w = static_cast<SealWork*>(req->data);
                w->out = w->job->seal(w->body, w->err);
            },
            [](uv_work_t* req, int) {
                std::unique_ptr<SealWork> w(static_cast<SealWork*>(req->data));
                SealInput& m = w->run->msg;
                m.body = std::move(w->body);
                sealed(m, std::move(w->out), w->err);
                run_sealers(w->run, w->next);
            });
        if (rc == 0) {
            (void)w.release();  // libuv owns it until the after-work callback
            return;
        }
        msg.body = std::move(w->body);
        sealed(msg, {}, fmt::format("cannot queue the work: {}", uv_strerror(rc)));
    }
    auto done = std::move(run->done);
    done(std::move(run->msg));
}

}  // namespace

// The VERP return-path domain (core/queue/verp.h), chosen at reception from the policy's
// note, the tenant or the sending domain, and kept as the note verp.domain; delivery turns
// it into a per-recipient MAIL FROM.
void choose_return_path(SealInput& msg, const ServerConfig& cfg) {
    const VerpConfig* verp = cfg.outbound ? cfg.outbound->verp.get() : nullptr;
    auto& notes = msg.notes;
    auto note = [&](const char* k) {
        auto it = notes.find(k);
        return it == notes.end() ? std::string() : it->second;
    };
    std::string skip = note("verp.skip");
    if (!verp || msg.null_sender || (!skip.empty() && skip != "0" && skip != "false")) {
        notes.erase("verp.domain");
        return;
    }
    std::string rp = note("verp.domain");
    if (rp.empty())
        rp = verp->return_path_for(author_domain(msg.body, msg.sender_domain), note("tenant"));
    if (rp.empty() || rp.find_first_of(" @<>\"\\") != std::string::npos) {
        if (!rp.empty()) log::warn("[{}] verp: bad return-path domain '{}'", msg.id, rp);
        notes.erase("verp.domain");
        return;
    }
    notes["verp.domain"] = to_lower(rp);
}

void add_unsubscribe(SealInput& msg, const ServerConfig& cfg) {
    const auto& n = msg.notes;
    if (!cfg.unsubscribe && !n.count("unsubscribe.url") && !n.count("unsubscribe.mailto"))
        return;  // the common case costs two lookups
    std::string err;
    if (!add_list_unsubscribe(msg.body, msg.notes, msg.rcpts, cfg.unsubscribe.get(),
                              now_ms() / 1000, err))
        log::warn("[{}] {}", msg.id, err);
}

void seal_relayed(uv_loop_t* loop, std::shared_ptr<const ServerConfig> cfg, SealInput msg,
                  std::function<void(SealInput)> done) {
    add_unsubscribe(msg, *cfg);
    choose_return_path(msg, *cfg);
    auto run =
        std::make_shared<SealRun>(SealRun{loop, std::move(cfg), std::move(msg), std::move(done)});
    run_sealers(std::move(run), 0);
}

std::vector<std::string> seal_generated(const HookTable& hooks, SealInput& msg) {
    std::vector<std::string> errors;
    for (const auto& sealer : hooks.sealers()) {
        auto job = sealer->prepare(msg);
        if (!job) continue;
        std::string err;
        std::string fields = job->seal(msg.body, err);
        if (!err.empty()) errors.push_back(std::move(err));
        msg.body.insert(0, fields);
    }
    return errors;
}

}  // namespace kasi
