#include "plugins/dkim/dkim_config.h"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/queue/outbound_config.h"
#include "core/smtp/headers.h"
#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi::dkim {

namespace {

namespace fs = std::filesystem;

// haraka-plugin-dkim's default list (its config/dkim.ini, [sign] headers).
const char* const kDefaultHeaders =
    "From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc, MIME-Version, Content-Type, "
    "Content-Transfer-Encoding, List-Unsubscribe, List-Unsubscribe-Post";

bool dns_name_ok(std::string_view s) {
    if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
            return false;
    return s.find("..") == std::string_view::npos;
}

std::vector<std::string> lower_names(std::string_view list) {
    std::vector<std::string> out;
    for (auto& n : split_list(list, ",;: \t")) {
        std::string l = to_lower(n);
        if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
    }
    return out;
}

// One policy section ([sign] or [domain:D]) over `base`.
SignPolicy read_policy(const Ini& ini, std::string_view sect, const SignPolicy& base,
                       Diagnostics& d) {
    SignPolicy p = base;
    IniReader r(ini, d);
    if (auto* e = ini.find(sect, "canonicalization"); e && e->value) {
        if (!parse_canon(trim(*e->value), p.header, p.body))
            d.error(ini.path, e->line,
                    fmt::format("canonicalization '{}': use simple or relaxed, as "
                                "header/body (relaxed/simple)",
                                *e->value));
    }
    if (auto* e = ini.find(sect, "headers"); e && e->value) {
        p.headers = lower_names(*e->value);
        if (std::find(p.headers.begin(), p.headers.end(), "from") == p.headers.end())
            p.headers.insert(p.headers.begin(), "from");  // as Haraka: From is always signed
    }
    if (auto* e = ini.find(sect, "oversign"); e && e->value) p.oversign = lower_names(*e->value);
    p.timestamp = r.get_bool(sect, "timestamp", base.timestamp);
    if (auto* e = ini.find(sect, "expire"); e && e->value) {
        int64_t ms = 0;
        if (trim(*e->value) == "0" || trim(*e->value).empty())
            p.expire_s = 0;
        else if (!parse_duration_ms(trim(*e->value), ms) || ms < 60000)
            d.error(
                ini.path, e->line,
                fmt::format("expire '{}': a duration of at least 1m (7d, 12h), or 0", *e->value));
        else
            p.expire_s = ms / 1000;
    }
    if (auto* e = ini.find(sect, "selectors"); e && e->value)
        p.selectors = split_list(*e->value, ", ");
    if (auto* e = ini.find(sect, "also"); e && e->value) {
        p.also.clear();
        for (auto& a : split_list(*e->value, ", ")) p.also.push_back(to_lower(a));
    }
    return p;
}

// Why a directory cannot be listed, and, for a permission, what to do about it.
std::string unreadable(const std::error_code& ec) {
    if (ec != std::errc::permission_denied) return ec.message();
    const passwd* pw = ::getpwuid(::geteuid());
    return fmt::format(
        "{} (kasi runs as user {} here: the directories of the keys must be "
        "readable and searchable by that user, e.g. chmod 0755)",
        ec.message(), pw ? pw->pw_name : std::to_string(::geteuid()));
}

void load_key(const std::string& path, const std::string& selector, const std::string& domain,
              std::vector<DomainKey>& out, Diagnostics& d) {
    if (!dns_name_ok(selector)) {
        d.error(
            path, 0,
            fmt::format("DKIM selector '{}' for {} is not a valid DNS label", selector, domain));
        return;
    }
    std::string err, warn;
    auto key = PrivateKey::load(path, err, warn);
    if (!key) {
        if (::access(path.c_str(), R_OK) != 0 && errno == EACCES) {
            const passwd* pw = ::getpwuid(::geteuid());
            std::string who = pw ? pw->pw_name : std::to_string(::geteuid());
            err += fmt::format(
                " (kasi runs as user {} here: give the key to that user only, as root: "
                "chown {}: {} && chmod 0600 {}; kasictl dkim keygen does this itself)",
                who, who, path, path);
        }
        d.error(path, 0, fmt::format("DKIM key for {} (selector {}): {}", domain, selector, err));
        return;
    }
    if (!warn.empty()) d.warn(path, 0, warn);
    out.push_back({selector, path, std::move(key)});
}

// dkim/<domain>/: Haraka's private + selector, and <selector>.private files.
std::vector<DomainKey> load_domain_dir(const fs::path& dir, const std::string& domain,
                                       Diagnostics& d) {
    std::vector<DomainKey> keys;
    std::error_code ec;
    bool has_private = fs::exists(dir / "private", ec);
    if (has_private) {
        std::string sel;
        if (!read_whole_file((dir / "selector").string(), sel) || trim(sel).empty())
            d.error((dir / "private").string(), 0,
                    fmt::format("DKIM key for {} has no selector: write it to {}", domain,
                                (dir / "selector").string()));
        else
            load_key((dir / "private").string(), std::string(trim(sel)), domain, keys, d);
    }
    std::vector<fs::path> extra;
    fs::directory_iterator list(dir, ec);
    if (ec) d.error(dir.string(), 0, "cannot list the DKIM keys: " + unreadable(ec));
    for (const auto& ent : list)
        if (ent.path().extension() == ".private" && ent.path().stem() != "")
            extra.push_back(ent.path());
    std::sort(extra.begin(), extra.end());
    for (const auto& p : extra) load_key(p.string(), p.stem().string(), domain, keys, d);
    for (size_t i = 0; i < keys.size(); ++i)
        for (size_t j = i + 1; j < keys.size(); ++j)
            if (keys[i].selector == keys[j].selector)
                d.error(keys[j].path, 0,
                        fmt::format("selector {} of {} is also used by {}", keys[j].selector,
                                    domain, keys[i].path));
    if (keys.empty() && !has_private)
        d.warn(dir.string(), 0,
               fmt::format("no DKIM key for {} here (private + selector, or SELECTOR.private)",
                           domain));
    return keys;
}

}  // namespace

