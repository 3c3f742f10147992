#include "core/smtp/unsubscribe.h"

#include <fmt/format.h>

#include "core/smtp/headers.h"
#include "core/util/hmac.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

std::string payload_of(const UnsubscribeToken& t) {
    return fmt::format("u1\n{}\n{}\n{}\n{}", to_lower(t.recipient), t.list, t.tenant, t.issued_s);
}

bool target_ok(std::string_view v, std::string& err) {
    for (char c : v)
        if (c == '\r' || c == '\n' || c == '\0' || c == '<' || c == '>' || c == ' ') {
            err = fmt::format("unsubscribe target '{}' has CR, LF, NUL, space or <>: refused",
                              std::string(v.substr(0, 200)));
            return false;
        }
    return true;
}

std::string fill(std::string tmpl, const std::string& token) {
    for (size_t p; (p = tmpl.find("{token}")) != std::string::npos;) tmpl.replace(p, 7, token);
    return tmpl;
}

}  // namespace

std::string make_unsubscribe_token(std::string_view secret, const UnsubscribeToken& t) {
    std::string p = payload_of(t);
    return base64url(p) + "." + base64url(hmac_sha256(secret, p).substr(0, 16));
}

std::optional<UnsubscribeToken> verify_unsubscribe_token(std::string_view secret,
                                                         std::string_view token) {
    size_t dot = token.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto p = base64url_decode(token.substr(0, dot));
    auto mac = base64url_decode(token.substr(dot + 1));
    if (!p || !mac || !equal_ct(*mac, hmac_sha256(secret, *p).substr(0, 16))) return std::nullopt;
    std::vector<std::string> f;
    size_t pos = 0;
    while (true) {
        size_t nl = p->find('\n', pos);
        f.push_back(p->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    if (f.size() != 5 || f[0] != "u1") return std::nullopt;
    UnsubscribeToken t{f[1], f[2], f[3], 0};
    unsigned long long issued = 0;
    if (!parse_u64(f[4], issued)) return std::nullopt;
    t.issued_s = int64_t(issued);
    return t;
}

std::shared_ptr<const UnsubscribeConfig> UnsubscribeConfig::load(const ConfigDir& cfg,
                                                                 Diagnostics& d) {
    if (!cfg.exists("unsubscribe.ini")) return nullptr;
    Ini ini = cfg.ini("unsubscribe.ini", d);
    IniReader r(ini, d);
    r.check_known("main", {"secret", "url", "mailto", "one_click"});
    auto c = std::make_shared<UnsubscribeConfig>();
    c->one_click_ = r.get_bool("main", "one_click", true);
    auto targets = [&](std::string_view sect, UnsubscribeTargets& t) {
        t.url = r.get_str(sect, "url", t.url);
        t.mailto = r.get_str(sect, "mailto", t.mailto);
        std::string err;
        for (const auto& v : {t.url, t.mailto})
            if (!v.empty() && !target_ok(v, err)) d.error(ini.path, 0, err);
        if (!t.url.empty() && !t.url.starts_with("https://") && !t.url.starts_with("http://"))
            d.error(ini.path, 0, fmt::format("[{}] url must be an http(s) URL", sect));
        if (t.mailto.starts_with("mailto:")) t.mailto = t.mailto.substr(7);
    };
    targets("main", c->defaults_);
    for (const auto& sec : ini.sections) {
        if (sec.name == "main") continue;
        if (sec.name.rfind("tenant:", 0) != 0) {
            d.warn(ini.path, sec.line,
                   fmt::format("unknown section [{}] ([tenant:NAME])", sec.name));
            continue;
        }
        r.check_known(sec.name, {"url", "mailto"});
        UnsubscribeTargets t = c->defaults_;
        targets(sec.name, t);
        c->by_tenant_[sec.name.substr(7)] = t;
    }
    c->secret_ = r.get_secret("main", "secret", cfg.root());
    return c;
}

UnsubscribeTargets UnsubscribeConfig::targets_for(std::string_view tenant) const {
    if (auto it = by_tenant_.find(tenant); it != by_tenant_.end()) return it->second;
    return defaults_;
}

bool add_list_unsubscribe(std::string& m, const std::map<std::string, std::string>& notes,
                          const std::vector<std::string>& rcpts, const UnsubscribeConfig* cfg,
                          int64_t now_s, std::string& err) {
    auto note = [&](const char* k) {
        auto it = notes.find(k);
        return it == notes.end() ? std::string() : it->second;
    };
    std::string skip = note("unsubscribe.skip");
    if (!skip.empty() && skip != "0" && skip != "false") return true;
    UnsubscribeTargets t = cfg ? cfg->targets_for(note("tenant")) : UnsubscribeTargets{};
    if (auto u = note("unsubscribe.url"); !u.empty()) t.url = u;
    if (auto u = note("unsubscribe.mailto"); !u.empty())
        t.mailto = u.starts_with("mailto:") ? u.substr(7) : u;
    if (t.url.empty() && t.mailto.empty()) return true;
    if (!header_values(m, "List-Unsubscribe").empty()) return true;  // the sender's own
    for (const auto& v : {t.url, t.mailto})
        if (!target_ok(v, err)) return false;
    if (!t.url.empty() && !t.url.starts_with("https://") && !t.url.starts_with("http://")) {
        err = fmt::format("unsubscribe.url '{}' is not an http(s) URL: refused", t.url);
        return false;
    }
    std::string token;
    bool needs_token = (t.url + t.mailto).find("{token}") != std::string::npos;
    if (needs_token) {
        if (!cfg || cfg->secret().empty()) {
            err = "unsubscribe: a {token} target needs unsubscribe.ini [main] secret";
            return false;
        }
        std::string list = note("unsubscribe.list");
        if (list.empty()) list = note("campaign");
        token = make_unsubscribe_token(cfg->secret(), {rcpts.size() == 1 ? rcpts[0] : std::string(),
                                                       list, note("tenant"), now_s});
    }
    std::vector<std::string> parts;
    if (!t.url.empty()) parts.push_back("<" + fill(t.url, token) + ">");
    if (!t.mailto.empty()) parts.push_back("<mailto:" + fill(t.mailto, token) + ">");
    std::string value = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) value += ",\r\n " + parts[i];
    // Added at the end of the header block: the order of the others is kept. One-click
    // needs an https URL (RFC 8058 §3.1).
    header_add(m, "List-Unsubscribe", value, true);
    if (t.url.starts_with("https://") && (!cfg || cfg->one_click()))
        header_add(m, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click", true);
    return true;
}

}  // namespace kasi
