#include "core/queue/outbound_config.h"

#include <cmath>

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

namespace {

bool unit_seconds(char u, int64_t& mult) {
    switch (u) {
        case 's':
            mult = 1;
            return true;
        case 'm':
            mult = 60;
            return true;
        case 'h':
            mult = 3600;
            return true;
        case 'd':
            mult = 86400;
            return true;
        default:
            return false;
    }
}

}  // namespace

bool parse_fail_intervals(std::string_view text, std::vector<int>& out, std::string& err) {
    std::string compact;
    for (char c : text)
        if (c != ' ' && c != '\t') compact += char(std::tolower(static_cast<unsigned char>(c)));
    out.clear();
    if (compact == "none") return true;
    for (const auto& item : split_list(compact, ",")) {
        std::string_view it = item;
        unsigned long long count = 1;
        if (size_t star = it.find('*'); star != std::string_view::npos) {
            if (!parse_u64(it.substr(star + 1), count) || count == 0 || count > 1000) {
                err = fmt::format("bad repeat count in '{}'", item);
                return false;
            }
            it = it.substr(0, star);
        }
        int64_t mult = 0;
        unsigned long long n = 0;
        if (it.size() < 2 || !unit_seconds(it.back(), mult) ||
            !parse_u64(it.substr(0, it.size() - 1), n) || n > 10'000'000) {
            err = fmt::format("'{}' is not <number><s|m|h|d>", item);
            return false;
        }
        int64_t secs = int64_t(n) * mult;
        if (secs < 5 || secs > 366 * 86400) {
            err = fmt::format("'{}' is outside 5s..366d", item);
            return false;
        }
        for (unsigned long long k = 0; k < count; ++k) out.push_back(int(secs));
    }
    if (out.empty()) {
        err = "no intervals";
        return false;
    }
    return true;
}

std::vector<int> default_fail_intervals(int max_temp_failures) {
    std::vector<int> v;
    for (int i = 1; i < max_temp_failures; ++i) v.push_back(1 << std::min(i + 5, 30));
    return v;
}

bool parse_duration_ms(std::string_view text, int64_t& out) {
    auto t = trim(text);
    if (t.empty()) return false;
    int64_t mult = 1;
    if (!std::isdigit(static_cast<unsigned char>(t.back()))) {
        if (!unit_seconds(char(std::tolower(static_cast<unsigned char>(t.back()))), mult))
            return false;
        t.remove_suffix(1);
    }
    unsigned long long n = 0;
    if (!parse_u64(t, n) || n > 100ull * 365 * 86400) return false;
    out = int64_t(n) * mult * 1000;
    return true;
}

bool host_pattern_match(std::string_view pattern, std::string_view host) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        std::string_view suffix = pattern.substr(1);  // ".example.com"
        return host.size() > suffix.size() &&
               iequals(host.substr(host.size() - suffix.size()), suffix);
    }
    return iequals(pattern, host);
}

void apply_override(QueueLimits& l, const LimitOverride& o) {
    if (o.max_connections >= 0) l.max_connections = o.max_connections;
    if (o.max_messages_per_connection >= 0)
        l.max_messages_per_connection = o.max_messages_per_connection;
    if (o.max_recipients >= 0) l.max_recipients = o.max_recipients;
    if (o.idle_timeout_ms >= 0) l.idle_timeout_ms = o.idle_timeout_ms;
    if (o.max_message_rate >= 0) l.max_message_rate = o.max_message_rate;
    l.origin = o.origin;
}

bool parse_rate(std::string_view text, double& per_second) {
    std::string t(trim(text));
    size_t slash = t.find('/');
    std::string num(trim(std::string_view(t).substr(0, slash)));
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || !(v >= 0) || v > 1e9) return false;
    double per = 1;
    if (slash != std::string::npos) {
        std::string u = to_lower(trim(std::string_view(t).substr(slash + 1)));
        per = u == "s" || u == "sec"    ? 1
              : u == "m" || u == "min"  ? 60
              : u == "h" || u == "hour" ? 3600
              : u == "d" || u == "day"  ? 86400
                                        : 0;
        if (per == 0) return false;
    }
    per_second = v / per;
    return true;
}

QueueLimits OutboundConfig::limits_for(const std::string& domain,
                                       const std::vector<std::string>& mx_hosts,
                                       const std::string& source) const {
    QueueLimits l = defaults;
    auto apply = [&l](const LimitOverride& o) { apply_override(l, o); };
    for (auto kind :
         {LimitOverride::Kind::site, LimitOverride::Kind::source, LimitOverride::Kind::domain})
        for (const auto& o : overrides) {
            if (o.kind != kind) continue;
            bool hit = false;
            if (kind == LimitOverride::Kind::domain) hit = host_pattern_match(o.pattern, domain);
            if (kind == LimitOverride::Kind::source) hit = o.pattern == source;
            if (kind == LimitOverride::Kind::site)
                for (const auto& h : mx_hosts) hit |= host_pattern_match(o.pattern, h);
            if (hit) apply(o);
        }
    return l;
}

