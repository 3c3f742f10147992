// The queue's operations on its limits (the types are part of the hook contract:
// core/hooks/queue_limits.h). Implemented with the outbound.ini reader (outbound_config.cpp).
#pragma once

#include <string_view>

#include "core/hooks/queue_limits.h"

namespace kasi {

// "100/min", "2/s", "5000/h", "20000/d" or a plain number (per second) -> messages per
// second; false if invalid.
bool parse_rate(std::string_view text, double& per_second);

// `l` with the fields `o` sets replaced (and its origin).
void apply_override(QueueLimits& l, const LimitOverride& o);

}  // namespace kasi
