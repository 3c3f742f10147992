// The delivery thread: its own libuv loop running the QueueManager, fed by the SMTP
// workers (new messages, once durable) and the spool writer (segments closed). Other
// threads reach it only through its LoopInbox. A later step shards ready queues across
// several such loops; the interface stays the same.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/queue/control.h"
#include "core/queue/outbound_config.h"
#include "core/queue/queue_manager.h"
#include "core/server/loop_inbox.h"
#include "core/spool/spool.h"
#include "core/tls/ssl_ptr.h"

namespace kasi {

class SuppressionService;
class ReputationService;

class Outbound {
  public:
    Outbound(Spool& spool, std::shared_ptr<const OutboundConfig> cfg,
             std::shared_ptr<const HookTable> hooks, std::string me);
    ~Outbound();
    Outbound(const Outbound&) = delete;
    Outbound& operator=(const Outbound&) = delete;

    // The suppression list the queue checks and feeds (before start; process-long).
    void set_suppressions(SuppressionService* s) { suppressions_ = s; }
    // The reputation matrix the outcomes feed (before start; process-long; null: off).
    void set_reputation(ReputationService* r) { reputation_ = r; }
    ReputationService* reputation() const { return reputation_; }
    // Schedules the messages the spool recovered and starts the thread.
    bool start(std::string& err, QueueLoader& recovered);
    // Any thread: a message that is now durable in the spool.
    void submit(std::shared_ptr<QueuedMessage> m);
    void set_config(std::shared_ptr<const OutboundConfig> cfg,
                    std::shared_ptr<const HookTable> hooks, std::string me);
    // Closes connections (QUIT where idle) and stops the loop within `grace_ms`.
    void stop(int grace_ms = 3000);
    // Control-socket commands the queue does not own ("reload", "status"): the handler
    // answers them, or returns nullopt. Runs on the delivery loop; any thread may set it.
    using AdminHandler = std::function<std::optional<std::string>(const std::string&)>;
    void set_admin_handler(AdminHandler h);
    // Any thread: runs a control command (the control socket's language) on the delivery
    // loop; `reply` gets the answer there (on the delivery thread).
    void command(std::string line, std::function<void(std::string)> reply);
    // Any thread: runs `fn` on the delivery loop with the queue manager (null while stopping).
    void inspect(std::function<void(const QueueManager*)> fn);
    // Any thread: appends one JSON event to the event log.
    void log_event(std::string json);

  private:
    void run();
    std::string control(const std::string& line);
    void answer(const std::string& line, std::function<void(std::string)> reply);
    std::string reputation(const std::string& line) const;
    // "reopen-logs": the main log file and the event log are opened again (logrotate).
    std::string reopen_logs();

    Spool& spool_;
    std::shared_ptr<const OutboundConfig> cfg_;
    std::shared_ptr<const HookTable> hooks_;
    std::string me_;
    SuppressionService* suppressions_ = nullptr;
    ReputationService* reputation_ = nullptr;
    SslCtxPtr tls_ctx_;
    uv_loop_t loop_{};
    std::unique_ptr<LoopInbox> inbox_;
    std::unique_ptr<QueueManager> qm_;
    std::unique_ptr<ControlServer> control_;
    std::mutex admin_mu_;
    AdminHandler admin_;
    std::thread thread_;
    std::unique_ptr<UvHandle<uv_timer_t>> stop_timer_;
    std::unique_ptr<UvHandle<uv_timer_t>> status_timer_;
    int64_t stop_deadline_ = 0;
};

}  // namespace kasi
