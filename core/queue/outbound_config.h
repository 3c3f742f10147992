// Outbound delivery settings: Haraka's outbound.ini keys that still make sense, Kasi's
// queue limits and SMTP client timeouts (also in outbound.ini), tls.ini [outbound] and
// dns.ini. One immutable generation per config load, like ServerConfig.
//
// Queue limits are data: a QueueLimits value with the origin of each field, resolved from
// the defaults ([queues]) and overrides in [source:<name>], [site:<pattern>] and
// [domain:<name>] sections (most specific wins: domain > source > site > defaults), so that
// a later Lua policy can set the same fields through the same type.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"
#include "core/dns/dns_config.h"
#include "core/dns/mx.h"
#include "core/queue/egress.h"
#include "core/queue/queue_limits.h"
#include "core/queue/verp.h"
#include "core/smtp/client/client_timeouts.h"

namespace kasi {

class Classifier;

struct OutboundConfig {
    bool disabled = false;
    int concurrency_max = 10000;  // connections in flight, all queues
    bool enable_tls = true;
    bool always_split = false;
    bool local_mx_ok = false;
    int smtp_port = 25;  // the port MX hosts are contacted on
    InetPrefer inet_prefer = InetPrefer::v4;
    std::vector<int> temp_fail_intervals_s;  // delay before retry n+1; size = retries allowed
    int64_t max_age_ms = 5ll * 86400 * 1000;
    int64_t delay_warning_ms = 0;  // warn the sender once a message waited this long; 0 = off
    bool bounce_include_message = false;     // else only the headers
    std::shared_ptr<const VerpConfig> verp;  // verp.ini (null: VERP off)
    ClientTimeouts timeouts;
    QueueLimits defaults;
    std::vector<LimitOverride> overrides;
    // tls.ini [outbound]
    std::vector<std::string> no_tls_hosts, force_tls_hosts;
    int tls_failure_memory_s = 3600;
    std::string tls_ca_file;  // CAs for verifying MX certificates; "" = the system's  // plaintext
                              // is used this long after a failed STARTTLS
    // events
    std::string events_file;      // "" = off
    std::string bounce_template;  // config/outbound.bounce_message, or built in
    DnsConfig dns;
    EgressConfig egress;  // egress.ini
    // the bounce classifier (rules/classify + config/classify.rules; docs/bounces.md);
    // null only in tests that build an OutboundConfig by hand
    std::shared_ptr<const Classifier> classifier;

    // Limits for the ready queue of (source, site) first created for `domain`.
    QueueLimits limits_for(const std::string& domain, const std::vector<std::string>& mx_hosts,
                           const std::string& source) const;
};

// Haraka's temp_fail_intervals syntax: "<n><s|m|h|d>[*count]" comma-separated, or "none".
// False on a syntax error (err says where); Haraka's test vectors: "10s, 1m*2" -> 10,60,60.
bool parse_fail_intervals(std::string_view text, std::vector<int>& out, std::string& err);
// Haraka's default: 2^(i+5) s for i = 1..max_temp_failures-1.
std::vector<int> default_fail_intervals(int max_temp_failures);
// "90", "90s", "5m", "2h", "5d" -> milliseconds; false if invalid.
bool parse_duration_ms(std::string_view text, int64_t& out);
// "*.example.com" matches below example.com; anything else must match exactly (no case).
bool host_pattern_match(std::string_view pattern, std::string_view host);

OutboundConfig load_outbound_config(const ConfigDir& cfg, const std::string& base_dir,
                                    Diagnostics& d);

}  // namespace kasi
