// The limits of one ready queue, and an override of some of them (from outbound.ini
// sections or a queue_limits hook). Data only: a value shows who set it (`origin`).
#pragma once

#include <string>
#include <string_view>

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

// "100/min", "2/s", "5000/h", "20000/d" or a plain number (per second) -> messages per
// second; false if invalid.
bool parse_rate(std::string_view text, double& per_second);

// `l` with the fields `o` sets replaced (and its origin).
void apply_override(QueueLimits& l, const LimitOverride& o);

}  // namespace kasi
