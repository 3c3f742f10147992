#include "core/queue/outbound.h"

#include "core/reputation/reputation_query.h"
#include "core/reputation/reputation_service.h"
#include "core/suppression/suppression_admin.h"

#include <malloc.h>
#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <openssl/ssl.h>

#include "core/log/log.h"
#include "core/server/extensions.h"
#include "core/tls/client_tls.h"

namespace kasi {

Outbound::Outbound(Spool& spool, std::shared_ptr<const OutboundConfig> cfg,
                   std::shared_ptr<const HookTable> hooks, std::string me)
    : spool_(spool), cfg_(std::move(cfg)), hooks_(std::move(hooks)), me_(std::move(me)) {
    uv_loop_init(&loop_);
    inbox_ = std::make_unique<LoopInbox>(&loop_);
}

Outbound::~Outbound() {
    stop(0);
    uv_loop_close(&loop_);
}

bool Outbound::start(std::string& err, QueueLoader& recovered) {
    tls_ctx_ = make_client_tls_ctx(cfg_->tls_ca_file, err);
    if (!tls_ctx_) return false;
    LoopInbox* inbox = inbox_.get();
    qm_ = std::make_unique<QueueManager>(
        &loop_, spool_,
        QueueSettings{cfg_, hooks_, tls_ctx_.get(), me_, suppressions_, reputation_},
        [inbox](std::function<void()> fn) { inbox->post(std::move(fn)); });
    if (!qm_->open_events(err)) return false;
    qm_->load_recovered(recovered, spool_.recovered().live_per_segment);
    ::malloc_trim(0);  // the recovery snapshot was large and is gone: give the pages back
    {
        struct mallinfo2 mi = ::mallinfo2();
        log::info("queue: loaded; heap in use {} MiB, free in the heap {} MiB", mi.uordblks >> 20,
                  mi.fordblks >> 20);
    }
    spool_.set_rotate_listener([inbox, this](uint64_t seq, uint64_t n) {
        inbox->post([this, seq, n] {
            if (qm_) qm_->segment_closed(seq, n);
        });
    });
    spool_.set_meta_listener([inbox, this](uint64_t seq, std::vector<uint64_t> refs) {
        inbox->post([this, seq, refs = std::move(refs)]() mutable {
            if (qm_) qm_->journal_closed(seq, std::move(refs));
        });
    });
    control_ = std::make_unique<ControlServer>(
        &loop_, [this](const std::string& line, std::function<void(std::string)> reply) {
            answer(line, std::move(reply));
        });
    std::string cerr;
    if (!control_->listen(spool_.dir() + "/control.sock", cerr)) {
        log::warn("queue: {}; kasictl flush/suspend/resume/delete/bounce are unavailable", cerr);
        control_.reset();
    }
    status_timer_ = std::make_unique<UvHandle<uv_timer_t>>();
    uv_timer_init(&loop_, status_timer_->get());
    (*status_timer_)->data = this;
    uv_timer_start(
        status_timer_->get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Outbound*>(t->data);
            if (!self || !self->qm_) return;
            // kasictl queue reads this snapshot; written whole, then renamed into place.
            std::string path = self->spool_.dir() + "/queues.json";
            std::string tmp = path + ".tmp";
            if (FILE* f = std::fopen(tmp.c_str(), "we")) {
                std::string s = self->qm_->summary_json() + "\n";
                bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
                ok &= std::fclose(f) == 0;
                if (ok) std::rename(tmp.c_str(), path.c_str());
            }
        },
        0, 1000);
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "kasi-delivery");
        run();
    });
    return true;
}

