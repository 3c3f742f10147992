// Reload on file change. Every `interval` the watcher stats every file under the watched
// directories (DIR/config, DIR/plugins, DIR/lua) and folds (path, size, mtime) into one
// signature. A changed signature fires `on_change` once it has been the same for two scans
// in a row, so an editor's multi-step save or a `cp -r` of several files becomes one
// reload, and never one of half a file. Polling, not inotify: it also works for files
// replaced by rename, on bind mounts and NFS, and costs a few hundred stat() calls a second
// at most. Hidden files and editor leftovers (.swp, ~, .tmp) are ignored.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/util/uv_handle.h"

namespace kasi {

class ConfigWatch {
  public:
    ConfigWatch(uv_loop_t* loop, std::vector<std::string> dirs, uint64_t interval_ms,
                std::function<void()> on_change);
    void start();
    void stop() { timer_.close(); }

    // The signature of the watched files now (exposed for tests).
    static uint64_t signature(const std::vector<std::string>& dirs);

  private:
    void scan();

    uv_loop_t* loop_;
    std::vector<std::string> dirs_;
    uint64_t interval_ms_;
    std::function<void()> on_change_;
    UvHandle<uv_timer_t> timer_;
    uint64_t applied_ = 0;  // the signature in effect
    uint64_t last_ = 0;     // the previous scan's
};

}  // namespace kasi
