// The limits of one ready queue, and an override of some of them, as data. They are part of
// the hook contract (plugin.h: a queue_limits hook is shown a queue's QueueLimits and may
// answer a LimitOverride), so they live here rather than with the queue that enforces them:
// a plugin sees the types without seeing the queue. A value shows who set it (`origin`).
// Reading them from outbound.ini and applying an override is the queue's business
// (core/queue/queue_limits.h).
#pragma once

#include <string>

namespace kasi {

struct QueueLimits {
    int max_connections = 32;
    int max_messages_per_connection = 1000;
    double max_message_rate = 0;     // messages per second, 0 = unlimited
    int max_recipients = 100;        // per transaction
    int idle_timeout_ms = 5000;      // an idle pooled connection is closed after this
    std::string origin = "default";  // who set them, for kasictl and events
};

struct LimitOverride {
    enum class Kind { domain, site, source } kind;
    std::string pattern;  // exact name, or "*.suffix" for sites and domains
    std::string origin;   // "outbound.ini:[site:*.google.com]"
    // A field not set in the section stays -1 and does not override.
    int max_connections = -1, max_messages_per_connection = -1, max_recipients = -1,
        idle_timeout_ms = -1;
    double max_message_rate = -1;
};

}  // namespace kasi