std::shared_ptr<const DkimConfig> DkimConfig::load(const ConfigDir& cfg, Diagnostics& d) {
    Ini ini = cfg.ini("dkim.ini", d);
    IniReader r(ini, d);
    for (const auto& sec : ini.sections)
        if (sec.name != "main" && sec.name != "sign" && sec.name != "canon" &&
            sec.name != "verify" && sec.name.rfind("domain:", 0) != 0)
            d.warn(ini.path, sec.line,
                   fmt::format("unknown section [{}] ([sign], [canon], [domain:NAME])", sec.name));
    r.check_known("sign", {"enabled", "selector", "domain", "headers", "canonicalization",
                           "oversign", "timestamp", "expire", "also", "selectors"});
    r.check_known("canon", {"header", "body"});
    if (!r.get_bool("sign", "enabled", false)) {
        d.warn(ini.path, 0, "dkim: [sign] enabled is not true: messages are not signed");
        return nullptr;
    }
    auto c = std::make_shared<DkimConfig>();
    SignPolicy base;
    base.headers = lower_names(kDefaultHeaders);
    base.oversign = {"from"};
    for (const char* k : {"header", "body"})
        if (auto* e = ini.find("canon", k); e && e->value) {
            Canon& dst = k[0] == 'h' ? base.header : base.body;
            if (trim(*e->value) == "simple")
                dst = Canon::simple;
            else if (trim(*e->value) == "relaxed")
                dst = Canon::relaxed;
            else
                d.error(ini.path, e->line, fmt::format("[canon] {}: simple or relaxed", k));
        }
    c->defaults_ = read_policy(ini, "sign", base, d);
    // Keys: every directory under config/dkim is a domain.
    std::error_code ec;
    fs::path dir = fs::path(cfg.root()) / "dkim";
    if (fs::is_directory(dir, ec)) {
        fs::directory_iterator list(dir, ec);
        if (ec) d.error(dir.string(), 0, "cannot list the DKIM key directories: " + unreadable(ec));
        for (const auto& ent : list) {
            if (!ent.is_directory()) continue;
            std::string domain = to_lower(ent.path().filename().string());
            if (!dns_name_ok(domain)) {
                d.warn(ent.path().string(), 0, "not a domain name: ignored");
                continue;
            }
            auto keys = load_domain_dir(ent.path(), domain, d);
            if (!keys.empty()) c->keys_[domain] = std::move(keys);
        }
    }
    std::string fb_sel = r.get_str("sign", "selector", "");
    c->fallback_domain_ = to_lower(r.get_str("sign", "domain", ""));
    if (cfg.exists("dkim.private.key")) {
        if (fb_sel.empty() || c->fallback_domain_.empty())
            d.error(
                ini.path, 0,
                "dkim.private.key needs [sign] selector and domain (the d= and s= it signs as)");
        else
            load_key(*cfg.path_of("dkim.private.key"), fb_sel, c->fallback_domain_, c->fallback_,
                     d);
    }
    for (const auto& sec : ini.sections) {
        if (sec.name.rfind("domain:", 0) != 0) continue;
        std::string domain = to_lower(sec.name.substr(7));
        r.check_known(sec.name, {"canonicalization", "headers", "oversign", "timestamp", "expire",
                                 "selectors", "also"});
        c->per_domain_[domain] = read_policy(ini, sec.name, c->defaults_, d);
    }
    // Every selector and `also` domain named must exist.
    auto check = [&](const std::string& domain, const SignPolicy& p, int line) {
        auto it = c->keys_.find(domain);
        const auto* keys = it != c->keys_.end()            ? &it->second
                           : domain == c->fallback_domain_ ? &c->fallback_
                                                           : nullptr;
        for (const auto& s : p.selectors) {
            bool found = false;
            for (const auto& k : keys ? *keys : std::vector<DomainKey>{}) found |= k.selector == s;
            if (!found)
                d.error(ini.path, line,
                        fmt::format("selector {} of {}: no such key in {}/dkim/{}/", s, domain,
                                    cfg.root(), domain));
        }
        for (const auto& a : p.also)
            if (!c->keys_.count(a) && a != c->fallback_domain_)
                d.error(ini.path, line,
                        fmt::format("also = {}: no DKIM key for {} ({}/dkim/{}/)", a, a, cfg.root(),
                                    a));
    };
    for (const auto& sec : ini.sections)
        if (sec.name.rfind("domain:", 0) == 0) {
            std::string domain = to_lower(sec.name.substr(7));
            check(domain, c->per_domain_[domain], sec.line);
        }
    for (const auto& a : c->defaults_.also)
        if (!c->keys_.count(a) && a != c->fallback_domain_)
            d.error(ini.path, 0, fmt::format("[sign] also = {}: no DKIM key for {}", a, a));
    if (c->keys_.empty() && c->fallback_.empty())
        d.warn(ini.path, 0,
               fmt::format("dkim: no keys ({}/dkim/<domain>/ or dkim.private.key): nothing is "
                           "signed",
                           cfg.root()));
    return c;
}