namespace {

void read_limits(IniReader& r, const Ini& ini, Diagnostics& d, std::string_view sect,
                 LimitOverride& o) {
    r.check_known(sect, {"max_connections", "max_messages_per_connection", "max_message_rate",
                         "max_recipients", "idle_timeout"});
    if (ini.find(sect, "max_connections"))
        o.max_connections = int(r.get_int(sect, "max_connections", 32, 1, 100000));
    if (ini.find(sect, "max_messages_per_connection"))
        o.max_messages_per_connection =
            int(r.get_int(sect, "max_messages_per_connection", 1000, 1, 10000000));
    if (ini.find(sect, "max_recipients"))
        o.max_recipients = int(r.get_int(sect, "max_recipients", 100, 1, 100000));
    if (ini.find(sect, "idle_timeout"))
        o.idle_timeout_ms = int(r.get_int(sect, "idle_timeout", 5, 0, 3600)) * 1000;
    if (auto* e = ini.find(sect, "max_message_rate"); e && e->value) {
        // "100/s", "6000/m", "50000/h", or a bare number per second; 0 = unlimited.
        double rate = 0;
        if (!parse_rate(trim(*e->value), rate))
            d.error(ini.path, e->line,
                    fmt::format("[{}] max_message_rate '{}' is not N, N/s, N/m, N/h or N/d", sect,
                                *e->value));
        else
            o.max_message_rate = rate;
    }
}

InetPrefer parse_prefer(const IniReader& r, const Ini& ini, Diagnostics& d) {
    std::string v = to_lower(r.get_str("main", "inet_prefer", "default"));
    if (v == "default" || v == "v4") return InetPrefer::v4;
    if (v == "v6") return InetPrefer::v6;
    if (v == "v4only" || v == "only_v4") return InetPrefer::only_v4;
    if (v == "v6only" || v == "only_v6") return InetPrefer::only_v6;
    auto* e = ini.find("main", "inet_prefer");
    d.error(ini.path, e ? e->line : 0,
            fmt::format("inet_prefer '{}' is not default, v4, v6, v4only or v6only", v));
    return InetPrefer::v4;
}

void load_tls_outbound(const ConfigDir& cfg, OutboundConfig& o, Diagnostics& d) {
    Ini ini = cfg.ini("tls.ini", d);
    IniReader r(ini, d);
    o.no_tls_hosts = r.get_list("outbound", "no_tls_hosts");
    o.force_tls_hosts = r.get_list("outbound", "force_tls_hosts");
    o.tls_failure_memory_s = int(r.get_int("outbound", "tls_failure_memory", 3600, 0, 30 * 86400));
    std::string ca = r.get_str("outbound", "ca_file", "");
    if (!ca.empty()) o.tls_ca_file = ca[0] == '/' ? ca : cfg.root() + "/" + ca;
}

}  // namespace

