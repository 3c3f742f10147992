// Core settings, read from Haraka's files where Haraka has one (me, smtp.ini,
// connection.ini, log.ini, plugin_timeout, queue_dir) and from kasi.ini for what Haraka
// lacks. Every key is documented in docs/config.md. Values are validated here so that a
// bad value stops start-up (and --check-config) with "file:line: what is wrong".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config_dir.h"
#include "core/log/log.h"
#include "core/util/ip.h"

namespace kasi {

struct ListenAddr {
    std::string host;  // numeric IPv4 or IPv6 (without brackets)
    int port = 25;
    bool implicit_tls = false;  // the smtps port
    std::string str() const;
};
// "ip:port" or "[ipv6]:port" (numeric addresses only); false if it is not that.
bool parse_listen_addr(std::string_view s, ListenAddr& out);

struct Settings {
    std::string config_root;  // DIR/config
    std::string me;
    // smtp.ini
    std::vector<ListenAddr> listen;
    int smtps_port = 465;
    int workers = 0;  // 0 = one per core
    int inactivity_timeout_s = 300;
    int shutdown_timeout_s = 30;
    // connection.ini
    bool smtputf8 = true;
    // smtp.ini strict / connection.ini strict_rfc1869: MAIL/RCPT as RFC 5321 and 1869 write
    // them (brackets, known parameters, well-formed values); off: Haraka's leniency
    bool strict_smtp = false;
    bool haproxy_enabled = true;
    CidrList haproxy_hosts;
    bool add_received = true;
    bool show_version = true;
    int max_received = 100;
    int max_header_lines = 1000;
    int max_mime_parts = 1000;
    uint64_t max_bytes = 26214400;
    int max_line_length = 512;
    int max_data_line_length = 992;
    std::vector<std::string> greeting;
    std::string helo_message = "Kasi is at your service.";
    std::string close_message = "closing connection. Have a jolly good day.";
    int banner_chars = 6;
    // kasi.ini
    int max_connections = 10000;
    int max_connections_per_ip = 0;  // 0 = no limit
    int max_recipients = 1000;
    bool chunking = true;
    bool enhanced_status_codes = true;
    int proxy_timeout_s = 30;
    bool rdns_lookup = true;  // core PTR lookup when no lookup_rdns plugin answers
    uint64_t spool_segment_bytes = 64ull << 20;
    bool watch_config = true;  // reload when a file of config/, plugins/ or lua/ changes
    int watch_interval_ms = 2000;
    // queue_dir, plugin_timeout, log.ini
    std::string queue_dir;
    uint32_t plugin_timeout_ms = 30000;
    log::Level log_level = log::Level::info;
    std::string log_file;
};

Settings load_settings(const ConfigDir& cfg, const std::string& base_dir, Diagnostics& d);

}  // namespace kasi
