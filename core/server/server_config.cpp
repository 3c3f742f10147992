#include "core/server/server_config.h"

#include <atomic>

#include <fmt/format.h>

#include "core/classify/classifier.h"
#include "core/server/extensions.h"
#include "core/smtp/seal.h"

namespace kasi {

namespace {

SessionSettings session_settings(const Settings& s) {
    SessionSettings o;
    o.me = s.me;
    o.greeting = s.greeting;
    o.banner_chars = s.banner_chars;
    o.helo_message = s.helo_message;
    o.close_message = s.close_message;
    o.show_version = s.show_version;
    o.enhanced_status_codes = s.enhanced_status_codes;
    o.max_bytes = s.max_bytes;
    o.max_line_length = s.max_line_length;
    o.max_data_line_length = s.max_data_line_length;
    o.max_recipients = s.max_recipients;
    o.max_received = s.max_received;
    o.max_header_lines = s.max_header_lines;
    o.max_mime_parts = s.max_mime_parts;
    o.inactivity_timeout_s = s.inactivity_timeout_s;
    o.proxy_timeout_s = s.proxy_timeout_s;
    o.smtputf8 = s.smtputf8;
    o.strict = s.strict_smtp;
    o.chunking = s.chunking;
    o.add_received = s.add_received;
    o.rdns_lookup = s.rdns_lookup;
    o.haproxy_enabled = s.haproxy_enabled;
    o.haproxy_hosts = s.haproxy_hosts;
    return o;
}

}  // namespace

namespace {

// The bounce classifier's rules (docs/bounces.md): the shipped ones and config/classify.rules,
// config/classify.d/*.rules. An error ("path:line: message") is a config error, so a reload
// keeps the running rules and --check-config names the line.
std::shared_ptr<const Classifier> load_classifier(const ConfigDir& dir, Diagnostics& d) {
    ClassifierSources src;
    std::string err;
    std::shared_ptr<const Classifier> c;
    if (ClassifierSources::for_config(dir.root(), src, err)) c = Classifier::load(src, err);
    if (c) return c;
    // "path:line: message" -> file, line, message
    std::string file = err, msg;
    int line = 0;
    if (size_t a = err.find(':'); a != std::string::npos) {
        file = err.substr(0, a);
        msg = err.substr(a + 1);
        size_t b = msg.find(':');
        if (b != std::string::npos && b > 0 && msg.find_first_not_of("0123456789") == b) {
            line = std::atoi(msg.substr(0, b).c_str());
            msg = msg.substr(b + 1);
        }
        while (!msg.empty() && msg.front() == ' ') msg.erase(0, 1);
    }
    d.error(file, line, msg.empty() ? err : msg);
    return nullptr;
}

}  // namespace

std::shared_ptr<const ServerConfig> load_server_config(const std::string& base_dir,
                                                       Diagnostics& d) {
    static std::atomic<uint64_t> generation{0};
    auto cfg = std::make_shared<ServerConfig>();
    cfg->base_dir = base_dir;
    ConfigDir dir(base_dir + "/config");
    cfg->settings = load_settings(dir, base_dir, d);
    auto table = std::make_shared<HookTable>();
    if (const auto& build = extensions().build_plugins) {
        build(dir, cfg->settings, d, *table);
    } else {  // a program without plugins/ (core/server/extensions.h)
        table->finalize();
        if (!dir.list("plugins", d).empty())
            d.error(dir.root() + "/plugins", 0, "this program has no plugins");
    }
    cfg->hooks = table;
    auto outbound = std::make_shared<OutboundConfig>(load_outbound_config(dir, base_dir, d));
    outbound->classifier = load_classifier(dir, d);
    cfg->outbound = std::move(outbound);
    cfg->reports = ReportMailboxes::load(dir, cfg->outbound->verp.get(), d);
    cfg->suppression = SuppressionPolicy::load(dir, cfg->settings.queue_dir, d);
    cfg->reputation = ReputationConfig::load(dir, cfg->settings.queue_dir, d);
    cfg->unsubscribe = UnsubscribeConfig::load(dir, d);
    cfg->http = HttpConfig::load(dir, d);
    cfg->session = std::make_shared<const SessionSettings>(session_settings(cfg->settings));
    bool has_tls = false;
    for (const auto& p : table->plugins()) has_tls |= p->name() == "tls";
    for (const auto& l : cfg->settings.listen)
        if (l.implicit_tls && !has_tls)
            d.error(dir.root() + "/smtp.ini", 0,
                    fmt::format("listener {} is the smtps port (implicit TLS) but the tls plugin "
                                "is not in config/plugins",
                                l.str()));
    cfg->generation = ++generation;
    if (!d.ok()) return nullptr;
    return cfg;
}

SessionConfig session_config(const std::shared_ptr<const ServerConfig>& cfg) {
    SessionConfig c;
    c.settings = cfg->session;
    c.hooks = cfg->hooks;
    c.reports = cfg->reports;
    c.seal = [cfg](uv_loop_t* loop, SealInput msg, std::function<void(SealInput)> done) {
        seal_relayed(loop, cfg, std::move(msg), std::move(done));
    };
    return c;
}

}  // namespace kasi