OutboundConfig load_outbound_config(const ConfigDir& cfg, const std::string& base_dir,
                                    Diagnostics& d) {
    OutboundConfig o;
    o.egress = load_egress_config(cfg, d);
    o.verp = VerpConfig::load(cfg, d);
    Ini ini = cfg.ini("outbound.ini", d);
    IniReader r(ini, d);
    r.check_known("main", {"disabled", "concurrency_max", "enable_tls", "maxTempFailures",
                           "temp_fail_intervals", "always_split", "received_header",
                           "connect_timeout", "local_mx_ok", "inet_prefer", "max_age",
                           "bounce_include", "events_file", "smtp_port", "delay_warning"});
    r.check_known("timeouts", {"greeting", "ehlo", "starttls", "mail", "rcpt", "data_init",
                               "data_block", "data_done"});
    o.disabled = r.get_bool("main", "disabled", false);
    o.concurrency_max = int(r.get_int("main", "concurrency_max", 10000, 1, 1000000));
    o.enable_tls = r.get_bool("main", "enable_tls", true);
    o.always_split = r.get_bool("main", "always_split", false);
    o.local_mx_ok = r.get_bool("main", "local_mx_ok", false);
    o.smtp_port = int(r.get_int("main", "smtp_port", 25, 1, 65535));
    o.inet_prefer = parse_prefer(r, ini, d);
    o.timeouts.connect = int(r.get_int("main", "connect_timeout", 30, 1, 3600)) * 1000;
    int max_fail = int(r.get_int("main", "maxTempFailures", 13, 1, 1000));
    o.temp_fail_intervals_s = default_fail_intervals(max_fail);
    if (auto* e = ini.find("main", "temp_fail_intervals"); e && e->value) {
        std::vector<int> v;
        std::string err;
        if (parse_fail_intervals(*e->value, v, err))
            o.temp_fail_intervals_s = std::move(v);
        else
            d.error(ini.path, e->line, fmt::format("temp_fail_intervals: {}", err));
    }
    if (auto* e = ini.find("main", "delay_warning"); e && e->value && *e->value != "0")
        if (!parse_duration_ms(*e->value, o.delay_warning_ms) || o.delay_warning_ms < 1000)
            d.error(ini.path, e->line,
                    fmt::format("delay_warning '{}' is not a duration (4h, 30m, 1d)", *e->value));
    if (auto* e = ini.find("main", "max_age"); e && e->value)
        if (!parse_duration_ms(*e->value, o.max_age_ms) || o.max_age_ms < 1000)
            d.error(ini.path, e->line,
                    fmt::format("max_age '{}' is not a duration of at least 1s (5d, 12h, ...)",
                                *e->value));
    std::string inc = r.get_str("main", "bounce_include", "headers");
    if (inc != "headers" && inc != "message") {
        auto* e = ini.find("main", "bounce_include");
        d.error(ini.path, e ? e->line : 0, "bounce_include must be 'headers' or 'message'");
    }
    o.bounce_include_message = inc == "message";
    std::string ev = r.get_str("main", "events_file", "log/events.jsonl");
    if (!ev.empty() && ev != "off") o.events_file = ev[0] == '/' ? ev : base_dir + "/" + ev;
    auto ms = [&](const char* key, int def) {
        return int(r.get_int("timeouts", key, def / 1000, 1, 3600)) * 1000;
    };
    o.timeouts.greeting = ms("greeting", o.timeouts.greeting);
    o.timeouts.ehlo = ms("ehlo", o.timeouts.ehlo);
    o.timeouts.starttls = ms("starttls", o.timeouts.starttls);
    o.timeouts.mail = ms("mail", o.timeouts.mail);
    o.timeouts.rcpt = ms("rcpt", o.timeouts.rcpt);
    o.timeouts.data_init = ms("data_init", o.timeouts.data_init);
    o.timeouts.data_block = ms("data_block", o.timeouts.data_block);
    o.timeouts.data_done = ms("data_done", o.timeouts.data_done);

    LimitOverride def{LimitOverride::Kind::site, "", "outbound.ini:[queues]"};
    read_limits(r, ini, d, "queues", def);
    if (def.max_connections >= 0) o.defaults.max_connections = def.max_connections;
    if (def.max_messages_per_connection >= 0)
        o.defaults.max_messages_per_connection = def.max_messages_per_connection;
    if (def.max_recipients >= 0) o.defaults.max_recipients = def.max_recipients;
    if (def.idle_timeout_ms >= 0) o.defaults.idle_timeout_ms = def.idle_timeout_ms;
    if (def.max_message_rate >= 0) o.defaults.max_message_rate = def.max_message_rate;
    for (const auto& s : ini.sections) {
        if (s.name == "main" || s.name == "queues" || s.name == "timeouts") continue;
        size_t colon = s.name.find(':');
        std::string kind = s.name.substr(0, colon == std::string::npos ? 0 : colon);
        LimitOverride ov{LimitOverride::Kind::domain, "", "outbound.ini:[" + s.name + "]"};
        if (kind == "domain")
            ov.kind = LimitOverride::Kind::domain;
        else if (kind == "site")
            ov.kind = LimitOverride::Kind::site;
        else if (kind == "source")
            ov.kind = LimitOverride::Kind::source;
        else {
            d.warn(ini.path, s.line,
                   fmt::format("unknown section [{}] (expected [queues], [timeouts], "
                               "[domain:NAME], [site:PATTERN] or [source:NAME]); ignored",
                               s.name));
            continue;
        }
        ov.pattern = to_lower(trim(s.name.substr(colon + 1)));
        read_limits(r, ini, d, s.name, ov);
        o.overrides.push_back(std::move(ov));
    }
    if (auto t = cfg.path_of("outbound.bounce_message"); t && cfg.exists("outbound.bounce_message"))
        o.bounce_template = *t;
    load_tls_outbound(cfg, o, d);
    o.dns = load_dns_config(cfg, d);
    return o;
}

}  // namespace kasi
