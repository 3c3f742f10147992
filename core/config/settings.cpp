#include "core/config/settings.h"

#include <unistd.h>

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

std::string ListenAddr::str() const {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                               : fmt::format("{}:{}", host, port);
}

bool parse_listen_addr(std::string_view s, ListenAddr& out) {
    s = trim(s);
    std::string_view host, port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    unsigned long long p;
    if (!parse_u64(port, p) || p == 0 || p > 65535) return false;
    auto ip = IpAddr::parse(host);
    if (!ip) return false;
    out.host = std::string(host);
    out.port = int(p);
    return true;
}

namespace {

void load_smtp_ini(const ConfigDir& cfg, Settings& s, Diagnostics& d) {
    Ini ini = cfg.ini("smtp.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main"});
    r.check_known("main", {"listen", "port", "listen_host", "smtps_port", "inactivity_timeout",
                           "nodes", "workers", "user", "group", "ignore_bad_plugins", "daemonize",
                           "daemon_log_file", "daemon_pid_file", "graceful_shutdown",
                           "force_shutdown_timeout", "public_ip", "strict"});
    // Kasi's name for connection.ini's strict_rfc1869 (either one turns it on)
    s.strict_smtp = r.get_bool("main", "strict", false);
    std::string listen = r.get_str("main", "listen", "[::0]:25");
    int line = 0;
    if (auto* e = ini.find("main", "listen")) line = e->line;
    // Haraka's legacy listen_host/port are prepended to the list.
    if (auto* p = ini.find("main", "port")) {
        std::string host = r.get_str("main", "listen_host", "[::0]");
        listen = fmt::format("{}:{},{}", host, p->value.value_or(""), listen);
        line = p->line;
    }
    s.smtps_port = int(r.get_int("main", "smtps_port", 465, 1, 65535));
    for (const auto& item : split_list(listen, ",")) {
        ListenAddr a;
        if (!parse_listen_addr(item, a)) {
            d.error(ini.path, line,
                    fmt::format("[main] listen: '{}' is not ip:port (IPv6 in brackets)", item));
            continue;
        }
        a.implicit_tls = a.port == s.smtps_port;
        s.listen.push_back(a);
    }
    s.inactivity_timeout_s = int(r.get_int("main", "inactivity_timeout", 300, 1, 86400));
    s.shutdown_timeout_s = int(r.get_int("main", "force_shutdown_timeout", 30, 0, 3600));
    auto workers_of = [&](std::string_view key) {
        auto* e = ini.find("main", key);
        if (!e) return;
        if (e->value && iequals(*e->value, "cpus")) {
            s.workers = 0;
        } else {
            s.workers = int(r.get_int("main", key, 0, 0, 256));
        }
    };
    workers_of("nodes");
    workers_of("workers");
    for (auto key : {"user", "group", "daemonize"})
        if (auto* e = ini.find("main", key))
            d.warn(ini.path, e->line,
                   fmt::format("[main] {} is not supported by kasi (run it under systemd's "
                               "User=/Group= instead); ignored",
                               key));
}

