// The process: loads the config, opens the spool, starts the worker loops, and handles
// signals on the main thread's own loop:
//   SIGTERM/SIGINT - graceful stop: stop accepting, let transactions in flight finish
//                    (bounded by smtp.ini force_shutdown_timeout), then the spool writer
//                    drains and the process exits 0;
//   SIGHUP         - reload: a new config generation for new connections; a config with
//                    errors is refused and the running one stays.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/queue/outbound.h"
#include "core/server/conn_limits.h"
#include "core/server/server_config.h"
#include "core/server/worker.h"
#include "core/spool/spool.h"

namespace kasi {

class Server {
  public:
    explicit Server(std::string base_dir) : base_dir_(std::move(base_dir)) {}
    int run(std::shared_ptr<const ServerConfig> cfg);  // returns the exit status

  private:
    void reload();
    void begin_shutdown();
    void check_drained();

    std::string base_dir_;
    std::shared_ptr<const ServerConfig> cfg_;
    Spool spool_;
    std::unique_ptr<Outbound> outbound_;
    ConnLimits limits_;
    std::vector<std::unique_ptr<Worker>> workers_;
    uv_loop_t loop_{};
    bool stopping_ = false;
    int64_t deadline_ms_ = 0;
};

// Applies log.ini settings; false (with a message) if the log file cannot be opened.
bool apply_log_settings(const Settings& s, std::string& err);

}  // namespace kasi
