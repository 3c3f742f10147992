// limit: haraka-plugin-limit's connection and recipient limits, with counters kept in
// memory (RateTable) instead of redis. Every section is off until it has enabled=true.
//   [main] tarpit_delay      seconds to wait before a penalty reply (0)
//   [concurrency] max        connections at once per client IP -> 421 + disconnect
//   [recipients] max, max_relaying   RCPT attempts per connection -> 450
//   [unrecognized_commands] max      -> 421 Too many unrecognized commands + disconnect
//   [errors] max             protocol errors per connection -> 4xx Too many errors + disconnect
//   [rate_conn] key=N[/T]    connections per period (sliding window) -> 421 + disconnect
//   [rate_rcpt_host], [rate_rcpt_sender], [rate_rcpt], [rate_rcpt_null]  key=N[/T]
//                            recipients per period (fixed windows, as Haraka) -> 450
// Keys of the rate sections are looked up from the most specific to `default`: for a host,
// the IP and its prefixes (10.1.2.3, 10.1.2, 10.1, 10), then the rDNS name and its parents;
// for an address, the address, then its domain and parents. 0 means unlimited.
// Counting unrecognized commands runs after every other plugin (STARTTLS and AUTH are
// recognised by theirs).
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_limit_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                          HookTable& table, uint32_t timeout_ms);

// The keys tried for a client, most specific first (exposed for tests).
std::vector<std::string> limit_host_keys(const std::string& ip_text, const std::string& rdns);

}  // namespace kasi