void Outbound::run() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    extensions().close_loop(&loop_);  // e.g. the policy's kasi.sleep timers, kasi.redis links
    for (int i = 0; i < 8; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

void Outbound::submit(std::shared_ptr<QueuedMessage> m) {
    inbox_->post([this, m = std::move(m)]() mutable {
        if (qm_) qm_->enqueue(std::move(m));
    });
}

void Outbound::set_config(std::shared_ptr<const OutboundConfig> cfg,
                          std::shared_ptr<const HookTable> hooks, std::string me) {
    inbox_->post([this, cfg = std::move(cfg), hooks = std::move(hooks), me = std::move(me)] {
        cfg_ = cfg;
        hooks_ = hooks;
        me_ = me;
        if (qm_)
            qm_->set_settings(
                QueueSettings{cfg_, hooks_, tls_ctx_.get(), me_, suppressions_, reputation_});
    });
}

std::string Outbound::reopen_logs() {
    std::string err, answer = "ok: reopened the log file and the event log";
    if (!log::reopen()) {
        err = fmt::format("log file: {}", std::strerror(errno));
        log::error("reopening the {} (still writing to the file open before)", err);
        answer = "error: " + err;
    }
    if (qm_ && !qm_->reopen_events(err)) {
        log::error("events: reopening {}", err);
        answer = "error: events: " + err;
    }
    if (answer.starts_with("ok")) log::notice("log files reopened");
    return answer;
}

std::string Outbound::control(const std::string& line) {
    if (line == "reopen-logs") return reopen_logs();
    AdminHandler admin;
    {
        std::lock_guard<std::mutex> lock(admin_mu_);
        admin = admin_;
    }
    if (admin)
        if (auto r = admin(line)) return *r;
    if (!qm_) return "error: kasi is shutting down";
    return qm_->control(line);
}

void Outbound::command(std::string line, std::function<void(std::string)> reply) {
    inbox_->post([this, line = std::move(line), reply = std::move(reply)]() mutable {
        answer(line, std::move(reply));
    });
}

// On the delivery loop. The suppression list's commands sync to disk: they run on the
// thread pool and answer when done; the others answer at once.
void Outbound::answer(const std::string& line, std::function<void(std::string)> reply) {
    if (line == "reputation" || line.rfind("reputation ", 0) == 0) return reply(reputation(line));
    if (line == "adaptive")
        return reply(qm_ ? "ok " + qm_->adaptive_json() : "error: kasi is shutting down");
    if (line != "suppress" && line.rfind("suppress ", 0) != 0) return reply(control(line));
    if (!suppressions_) return reply("error: the suppression list is off (suppression.ini)");
    struct Work {
        uv_work_t req{};
        SuppressionService* svc;
        std::string line, out;
        std::function<void(std::string)> reply;
    };
    auto w = std::make_unique<Work>();
    w->svc = suppressions_;
    w->line = line;
    w->reply = std::move(reply);
    w->req.data = w.get();
    int rc = uv_queue_work(
        &loop_, &w->req,
        [](uv_work_t* r) {
            auto* w = static_cast<Work*>(r->data);
            w->out = suppression_command(*w->svc, w->line);
            while (!w->out.empty() && w->out.back() == '\n') w->out.pop_back();
        },
        [](uv_work_t* r, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(r->data));
            w->reply(std::move(w->out));
        });
    if (rc != 0) return w->reply(std::string("error: ") + uv_strerror(rc));
    (void)w.release();  // libuv owns it until the after-work callback
}

// `reputation [key=value ...]`: "ok " and the matrix's JSON (reputation_query.h).
std::string Outbound::reputation(const std::string& line) const {
    if (!reputation_) return "error: the reputation matrix is off (reputation.ini)";
    RepQuery q;
    std::string err;
    if (!parse_rep_query(rep_query_words(line.substr(std::min(line.size(), size_t(11)))), q, err))
        return "error: " + err;
    return "ok " + reputation_->json(q.filter, q.limit);
}

void Outbound::inspect(std::function<void(const QueueManager*)> fn) {
    inbox_->post([this, fn = std::move(fn)] { fn(qm_.get()); });
}

void Outbound::log_event(std::string json) {
    inbox_->post([this, json = std::move(json)] {
        if (qm_) qm_->log_event(json);
    });
}

void Outbound::set_admin_handler(AdminHandler h) {
    std::lock_guard<std::mutex> lock(admin_mu_);
    admin_ = std::move(h);
}

void Outbound::stop(int grace_ms) {
    if (!thread_.joinable()) return;
    spool_.set_rotate_listener(nullptr);
    spool_.set_meta_listener(nullptr);
    inbox_->post([this, grace_ms] {
        if (qm_) qm_->shutdown();
        stop_timer_ = std::make_unique<UvHandle<uv_timer_t>>();
        uv_timer_init(&loop_, stop_timer_->get());
        (*stop_timer_)->data = this;
        int64_t deadline = uv_now(&loop_) + uint64_t(std::max(0, grace_ms));
        uv_timer_start(
            stop_timer_->get(),
            [](uv_timer_t* t) {
                auto* self = static_cast<Outbound*>(t->data);
                bool quiet = !self->qm_ || self->qm_->stats().connections == 0;
                if (!quiet && int64_t(uv_now(&self->loop_)) < self->stop_deadline_) return;
                self->control_.reset();
                self->qm_.reset();  // aborts what is left; the spool keeps it
                self->status_timer_.reset();
                self->stop_timer_.reset();
                self->inbox_->close();
                uv_stop(&self->loop_);
            },
            0, 20);
        stop_deadline_ = deadline;
    });
    thread_.join();
}

}  // namespace kasi
