#include "core/server/config_watch.h"

#include <sys/stat.h>

#include <filesystem>

namespace kasi {

namespace {

bool ignored(const std::string& name) {
    if (name.empty() || name[0] == '.') return true;
    auto ends = [&](const char* suf) {
        size_t n = std::char_traits<char>::length(suf);
        return name.size() >= n && name.compare(name.size() - n, n, suf) == 0;
    };
    return ends("~") || ends(".swp") || ends(".tmp") || ends(".bak");
}

// FNV-1a over bytes
void mix(uint64_t& h, const void* p, size_t n) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
}

}  // namespace

ConfigWatch::ConfigWatch(uv_loop_t* loop, std::vector<std::string> dirs, uint64_t interval_ms,
                         std::function<void()> on_change)
    : loop_(loop),
      dirs_(std::move(dirs)),
      interval_ms_(interval_ms),
      on_change_(std::move(on_change)) {}

uint64_t ConfigWatch::signature(const std::vector<std::string>& dirs) {
    namespace fs = std::filesystem;
    uint64_t h = 14695981039346656037ull;
    for (const auto& dir : dirs) {
        std::error_code ec;
        fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
        for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (ignored(name)) {
                if (it->is_directory(ec)) it.disable_recursion_pending();
                continue;
            }
            struct stat st {};
            std::string path = it->path().string();
            if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            mix(h, path.data(), path.size() + 1);
            mix(h, &st.st_size, sizeof st.st_size);
            mix(h, &st.st_mtim, sizeof st.st_mtim);
            mix(h, &st.st_ino, sizeof st.st_ino);
        }
    }
    return h;
}

void ConfigWatch::start() {
    applied_ = last_ = signature(dirs_);
    uv_timer_init(loop_, timer_.get());
    timer_->data = this;
    uv_timer_start(
        timer_.get(), [](uv_timer_t* t) { static_cast<ConfigWatch*>(t->data)->scan(); },
        interval_ms_, interval_ms_);
}

void ConfigWatch::scan() {
    uint64_t now = signature(dirs_);
    bool stable = now == last_;
    last_ = now;
    if (!stable || now == applied_) return;
    applied_ = now;
    on_change_();
}

}  // namespace kasi
