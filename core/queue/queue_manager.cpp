#include "core/queue/queue_manager.h"

#include <mutex>
#include <unordered_map>

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
      reports_(ctx_, outcome_),
      outcome_(ctx_, scheduler_, dsn_),
      dsn_(ctx_, spool, std::move(post), scheduler_),
      admin_(ctx_, scheduler_, router_, ready_, outcome_) {
    std::lock_guard<std::mutex> lock(qm_registry_mu);
    qm_registry()[ctx_.loop] = this;
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
    router_.forget_routes();      // new routing rules apply from the next lookup
    ready_.refresh_all_limits();  // and new limits at once
    scheduler_.settings_changed();
}

bool QueueManager::open_events(std::string& err) {
    return ctx_.events.open(ctx_.cfg().events_file, err);
}

void QueueManager::shutdown() {
    ctx_.shutting_down = true;
    scheduler_.stop();
    ready_.close_all();
    ctx_.events.flush();
}

}  // namespace kasi
