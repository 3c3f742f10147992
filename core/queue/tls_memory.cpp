#include "core/queue/tls_memory.h"

#include <iterator>

#include "core/log/log.h"

namespace kasi {

void TlsFailureMemory::remember(const std::string& host, int64_t now_ms, int seconds) {
    if (seconds <= 0) return;
    until_[host] = now_ms + int64_t(seconds) * 1000;
    log::info("outbound: STARTTLS with {} failed; plaintext for the next {} s", host, seconds);
}

void TlsFailureMemory::forget_expired(int64_t now_ms) {
    for (auto it = until_.begin(); it != until_.end();)
        it = it->second <= now_ms ? until_.erase(it) : std::next(it);
}

}  // namespace kasi
