// Connection counts shared by every loop (a deliberate sharing point): the total and per
// client IP, checked at accept against kasi.ini [limits].
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

namespace kasi {

class ConnLimits {
  public:
    enum class Verdict { ok, total, per_ip };
    Verdict acquire(const std::string& ip, int max_total, int max_per_ip);
    void release(const std::string& ip);
    int total() const;

  private:
    mutable std::mutex mu_;
    int total_ = 0;
    std::unordered_map<std::string, int> per_ip_;
};

}  // namespace kasi
