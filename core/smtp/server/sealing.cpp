// List-Unsubscribe, the VERP return path, then the sealers of a relayed message (List-Unsubscribe,
// VERP, DKIM: core/hooks/plugin.h), run after the last hook and before the spool write. A heavy job
// (RSA signing) goes to libuv's thread pool with the message bytes moved into it, so the loop keeps
// serving other connections; the bytes come back with the result. If the client leaves meanwhile
// the result is dropped: nothing was acknowledged.
#include <fmt/format.h>

#include "core/log/log.h"
#include "core/server/server_config.h"
#include "core/smtp/headers.h"
#include "core/smtp/server/session.h"
#include "core/smtp/unsubscribe.h"
#include "core/util/clock.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct SealWork {
    uv_work_t req;
    std::unique_ptr<SealJob> job;
    std::string body, out, err;
    std::weak_ptr<Session> session;
    size_t next = 0;
};

}  // namespace

// The VERP return-path domain (core/queue/verp.h), chosen at reception from the policy's
// note, the tenant or the sending domain, and kept as the note verp.domain; delivery turns
// it into a per-recipient MAIL FROM.
void Session::choose_return_path() {
    const VerpConfig* verp = cfg_->outbound ? cfg_->outbound->verp.get() : nullptr;
    auto& notes = txn_->notes;
    auto note = [&](const char* k) {
        auto it = notes.find(k);
        return it == notes.end() ? std::string() : it->second;
    };
    std::string skip = note("verp.skip");
    if (!verp || txn_->mail_from.null || (!skip.empty() && skip != "0" && skip != "false")) {
        notes.erase("verp.domain");
        return;
    }
    std::string rp = note("verp.domain");
    if (rp.empty())
        rp = verp->return_path_for(author_domain(txn_->body, txn_->mail_from.domain),
                                   note("tenant"));
    if (rp.empty() || rp.find_first_of(" @<>\"\\") != std::string::npos) {
        if (!rp.empty()) log::warn("[{}] verp: bad return-path domain '{}'", txn_->uuid, rp);
        notes.erase("verp.domain");
        return;
    }
    notes["verp.domain"] = to_lower(rp);
}

void Session::add_unsubscribe() {
    const auto& n = txn_->notes;
    if (!cfg_->unsubscribe && !n.count("unsubscribe.url") && !n.count("unsubscribe.mailto"))
        return;  // the common case costs two lookups
    std::vector<std::string> rcpts;
    for (const auto& r : txn_->rcpts) rcpts.push_back(r.str());
    std::string err;
    if (!add_list_unsubscribe(txn_->body, txn_->notes, rcpts, cfg_->unsubscribe.get(),
                              now_ms() / 1000, err))
        log::warn("[{}] {}", txn_->uuid, err);
}

void Session::seal_message(size_t from) {
    if (from == 0) {
        add_unsubscribe();
        choose_return_path();
    }
    static const std::vector<std::shared_ptr<const Sealer>> none;
    const auto& sealers = cfg_->hooks ? cfg_->hooks->sealers() : none;  // not a copy
    for (size_t i = from; i < sealers.size(); ++i) {
        auto job = sealers[i]->prepare(*txn_);
        if (!job) continue;
        if (!job->heavy()) {
            std::string err;
            std::string fields = job->seal(txn_->body, err);
            sealed(std::move(fields), err);
            continue;
        }
        auto w = std::make_unique<SealWork>();
        w->job = std::move(job);
        w->body = std::move(txn_->body);
        w->session = weak_from_this();
        w->next = i + 1;
        w->req.data = w.get();
        busy_ = true;
        int rc = uv_queue_work(
            host_.loop(), &w->req,
            [](uv_work_t* req) {
                auto* w = static_cast<SealWork*>(req->data);
                w->out = w->job->seal(w->body, w->err);
            },
            [](uv_work_t* req, int) {
                std::unique_ptr<SealWork> w(static_cast<SealWork*>(req->data));
                auto s = w->session.lock();
                if (!s || s->closed_ || !s->txn_) return;
                s->busy_ = false;
                s->txn_->body = std::move(w->body);
                s->sealed(std::move(w->out), w->err);
                s->seal_message(w->next);
                if (!s->busy_) s->process_input();
            });
        if (rc == 0) {
            (void)w.release();  // libuv owns it until the after-work callback
            return;
        }
        busy_ = false;
        txn_->body = std::move(w->body);
        sealed({}, fmt::format("cannot queue the work: {}", uv_strerror(rc)));
    }
    queue_message();
}

void Session::sealed(std::string fields, const std::string& err) {
    if (!err.empty()) log::warn("[{}] {}", txn_->uuid, err);
    if (!fields.empty()) txn_->body.insert(0, fields);
}

}  // namespace kasi
