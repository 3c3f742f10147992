// The process: loads the config, opens the spool, starts the worker loops, and handles
// signals on the main thread's own loop:
//   SIGTERM/SIGINT - graceful stop: stop accepting, let transactions in flight finish
//                    (bounded by smtp.ini force_shutdown_timeout), then the spool writer
//                    drains and the process exits 0. Past the deadline, policy calls
//                    still running are interrupted, and if a thread is still busy
//                    seconds later the process exits 1 anyway (server.cpp ExitWatchdog);
//   SIGHUP         - reopen the log file and the event log (after logrotate renamed them,
//                    as `kasictl reopen-logs` does), then reload: a new config generation
//                    for new connections; a config with errors is refused and the running
//                    one stays.
// The same reload runs for `kasictl reload` (the control socket, which lives on the
// delivery loop, hands it to this loop and waits for the result) and, unless kasi.ini
// [reload] watch=false, when a file under DIR/config, DIR/plugins or DIR/lua changes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/queue/outbound.h"
#include "core/queue/queue_sink.h"
#include "core/server/config_watch.h"
#include "core/server/conn_limits.h"
#include "core/server/extensions.h"
#include "core/server/loop_inbox.h"
#include "core/server/server_config.h"
#include "core/server/worker.h"
#include "core/spool/intake.h"
#include "core/spool/spool.h"
#include "core/reputation/reputation_service.h"
#include "core/suppression/suppression_service.h"

namespace kasi {

class Server {
  public:
    explicit Server(std::string base_dir) : base_dir_(std::move(base_dir)) {}
    int run(std::shared_ptr<const ServerConfig> cfg);  // returns the exit status

  private:
    // Loads and swaps in a new generation; "ok ..." or "error: ..." with every reason.
    std::string reload(const std::string& why);  // tells systemd (RELOADING=1, READY=1)
    std::string reload_config(const std::string& why);
    std::string status() const;
    void save_state();  // the extensions' state (policy counters) to the spool dir
    // Runs `fn` on the main loop and returns its answer; for other threads.
    std::string on_main(std::function<std::string()> fn);
    std::optional<std::string> admin(const std::string& line);
    void begin_shutdown();
    void check_drained();

    std::string base_dir_;
    std::shared_ptr<const ServerConfig> cfg_;
    Spool spool_;
    // declared first, destroyed last: the queue and the sessions use it until they stop
    std::unique_ptr<SuppressionService> suppressions_;  // null: suppression.ini enabled=false
    SuppressionsShown suppressions_shown_;              // to the extensions (kasi.suppression)
    std::unique_ptr<ReputationService> reputation_;     // null: reputation.ini enabled=false
    ReputationShown reputation_shown_;                  // to the extensions (kasi.reputation)
    std::unique_ptr<Outbound> outbound_;
    std::unique_ptr<QueueSink> queue_sink_;  // where the intake hands durable messages
    std::unique_ptr<Intake> intake_;         // where every session hands its messages
    ConnLimits limits_;
    std::vector<std::unique_ptr<Worker>> workers_;
    uv_loop_t loop_{};
    std::unique_ptr<LoopInbox> inbox_;
    std::unique_ptr<ConfigWatch> watch_;
    std::string state_dir_;    // where the extensions keep their state (the spool dir)
    std::string loaded_;       // when and why the running generation was loaded
    std::string last_reload_;  // the outcome of the last reload attempt
    bool stopping_ = false;
    int64_t deadline_ms_ = 0;
    bool forced_ = false;  // the deadline passed with connections still open
};

// Applies log.ini settings; false (with a message) if the log file cannot be opened.
bool apply_log_settings(const Settings& s, std::string& err);

}  // namespace kasi
