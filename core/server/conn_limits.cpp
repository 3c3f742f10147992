#include "core/server/conn_limits.h"

namespace kasi {

ConnLimits::Verdict ConnLimits::acquire(const std::string& ip, int max_total, int max_per_ip) {
    std::lock_guard lk(mu_);
    if (total_ >= max_total) return Verdict::total;
    int& n = per_ip_[ip];
    if (max_per_ip > 0 && n >= max_per_ip) {
        if (n == 0) per_ip_.erase(ip);
        return Verdict::per_ip;
    }
    ++n;
    ++total_;
    return Verdict::ok;
}

void ConnLimits::release(const std::string& ip) {
    std::lock_guard lk(mu_);
    auto it = per_ip_.find(ip);
    if (it == per_ip_.end()) return;
    --total_;
    if (--it->second <= 0) per_ip_.erase(it);
}

int ConnLimits::total() const {
    std::lock_guard lk(mu_);
    return total_;
}

}  // namespace kasi