const std::vector<DomainKey>* DkimConfig::keys_for(std::string_view domain,
                                                   std::string& found) const {
    std::string d = to_lower(domain);
    std::string_view rest = d;
    while (true) {
        if (auto it = keys_.find(rest); it != keys_.end()) {
            found = std::string(rest);
            return &it->second;
        }
        size_t dot = rest.find('.');
        // Walk up while at least two labels remain (mail.example.com -> example.com).
        if (dot == std::string_view::npos || rest.find('.', dot + 1) == std::string_view::npos)
            return nullptr;
        rest.remove_prefix(dot + 1);
    }
}

const SignPolicy& DkimConfig::policy_for(const std::string& domain) const {
    auto it = per_domain_.find(domain);
    return it == per_domain_.end() ? defaults_ : it->second;
}

void DkimConfig::add_specs(const std::string& domain, const std::vector<DomainKey>& keys,
                           int64_t now, std::vector<SignSpec>& out) const {
    const SignPolicy& p = policy_for(domain);
    for (const auto& k : keys) {
        if (!p.selectors.empty() &&
            std::find(p.selectors.begin(), p.selectors.end(), k.selector) == p.selectors.end())
            continue;
        SignSpec s;
        s.domain = domain;
        s.selector = k.selector;
        s.key = k.key;
        s.header = p.header;
        s.body = p.body;
        s.headers = p.headers;
        s.oversign = p.oversign;
        s.timestamp = p.timestamp ? now : 0;
        s.expire = p.expire_s > 0 ? now + p.expire_s : 0;
        out.push_back(std::move(s));
    }
}

std::vector<SignSpec> DkimConfig::plan(std::string_view domain, int64_t now,
                                       std::string& why) const {
    std::vector<SignSpec> out;
    std::string found;
    if (const auto* keys = keys_for(domain, found)) {
        add_specs(found, *keys, now, out);
    } else if (!fallback_.empty()) {
        found = fallback_domain_;
        add_specs(found, fallback_, now, out);
    } else {
        why = fmt::format("no DKIM key for {}", domain.empty() ? "(no domain)" : domain);
        return out;
    }
    for (const auto& a : policy_for(found).also) {
        if (a == found) continue;
        if (auto it = keys_.find(a); it != keys_.end())
            add_specs(a, it->second, now, out);
        else if (a == fallback_domain_)
            add_specs(a, fallback_, now, out);
    }
    return out;
}

}  // namespace kasi::dkim
