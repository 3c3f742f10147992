#include "plugins/tls/tls.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/smtp/command.h"
#include "core/smtp/server/session.h"
#include "core/tls/tls_context.h"
#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

class TlsPlugin : public Plugin {
  public:
    std::string name() const override { return "tls"; }

    std::shared_ptr<const TlsServerContext> ctx;
    CidrList no_tls_hosts;
    std::vector<int> no_starttls_ports;
    uint32_t handshake_timeout_ms = 30000;

    bool offer_starttls(Session& s) const {
        return !s.using_tls() && !s.implicit_tls() && !no_tls_hosts.contains(s.remote_ip()) &&
               std::find(no_starttls_ports.begin(), no_starttls_ports.end(), s.local_port()) ==
                   no_starttls_ports.end();
    }

    std::optional<Result> connect_init(HookCall& c) const {
        if (c.session->implicit_tls() && !c.session->using_tls())
            c.session->start_tls(ctx, handshake_timeout_ms);
        return Result::cont();
    }

    std::optional<Result> capabilities(HookCall& c) const {
        if (offer_starttls(*c.session)) c.session->capabilities().push_back("STARTTLS");
        return Result::cont();
    }

    std::optional<Result> unrecognized(HookCall& c) const {
        auto cmd = split_command(c.arg);
        if (cmd.verb != "STARTTLS") return Result::cont();
        Session& s = *c.session;
        if (s.using_tls()) {
            s.reply(503, "TLS already active", "5.5.1");
            return Result::ok();
        }
        if (!offer_starttls(s)) return Result::cont();  // not offered: unrecognized
        if (!s.esmtp()) {  // RFC 3207: offered in the EHLO reply; not before it, not after HELO
            s.reply(503, "Use EHLO before STARTTLS", "5.5.1");
            return Result::ok();
        }
        if (!cmd.arg.empty()) {
            s.reply(501, "Syntax error (no parameters allowed)", "5.5.4");
            return Result::ok();
        }
        s.reply(220, "Go ahead.");
        s.start_tls(ctx, handshake_timeout_ms);
        return Result::ok();
    }
};

int parse_min_version(const std::string& v, Diagnostics& d, const std::string& path) {
    std::string l;
    for (char ch : v) l += char(std::tolower(static_cast<unsigned char>(ch)));
    if (l.empty() || l == "tlsv1.2") return TLS1_2_VERSION;
    if (l == "tlsv1.3") return TLS1_3_VERSION;
    if (l == "tlsv1" || l == "tlsv1.1" || l == "sslv3")
        d.error(path, 0,
                fmt::format("minVersion {} is below Kasi's floor of TLSv1.2; use TLSv1.2 or "
                            "TLSv1.3",
                            v));
    else
        d.error(path, 0, fmt::format("minVersion '{}' is not TLSv1.2 or TLSv1.3", v));
    return TLS1_2_VERSION;
}

int ini_line(const Ini& ini, std::string_view sect, std::string_view key) {
    if (const auto* s = ini.section(sect))
        for (const auto& e : s->entries)
            if (e.key == key || e.key == std::string(key) + "[]") return e.line;
    return 0;
}

}  // namespace

std::shared_ptr<Plugin> make_tls_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                        HookTable& table, uint32_t timeout_ms) {
    auto p = std::make_shared<TlsPlugin>();
    Ini ini = cfg.ini("tls.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "no_tls_hosts", "outbound", "redis", "mutual_auth_hosts",
                      "mutual_auth_hosts_exclude"});
    r.check_known("main", {"key", "cert", "dhparam", "ciphers", "ciphersuites", "minVersion",
                           "honorCipherOrder", "requestCert", "rejectUnauthorized", "ca",
                           "no_starttls_ports", "handshake_timeout"});
    TlsServerOptions o;
    auto keys = r.get_list("main", "key");
    auto certs = r.get_list("main", "cert");
    bool explicit_files = !keys.empty() || !certs.empty();
    if (keys.empty()) keys.push_back("tls_key.pem");
    if (certs.empty()) certs.push_back("tls_cert.pem");
    std::string origin = fmt::format("{}:{}", ini.path, ini_line(ini, "main", "key"));
    if (keys.size() != certs.size()) {
        d.error(ini.path, ini_line(ini, "main", "cert"),
                fmt::format("{} key files but {} cert files; list them in pairs", keys.size(),
                            certs.size()));
    } else {
        for (size_t i = 0; i < keys.size(); ++i) {
            auto kp = cfg.path_of(keys[i]);
            auto cp = cfg.path_of(certs[i]);
            if (!kp || !cp) {
                d.error(ini.path, ini_line(ini, "main", "key"), "key/cert path escapes config/");
                continue;
            }
            bool present = cfg.exists(keys[i]) && cfg.exists(certs[i]);
            if (!present && !explicit_files) continue;  // maybe only SNI certificates
            o.identities.push_back({*kp, *cp, origin});
        }
    }
    if (auto dh = r.get_str("main", "dhparam", ""); !dh.empty())
        o.dhparam_path = cfg.path_of(dh).value_or("");
    o.ciphers = r.get_str("main", "ciphers", "");
    o.ciphersuites = r.get_str("main", "ciphersuites", "");
    o.min_version = parse_min_version(r.get_str("main", "minVersion", "TLSv1.2"), d, ini.path);
    o.honor_cipher_order = r.get_bool("main", "honorCipherOrder", true);
    o.request_cert = r.get_bool("main", "requestCert", false);
    o.reject_unauthorized = r.get_bool("main", "rejectUnauthorized", false);
    if (auto ca = r.get_str("main", "ca", ""); !ca.empty())
        o.ca_path = cfg.path_of(ca).value_or("");
    o.sni_dir = cfg.path_of("tls").value_or("");
    p->handshake_timeout_ms = uint32_t(r.get_int("main", "handshake_timeout", 30, 1, 3600)) * 1000;
    for (const auto& port : r.get_list("main", "no_starttls_ports")) {
        unsigned long long v;
        if (!parse_u64(port, v) || v == 0 || v > 65535)
            d.error(ini.path, ini_line(ini, "main", "no_starttls_ports"),
                    fmt::format("no_starttls_ports: '{}' is not a port", port));
        else
            p->no_starttls_ports.push_back(int(v));
    }
    p->no_tls_hosts = r.get_cidr_section("no_tls_hosts");
    p->ctx = TlsServerContext::build(o, d, ini.path);
    if (!p->ctx) return nullptr;
    TlsPlugin* self = p.get();
    table.add(
        Hook::connect_init, "tls", [self](HookCall& c) { return self->connect_init(c); }, 0,
        timeout_ms);
    table.add(
        Hook::capabilities, "tls", [self](HookCall& c) { return self->capabilities(c); }, 0,
        timeout_ms);
    table.add(
        Hook::unrecognized_command, "tls", [self](HookCall& c) { return self->unrecognized(c); }, 0,
        timeout_ms);
    return p;
}

}  // namespace kasi
