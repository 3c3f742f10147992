// Hosts whose STARTTLS handshake failed lately (tls.ini [outbound] tls_failure_memory):
// while a host is remembered, a ready queue's next connection to it goes without STARTTLS
// where TLS is opportunistic, instead of failing the same way again. In memory only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace kasi {

class TlsFailureMemory {
  public:
    bool failed_recently(const std::string& host, int64_t now_ms) const {
        auto it = until_.find(host);
        return it != until_.end() && it->second > now_ms;
    }
    // Remembers `host` for `seconds` (nothing when seconds <= 0).
    void remember(const std::string& host, int64_t now_ms, int seconds);
    // Drops the hosts whose time is up (the sweep, so the map stays small).
    void forget_expired(int64_t now_ms);

  private:
    std::unordered_map<std::string, int64_t> until_;  // host -> until (ms)
};

}  // namespace kasi
