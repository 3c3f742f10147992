#include "core/queue/queue_manager.h"

#include <mutex>
#include <unordered_map>

#include "core/hooks/plugin.h"
#include "core/log/log.h"
#include "core/util/clock.h"
#include "core/util/file.h"

namespace kasi {

namespace {
std::mutex qm_registry_mu;
std::unordered_map<uv_loop_t*, QueueManager*>& qm_registry() {
    static std::unordered_map<uv_loop_t*, QueueManager*> m;
    return m;
}
}  // namespace

QueueManager::QueueManager(uv_loop_t* loop, Spool& spool, QueueSettings s,
                           std::function<void(std::function<void()>)> post)
    : ctx_(loop, spool, std::move(s)),
      scheduler_(ctx_, router_, ready_, outcome_),
      router_(ctx_, ready_, reports_, outcome_),
      ready_(ctx_, outcome_),
      shaping_(ready_, [this](const std::string& json) { ctx_.events.other(json); }),
      reports_(ctx_, outcome_),
      outcome_(ctx_, scheduler_, dsn_),
      dsn_(ctx_, spool, std::move(post), scheduler_),
      admin_(ctx_, scheduler_, router_, ready_, outcome_) {
    ready_.set_shaping(&shaping_);
    outcome_.set_shaping(&shaping_);
    load_shaping_state();
    apply_rules();
    scheduler_.on_sweep([this](int64_t now) {
        shaping_.tick(now);
        ready_.apply_shaping_changes();
        if (++sweeps_ % 60 == 0) ctx_.breaker.sweep(now);
        save_shaping_state(false);
    });
    std::lock_guard<std::mutex> lock(qm_registry_mu);
    qm_registry()[ctx_.loop] = this;
}

// The automation rules' actions come back after a restart (a missing file: none).
void QueueManager::load_shaping_state() {
    std::string text, err;
    std::string path = ctx_.spool_dir + "/adaptive.state";
    if (!read_file_capped(path, 64 << 20, text, err)) return;
    // the rules' actions, then the breakers held ("kasi-breaker 1" and its lines)
    if (!shaping_.load(text, now_ms(), err))
        log::warn("adaptive: {}: {}; starting without actions", path, err);
    else
        shaping_saved_ = text;
    if (auto at = text.find("kasi-breaker 1\n");
        at != std::string::npos && !ctx_.breaker.load(text.substr(at), now_ms(), err))
        log::warn("adaptive: {}: {}", path, err);
}

// Written when it changed: off the loop (thread pool), or at once at shutdown.
void QueueManager::save_shaping_state(bool now) {
    std::string text = shaping_.save() + ctx_.breaker.save();
    if (text == shaping_saved_ || shaping_saving_) return;
    std::string path = ctx_.spool_dir + "/adaptive.state";
    if (now) {
        std::string err;
        if (!write_file_replacing(path, text, err)) log::warn("adaptive: {}", err);
        shaping_saved_ = text;
        return;
    }
    struct Work {
        uv_work_t req{};
        QueueManager* qm;
        std::weak_ptr<bool> alive;
        std::string path, text, err;
        bool ok = false;
    };
    auto w = std::make_unique<Work>();
    w->qm = this;
    w->alive = ctx_.alive;
    w->path = path;
    w->text = text;
    w->req.data = w.get();
    shaping_saving_ = true;
    int rc = uv_queue_work(
        ctx_.loop, &w->req,
        [](uv_work_t* r) {
            auto* w = static_cast<Work*>(r->data);
            w->ok = write_file_replacing(w->path, w->text, w->err);
        },
        [](uv_work_t* r, int) {
            std::unique_ptr<Work> w(static_cast<Work*>(r->data));
            if (!w->alive.lock()) return;
            w->qm->shaping_saving_ = false;
            if (w->ok)
                w->qm->shaping_saved_ = std::move(w->text);
            else
                log::warn("adaptive: {}", w->err);
        });
    if (rc == 0) {
        (void)w.release();
        return;
    }
    shaping_saving_ = false;
}

// The generation's automation rules and breaker thresholds (the adaptive plugin's).
void QueueManager::apply_rules() {
    auto rules = ctx_.settings.hooks ? ctx_.settings.hooks->shaping_rules() : nullptr;
    shaping_.set_rules(rules, now_ms());
    ctx_.breaker.set_policy(rules ? std::shared_ptr<const BreakerPolicy>(rules, &rules->breaker)
                                  : nullptr);
}

std::string QueueManager::adaptive_json() const {
    return shaping_.json(now_ms());
}

QueueManager* QueueManager::on_loop(uv_loop_t* loop) {
    std::lock_guard<std::mutex> lock(qm_registry_mu);
    auto it = qm_registry().find(loop);
    return it == qm_registry().end() ? nullptr : it->second;
}

QueueManager::~QueueManager() {
    {
        std::lock_guard<std::mutex> lock(qm_registry_mu);
        qm_registry().erase(ctx_.loop);
    }
    *ctx_.alive = false;
    ctx_.hooks.cancel_all();
    ready_.clear();
    ctx_.events.flush();
}

const ReadyQueue* QueueManager::ready_queue(const std::string& key) const {
    auto it = ready_.all().find(key);
    return it == ready_.all().end() ? nullptr : it->second.get();
}

void QueueManager::set_settings(QueueSettings s) {
    ctx_.set_settings(std::move(s));
    apply_rules();
    router_.forget_routes();      // new routing rules apply from the next lookup
    ready_.refresh_all_limits();  // and new limits at once
    scheduler_.settings_changed();
}

bool QueueManager::open_events(std::string& err) {
    return ctx_.events.open(ctx_.cfg().events_file, err);
}

void QueueManager::shutdown() {
    ctx_.shutting_down = true;
    save_shaping_state(true);  // unless a write is under way (it has the state of 1 s ago)
    scheduler_.stop();
    ready_.close_all();
    ctx_.events.flush();
}

}  // namespace kasi
