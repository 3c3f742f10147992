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
    TxnLocator locate;
    std::function<void()> done;
};

struct SealWork {
    uv_work_t req;
    std::unique_ptr<SealJob> job;
    std::string body, out, err;
    std::shared_ptr<SealRun> run;
    size_t next = 0;
};

void sealed(Transaction& txn, std::string fields, const std::string& err) {
    if (!err.empty()) log::warn("[{}] {}", txn.uuid, err);
    if (!fields.empty()) txn.body.insert(0, fields);
}

void run_sealers(std::shared_ptr<SealRun> run, Transaction& txn, size_t from) {
    static const std::vector<std::shared_ptr<const Sealer>> none;
    const auto& sealers = run->cfg->hooks ? run->cfg->hooks->sealers() : none;  // not a copy
    for (size_t i = from; i < sealers.size(); ++i) {
        auto job = sealers[i]->prepare(txn);
        if (!job) continue;
        if (!job->heavy()) {
            std::string err;
            std::string fields = job->seal(txn.body, err);
            sealed(txn, std::move(fields), err);
            continue;
        }
        auto w = std::make_unique<SealWork>();
        w->job = std::move(job);
        w->body = std::move(txn.body);
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
                Transaction* t = w->run->locate();
                if (!t) return;
                t->body = std::move(w->body);
                sealed(*t, std::move(w->out), w->err);
                run_sealers(w->run, *t, w->next);
            });
        if (rc == 0) {
            (void)w.release();  // libuv owns it until the after-work callback
            return;
        }
        txn.body = std::move(w->body);
        sealed(txn, {}, fmt::format("cannot queue the work: {}", uv_strerror(rc)));
    }
    run->done();
}

}  // namespace

// The VERP return-path domain (core/queue/verp.h), chosen at reception from the policy's
// note, the tenant or the sending domain, and kept as the note verp.domain; delivery turns
// it into a per-recipient MAIL FROM.
void choose_return_path(Transaction& txn, const ServerConfig& cfg) {
    const VerpConfig* verp = cfg.outbound ? cfg.outbound->verp.get() : nullptr;
    auto& notes = txn.notes;
    auto note = [&](const char* k) {
        auto it = notes.find(k);
        return it == notes.end() ? std::string() : it->second;
    };
    std::string skip = note("verp.skip");
    if (!verp || txn.mail_from.null || (!skip.empty() && skip != "0" && skip != "false")) {
        notes.erase("verp.domain");
        return;
    }
    std::string rp = note("verp.domain");
    if (rp.empty())
        rp = verp->return_path_for(author_domain(txn.body, txn.mail_from.domain), note("tenant"));
    if (rp.empty() || rp.find_first_of(" @<>\"\\") != std::string::npos) {
        if (!rp.empty()) log::warn("[{}] verp: bad return-path domain '{}'", txn.uuid, rp);
        notes.erase("verp.domain");
        return;
    }
    notes["verp.domain"] = to_lower(rp);
}

void add_unsubscribe(Transaction& txn, const ServerConfig& cfg) {
    const auto& n = txn.notes;
    if (!cfg.unsubscribe && !n.count("unsubscribe.url") && !n.count("unsubscribe.mailto"))
        return;  // the common case costs two lookups
    std::vector<std::string> rcpts;
    for (const auto& r : txn.rcpts) rcpts.push_back(r.str());
    std::string err;
    if (!add_list_unsubscribe(txn.body, txn.notes, rcpts, cfg.unsubscribe.get(), now_ms() / 1000,
                              err))
        log::warn("[{}] {}", txn.uuid, err);
}

void seal_transaction(uv_loop_t* loop, std::shared_ptr<const ServerConfig> cfg, TxnLocator locate,
                      std::function<void()> done) {
    Transaction* txn = locate();
    if (!txn) return;
    add_unsubscribe(*txn, *cfg);
    choose_return_path(*txn, *cfg);
    auto run = std::make_shared<SealRun>(
        SealRun{loop, std::move(cfg), std::move(locate), std::move(done)});
    run_sealers(std::move(run), *txn, 0);
}

}  // namespace kasi