void load_connection_ini(const ConfigDir& cfg, Settings& s, Diagnostics& d) {
    Ini ini = cfg.ini("connection.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "haproxy", "headers", "max", "message", "uuid"});
    r.check_known("main", {"spool_dir", "spool_after", "strict_rfc1869", "postel", "smtputf8"});
    r.check_known("haproxy", {"enabled", "hosts"});
    r.check_known("headers", {"add_received", "clean_auth_results", "show_version", "max_lines",
                              "max_received"});
    r.check_known("max", {"bytes", "mime_parts", "line_length", "data_line_length"});
    r.check_known("message", {"greeting", "helo", "close"});
    r.check_known("uuid", {"banner_chars", "deny_chars"});
    s.smtputf8 = r.get_bool("main", "smtputf8", true);
    s.strict_smtp = s.strict_smtp || r.get_bool("main", "strict_rfc1869", false);
    s.haproxy_enabled = r.get_bool("haproxy", "enabled", true);
    for (const auto& h : r.get_list("haproxy", "hosts")) {
        auto c = Cidr::parse(h);
        if (!c) {
            auto* e = ini.find("haproxy", "hosts");
            d.error(ini.path, e ? e->line : 0,
                    fmt::format("[haproxy] hosts: '{}' is not an IP address or CIDR block", h));
            continue;
        }
        s.haproxy_hosts.add(*c);
    }
    s.add_received = r.get_bool("headers", "add_received", true);
    s.show_version = r.get_bool("headers", "show_version", true);
    s.max_received = int(r.get_int("headers", "max_received", 100, 1, 100000));
    s.max_header_lines = int(r.get_int("headers", "max_lines", 1000, 10, 1000000));
    s.max_mime_parts = int(r.get_int("max", "mime_parts", 1000, 1, 1000000));
    s.max_bytes = uint64_t(r.get_int("max", "bytes", 26214400, 1024, 2147483647LL));
    s.max_line_length = int(r.get_int("max", "line_length", 512, 512, 65536));
    s.max_data_line_length = int(r.get_int("max", "data_line_length", 992, 78, 1000000));
    s.greeting = r.get_list("message", "greeting");
    if (auto* e = ini.find("message", "greeting"); e && e->is_array) s.greeting = e->array;
    s.helo_message = r.get_str("message", "helo", s.helo_message);
    s.close_message = r.get_str("message", "close", s.close_message);
    s.banner_chars = int(r.get_int("uuid", "banner_chars", 6, 0, 36));
}

void load_kasi_ini(const ConfigDir& cfg, Settings& s, Diagnostics& d) {
    Ini ini = cfg.ini("kasi.ini", d);
    IniReader r(ini, d);
    r.check_sections({"limits", "smtp", "spool", "reload"});
    r.check_known("limits", {"max_connections", "max_connections_per_ip", "max_recipients"});
    r.check_known("smtp", {"chunking", "enhanced_status_codes", "proxy_timeout", "rdns_lookup"});
    r.check_known("spool", {"segment_mb"});
    r.check_known("reload", {"watch", "interval"});
    s.max_connections = int(r.get_int("limits", "max_connections", 10000, 1, 1000000));
    s.max_connections_per_ip = int(r.get_int("limits", "max_connections_per_ip", 0, 0, 1000000));
    s.max_recipients = int(r.get_int("limits", "max_recipients", 1000, 1, 100000));
    s.chunking = r.get_bool("smtp", "chunking", true);
    s.enhanced_status_codes = r.get_bool("smtp", "enhanced_status_codes", true);
    s.proxy_timeout_s = int(r.get_int("smtp", "proxy_timeout", 30, 1, 3600));
    s.rdns_lookup = r.get_bool("smtp", "rdns_lookup", true);
    s.spool_segment_bytes = uint64_t(r.get_int("spool", "segment_mb", 64, 1, 4096)) << 20;
    s.watch_config = r.get_bool("reload", "watch", true);
    s.watch_interval_ms = int(r.get_int("reload", "interval", 2, 1, 3600)) * 1000;
}

void load_log_ini(const ConfigDir& cfg, Settings& s, Diagnostics& d) {
    Ini ini = cfg.ini("log.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main"});
    r.check_known("main", {"level", "timestamps", "format", "file"});
    std::string level = r.get_str("main", "level", "info");
    if (!log::parse_level(level, s.log_level)) {
        auto* e = ini.find("main", "level");
        d.error(ini.path, e ? e->line : 0,
                fmt::format("[main] level: unknown level '{}' (debug, info, notice, warn, error, "
                            "crit)",
                            level));
    }
    s.log_file = r.get_str("main", "file", "");
}

}  // namespace

Settings load_settings(const ConfigDir& cfg, const std::string& base_dir, Diagnostics& d) {
    Settings s;
    s.config_root = cfg.root();
    if (auto me = cfg.value("me", d)) {
        s.me = me->text;
    } else {
        char host[256] = {0};
        gethostname(host, sizeof host - 1);
        s.me = host;
    }
    load_smtp_ini(cfg, s, d);
    load_connection_ini(cfg, s, d);
    load_kasi_ini(cfg, s, d);
    load_log_ini(cfg, s, d);
    if (auto t = cfg.value("plugin_timeout", d)) {
        unsigned long long v;
        if (!parse_u64(t->text, v) || v > 3600)
            d.error(cfg.root() + "/plugin_timeout", t->line,
                    fmt::format("'{}' is not a number of seconds (0..3600)", t->text));
        else
            s.plugin_timeout_ms = uint32_t(v * 1000);
    }
    if (auto q = cfg.value("queue_dir", d)) {
        s.queue_dir = q->text[0] == '/' ? q->text : base_dir + "/" + q->text;
    } else {
        s.queue_dir = base_dir + "/queue";
    }
    return s;
}

}  // namespace kasi
