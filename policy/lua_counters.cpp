#include "policy/lua_counters.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kasi {

CounterStore& CounterStore::global() {
    static CounterStore store;
    return store;
}

int64_t CounterStore::add(const std::string& key, int64_t n, int64_t ttl_s, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end() && it->second.expires_ms && it->second.expires_ms <= now_ms) {
        map_.erase(it);
        it = map_.end();
    }
    if (it == map_.end()) {
        if (map_.size() >= max_counters) return 0;  // full: counts nothing new
        it = map_.emplace(key, Entry{}).first;
    }
    it->second.value += n;
    if (ttl_s > 0) it->second.expires_ms = now_ms + ttl_s * 1000;
    dirty_ = true;
    return it->second.value;
}

int64_t CounterStore::get(const std::string& key, int64_t now_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return 0;
    if (it->second.expires_ms && it->second.expires_ms <= now_ms) {
        map_.erase(it);
        return 0;
    }
    return it->second.value;
}

size_t CounterStore::size() {
    std::lock_guard<std::mutex> lock(mu_);
    return map_.size();
}

// One counter per line: expires_ms TAB value TAB key (keys cannot hold tabs or newlines).
bool CounterStore::load(const std::string& path, int64_t now_ms, std::string& err) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return true;
        err = fmt::format("{}: {}", path, std::strerror(errno));
        return false;
    }
    std::lock_guard<std::mutex> lock(mu_);
    std::string line;
    while (std::getline(in, line)) {
        size_t a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
        if (b == std::string::npos) continue;
        Entry e;
        try {
            e.expires_ms = std::stoll(line.substr(0, a));
            e.value = std::stoll(line.substr(a + 1, b - a - 1));
        } catch (...) {
            continue;  // a damaged line is skipped, not fatal
        }
        if (e.expires_ms && e.expires_ms <= now_ms) continue;
        map_[line.substr(b + 1)] = e;
    }
    return true;
}

bool CounterStore::save(const std::string& path, int64_t now_ms, std::string& err) {
    std::ostringstream out;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!dirty_) return true;
        for (auto it = map_.begin(); it != map_.end();) {
            if (it->second.expires_ms && it->second.expires_ms <= now_ms) {
                it = map_.erase(it);
                continue;
            }
            out << it->second.expires_ms << '\t' << it->second.value << '\t' << it->first << '\n';
            ++it;
        }
        dirty_ = false;
    }
    std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    if (!f) {
        err = fmt::format("{}: {}", tmp, std::strerror(errno));
        return false;
    }
    std::string text = out.str();
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        err = fmt::format("{}: {}", path, std::strerror(errno));
        std::lock_guard<std::mutex> lock(mu_);
        dirty_ = true;  // try again next time
        return false;
    }
    return true;
}

}  // namespace kasi
