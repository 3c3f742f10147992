#include "core/queue/verp.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/util/hmac.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// uuid(.N) <-> base32(16 bytes)(.N)
std::string compact_id(std::string_view id) {
    size_t dot = id.find('.');
    std::string_view uuid = id.substr(0, dot),
                     tail = dot == std::string_view::npos ? std::string_view{} : id.substr(dot);
    std::string bytes;
    int nib = -1;
    for (char c : uuid) {
        if (c == '-') continue;
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                            : -1;
        if (v < 0) return {};
        if (nib < 0) {
            nib = v;
        } else {
            bytes += char(nib * 16 + v);
            nib = -1;
        }
    }
    if (bytes.size() != 16 || nib >= 0 || uuid.size() != 36) return {};
    for (size_t i = 1; i < tail.size(); ++i)
        if (!std::isdigit(static_cast<unsigned char>(tail[i]))) return {};
    if (tail == ".") return {};
    return base32_lower(bytes) + std::string(tail);
}

std::string expand_id(std::string_view c) {
    size_t dot = c.find('.');
    auto bytes = base32_lower_decode(c.substr(0, dot));
    if (!bytes || bytes->size() != 16) return {};
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[(unsigned char)(*bytes)[i] >> 4];
        out += hex[(unsigned char)(*bytes)[i] & 15];
    }
    if (dot != std::string_view::npos) out += c.substr(dot);
    return out;
}

std::string mac_of(std::string_view secret, std::string_view id, std::string_view what) {
    return base32_lower(hmac_sha256(secret, fmt::format("verp1|{}|{}", id, what)).substr(0, 5));
}

bool plain_local(std::string_view s) {  // fits a dot-atom without quoting, and has no '='
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) &&
            std::string_view("!#$%&'*+/?^_`{|}~.-").find(c) == std::string_view::npos)
            return false;
    return s.find("..") == std::string_view::npos;
}

}  // namespace

std::string verp_encode(std::string_view secret, std::string_view prefix, std::string_view rp,
                        std::string_view message_id, std::string_view recipient, int index) {
    std::string id = compact_id(message_id);
    if (id.empty()) return {};
    std::string rcpt = to_lower(recipient);
    size_t at = rcpt.rfind('@');
    if (at != std::string::npos && plain_local(rcpt.substr(0, at))) {
        std::string local = fmt::format("{}-{}-{}-{}={}", prefix, mac_of(secret, id, rcpt), id,
                                        rcpt.substr(0, at), rcpt.substr(at + 1));
        if (local.size() <= 64) return local + "@" + std::string(rp);
    }
    std::string n = std::to_string(index);
    return fmt::format("{}-{}-{}-{}@{}", prefix, mac_of(secret, id, "#" + n), id, n, rp);
}

std::optional<VerpAddress> verp_decode(std::string_view secret, std::string_view prefix,
                                       std::string_view address, std::string& why) {
    std::string a = to_lower(address);
    size_t at = a.rfind('@');
    std::string_view local = std::string_view(a).substr(0, at == std::string::npos ? a.size() : at);
    std::string_view parts[3];
    for (auto& p : parts) {
        size_t dash = local.find('-');
        if (dash == std::string_view::npos) {
            why = "not a VERP address";
            return std::nullopt;
        }
        p = local.substr(0, dash);
        local.remove_prefix(dash + 1);
    }
    if (parts[0] != to_lower(prefix)) {
        why = "not a VERP address (prefix)";
        return std::nullopt;
    }
    VerpAddress out;
    out.message_id = expand_id(parts[2]);
    if (out.message_id.empty()) {
        why = "bad message id";
        return std::nullopt;
    }
    std::string what;
    if (size_t eq = local.rfind('='); eq != std::string_view::npos) {
        out.recipient = fmt::format("{}@{}", local.substr(0, eq), local.substr(eq + 1));
        what = out.recipient;
    } else {
        if (local.empty() || local.size() > 6 ||
            local.find_first_not_of("0123456789") != std::string_view::npos) {
            why = "bad recipient";
            return std::nullopt;
        }
        out.rcpt_index = std::stoi(std::string(local));
        what = "#" + std::string(local);
    }
    if (!equal_ct(mac_of(secret, parts[2], what), parts[1])) {
        why = "HMAC mismatch: forged or altered";
        return std::nullopt;
    }
    return out;
}

std::shared_ptr<const VerpConfig> VerpConfig::load(const ConfigDir& cfg, Diagnostics& d) {
    Ini ini = cfg.ini("verp.ini", d);
    IniReader r(ini, d);
    r.check_known("main", {"secret", "prefix", "default"});
    auto c = std::make_shared<VerpConfig>();
    c->default_ = to_lower(r.get_str("main", "default", ""));
    for (const auto& sec : ini.sections) {
        bool dom = sec.name.rfind("domain:", 0) == 0, ten = sec.name.rfind("tenant:", 0) == 0;
        if (sec.name == "main") continue;
        if (!dom && !ten) {
            d.warn(ini.path, sec.line,
                   fmt::format("unknown section [{}] ([domain:NAME], [tenant:NAME])", sec.name));
            continue;
        }
        r.check_known(sec.name, {"return_path"});
        auto* e = sec.find("return_path");
        if (!e || !e->value || trim(*e->value).empty()) {
            d.error(ini.path, sec.line, fmt::format("[{}] needs return_path = DOMAIN", sec.name));
            continue;
        }
        std::string key = dom ? to_lower(sec.name.substr(7)) : sec.name.substr(7);
        (dom ? c->by_domain_ : c->by_tenant_)[key] = to_lower(trim(*e->value));
    }
    if (c->default_.empty() && c->by_domain_.empty() && c->by_tenant_.empty()) return nullptr;
    c->prefix_ = to_lower(r.get_str("main", "prefix", "b"));
    if (c->prefix_.empty() || c->prefix_.size() > 8 ||
        c->prefix_.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
        d.error(ini.path, 0, "[main] prefix: 1 to 8 letters or digits");
    c->secret_ = r.get_secret("main", "secret", cfg.root(),
                              ", shared by every node that receives the bounces");
    return c;
}

std::string VerpConfig::return_path_for(std::string_view domain, std::string_view tenant) const {
    if (!tenant.empty())
        if (auto it = by_tenant_.find(tenant); it != by_tenant_.end()) return it->second;
    std::string d = to_lower(domain);
    std::string_view rest = d;
    while (!rest.empty()) {
        if (auto it = by_domain_.find(rest); it != by_domain_.end()) return it->second;
        size_t dot = rest.find('.');
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return default_;
}

std::vector<std::string> VerpConfig::return_path_domains() const {
    std::vector<std::string> out;
    auto add = [&](const std::string& d) {
        if (!d.empty() && std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    };
    add(default_);
    for (const auto& [k, v] : by_domain_) add(v);
    for (const auto& [k, v] : by_tenant_) add(v);
    return out;
}

std::string VerpConfig::tenant_of(std::string_view rp_domain) const {
    std::string found;
    for (const auto& [tenant, rp] : by_tenant_)
        if (rp == rp_domain) {
            if (!found.empty()) return "";
            found = tenant;
        }
    return found;
}

}  // namespace kasi
