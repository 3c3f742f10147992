// Wall-clock helpers: epoch milliseconds and RFC 5322 dates for headers.
#pragma once

#include <cstdint>
#include <string>

namespace kasi {

int64_t now_ms();
// "Sun, 22 Nov 2026 08:20:15 +0000" for the given epoch seconds (local zone offset).
std::string rfc5322_date(int64_t epoch_s);
std::string http_date(int64_t epoch_s);  // IMF-fixdate (RFC 9110): "Sun, 06 Nov 1994 08:49:37 GMT"

}  // namespace kasi
