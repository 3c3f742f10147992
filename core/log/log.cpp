#include "core/log/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <string>

namespace kasi::log {

namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mu;
int g_fd = 2;
std::string g_path;  // of g_fd; empty for stderr
const char* names[] = {"DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT"};
}  // namespace

bool parse_level(std::string_view name, Level& out) {
    static const std::pair<const char*, Level> table[] = {
        {"debug", Level::debug}, {"data", Level::debug},    {"protocol", Level::debug},
        {"info", Level::info},   {"notice", Level::notice}, {"warn", Level::warn},
        {"error", Level::error}, {"crit", Level::crit},     {"alert", Level::crit},
        {"emerg", Level::crit}};
    for (auto& [n, l] : table) {
        std::string_view nv(n);
        if (nv.size() == name.size()) {
            bool eq = true;
            for (size_t i = 0; i < nv.size(); ++i)
                if (nv[i] != (name[i] | 0x20)) eq = false;
            if (eq) {
                out = l;
                return true;
            }
        }
    }
    return false;
}

void set_level(Level l) {
    g_level.store(l, std::memory_order_relaxed);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}

bool set_file(const std::string& path) {
    int fd = 2;
    if (!path.empty()) {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) return false;
    }
    std::lock_guard lk(g_mu);
    if (g_fd != 2) ::close(g_fd);
    g_fd = fd;
    g_path = path;
    return true;
}

bool reopen() {
    std::string path;
    {
        std::lock_guard lk(g_mu);
        path = g_path;
    }
    return path.empty() || set_file(path);
}

void write(Level l, std::string_view msg) {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", int(tv.tv_usec / 1000));
    std::string line = fmt::format("{} [{}] {}\n", ts, names[int(l)], msg);
    std::lock_guard lk(g_mu);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t w = ::write(g_fd, p, left);
        if (w <= 0) break;
        p += w;
        left -= size_t(w);
    }
}

}  // namespace kasi::log
