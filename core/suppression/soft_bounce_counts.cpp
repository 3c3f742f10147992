#include "core/suppression/soft_bounce_counts.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi {

bool SoftBounceCounts::note(const std::string& address, int64_t now, int threshold,
                            int64_t window_s) {
    if (threshold <= 0) return false;
    std::lock_guard lk(mu_);
    dirty_ = true;
    auto& t = times_[address];
    t.push_back(now);
    while (!t.empty() && t.front() < now - window_s) t.pop_front();
    while (t.size() > size_t(threshold)) t.pop_front();
    if (int(t.size()) >= threshold) {
        times_.erase(address);
        return true;
    }
    if (times_.size() > max_addresses) trim_locked();
    return false;
}

// Forgets the addresses whose last soft bounce is older than the median: bounded memory
// costs a few delayed suppressions, never a wrong one.
void SoftBounceCounts::trim_locked() {
    std::vector<int64_t> last;
    last.reserve(times_.size());
    for (const auto& [a, t] : times_) last.push_back(t.empty() ? 0 : t.back());
    auto mid = last.begin() + long(last.size() / 2);
    std::nth_element(last.begin(), mid, last.end());
    int64_t cut = *mid;
    for (auto it = times_.begin(); it != times_.end();)
        it = (it->second.empty() || it->second.back() <= cut) ? times_.erase(it) : std::next(it);
}

size_t SoftBounceCounts::size() const {
    std::lock_guard lk(mu_);
    return times_.size();
}

bool SoftBounceCounts::load(const std::string& path, std::string& err) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) return true;
        err = path + ": " + std::strerror(errno);
        return false;
    }
    std::lock_guard lk(mu_);
    std::string line;
    while (std::getline(in, line) && times_.size() < max_addresses) {
        auto f = split_list(line, "\t");
        if (f.size() < 2 || f[0].find('@') == std::string::npos) continue;
        std::deque<int64_t> t;
        for (size_t i = 1; i < f.size() && t.size() < 64; ++i) {
            unsigned long long v = 0;
            if (parse_u64(f[i], v)) t.push_back(int64_t(v));
        }
        if (!t.empty()) times_[f[0]] = std::move(t);
    }
    return true;
}

bool SoftBounceCounts::save(const std::string& path, int64_t now, int64_t window_s,
                            std::string& err) {
    std::ostringstream out;
    {
        std::lock_guard lk(mu_);
        if (!dirty_) return true;
        dirty_ = false;
        for (auto it = times_.begin(); it != times_.end();) {
            auto& t = it->second;
            while (!t.empty() && t.front() < now - window_s) t.pop_front();
            if (t.empty()) {
                it = times_.erase(it);
                continue;
            }
            out << it->first;
            for (int64_t v : t) out << '\t' << v;
            out << '\n';
            ++it;
        }
    }
    if (write_file_replacing(path, out.str(), err)) return true;
    std::lock_guard lk(mu_);
    dirty_ = true;  // try again at the next save
    return false;
}

}  // namespace kasi
