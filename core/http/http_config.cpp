#include "core/http/http_config.h"

#include <openssl/rand.h>

#include <fmt/format.h>

#include "core/tls/tls_context.h"
#include "core/util/hmac.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string hex(std::string_view raw) {
    std::string out;
    for (unsigned char c : raw) out += fmt::format("{:02x}", c);
    return out;
}

std::optional<std::string> unhex(std::string_view text) {
    if (text.size() % 2) return std::nullopt;
    std::string out;
    for (size_t i = 0; i < text.size(); i += 2) {
        unsigned v = 0;
        for (char c : text.substr(i, 2)) {
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= unsigned(c - 'A' + 10);
            else
                return std::nullopt;
        }
        out += char(v);
    }
    return out;
}

void load_listeners(const IniReader& r, const std::string& path, HttpConfig& c, Diagnostics& d) {
    for (auto key : {"listen", "listen_tls"}) {
        int line = 0;
        if (auto* e = r.ini().find("main", key)) line = e->line;
        for (const auto& item : r.get_list("main", key)) {
            ListenAddr a;
            if (!parse_listen_addr(item, a)) {
                d.error(
                    path, line,
                    fmt::format("[main] {}: '{}' is not ip:port (IPv6 in brackets)", key, item));
                continue;
            }
            a.implicit_tls = std::string_view(key) == "listen_tls";
            c.listen.push_back(a);
        }
    }
}

void load_tokens(const ConfigDir& cfg, const std::string& name, HttpConfig& c, Diagnostics& d) {
    for (const auto& l : cfg.list(name, d)) {
        auto w = split_list(l.text, " \t");
        std::string where = cfg.root() + "/" + name;
        if (w.size() != 3) {
            d.error(where, l.line,
                    "expected 'NAME SCOPES SHA256HEX' (kasictl http token makes one)");
            continue;
        }
        HttpToken t;
        t.name = w[0];
        t.scopes = parse_http_scopes(w[1]);
        auto raw = unhex(w[2]);
        if (!t.scopes)
            d.error(where, l.line,
                    fmt::format("unknown scope in '{}' (send, admin, metrics)", w[1]));
        if (!raw || raw->size() != 32)
            d.error(where, l.line,
                    "the third field must be the token's SHA-256 in hex (64 digits)");
        else
            t.sha256 = *raw;
        if (t.scopes && !t.sha256.empty()) c.tokens.push_back(std::move(t));
    }
}

}  // namespace

unsigned parse_http_scopes(std::string_view text) {
    unsigned s = 0;
    for (const auto& w : split_list(text, ",")) {
        if (w == "send")
            s |= scope_send;
        else if (w == "admin")
            s |= scope_admin;
        else if (w == "metrics")
            s |= scope_metrics;
        else if (w == "all")
            s |= scope_all;
        else
            return 0;
    }
    return s;
}

std::shared_ptr<const HttpConfig> HttpConfig::load(const ConfigDir& cfg, Diagnostics& d) {
    if (!cfg.exists("http.ini")) return nullptr;
    Ini ini = cfg.ini("http.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "auth", "tls"});
    r.check_known("main",
                  {"listen", "listen_tls", "max_header_bytes", "max_body_bytes", "max_batch_bytes",
                   "max_batch_messages", "batch_sessions", "max_recipients", "idle_timeout",
                   "request_timeout", "metrics_queues", "max_connections"});
    r.check_known("auth", {"trusted", "public", "tokens"});
    r.check_known("tls", {"key", "cert"});
    auto c = std::make_shared<HttpConfig>();
    load_listeners(r, ini.path, *c, d);
    c->max_header_bytes = size_t(r.get_int("main", "max_header_bytes", 16384, 1024, 1 << 20));
    c->max_body_bytes = size_t(r.get_int("main", "max_body_bytes", 16 << 20, 1024, 1LL << 31));
    c->max_batch_bytes = size_t(r.get_int("main", "max_batch_bytes", 64 << 20, 1024, 1LL << 32));
    c->max_batch_messages = size_t(r.get_int("main", "max_batch_messages", 1000, 1, 100000));
    c->batch_sessions = size_t(r.get_int("main", "batch_sessions", 16, 1, 1000));
    c->max_recipients = size_t(r.get_int("main", "max_recipients", 1000, 1, 100000));
    c->idle_timeout_s = int(r.get_int("main", "idle_timeout", 60, 1, 86400));
    c->request_timeout_s = int(r.get_int("main", "request_timeout", 60, 1, 86400));
    c->metrics_queues = size_t(r.get_int("main", "metrics_queues", 20, 0, 1000));
    c->max_connections = r.get_int("main", "max_connections", 1000, 1, 1000000);
    int tline = 0;
    if (auto* e = ini.find("auth", "trusted")) tline = e->line;
    for (const auto& item : r.get_list("auth", "trusted")) {
        if (auto cidr = Cidr::parse(item))
            c->trusted.add(*cidr);
        else
            d.error(ini.path, tline,
                    fmt::format("[auth] trusted: '{}' is not an address or CIDR", item));
    }
    if (ini.find("auth", "public")) c->public_paths = r.get_list("auth", "public");
    load_tokens(cfg, r.get_str("auth", "tokens", "http_tokens"), *c, d);
    bool any_tls = false;
    for (const auto& a : c->listen) any_tls |= a.implicit_tls;
    std::string key = r.get_str("tls", "key", ""), cert = r.get_str("tls", "cert", "");
    if (any_tls && (key.empty() || cert.empty()))
        d.error(ini.path, 0, "[main] listen_tls needs [tls] key and cert");
    if (any_tls && !key.empty() && !cert.empty()) {
        TlsServerOptions o;
        int line = ini.find("tls", "key") ? ini.find("tls", "key")->line : 0;
        o.identities.push_back({cfg.path_of(key).value_or(key), cfg.path_of(cert).value_or(cert),
                                fmt::format("{}:{}", ini.path, line)});
        c->tls = TlsServerContext::build(o, d, ini.path);
    }
    return c;
}

unsigned HttpConfig::scopes_for(const IpAddr& ip, std::string_view bearer, std::string* who) const {
    if (!bearer.empty()) {
        std::string h = sha256(bearer);
        for (const auto& t : tokens)
            if (equal_ct(h, t.sha256)) {
                if (who) *who = t.name;
                return t.scopes;
            }
        return 0;  // a wrong token is refused even from a trusted network
    }
    if (trusted.contains(ip.unmapped())) {
        if (who) *who = "trusted:" + ip.str();
        return scope_all;
    }
    return 0;
}

std::string make_http_token_line(const std::string& name, unsigned scopes, std::string& token) {
    unsigned char raw[32];
    RAND_bytes(raw, sizeof raw);
    token = base64url(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
    std::string sc;
    for (auto [bit, n] :
         {std::pair{scope_send, "send"}, {scope_admin, "admin"}, {scope_metrics, "metrics"}})
        if (scopes & bit) sc += (sc.empty() ? "" : ",") + std::string(n);
    return fmt::format("{} {} {}", name, sc, hex(sha256(token)));
}

}  // namespace kasi
