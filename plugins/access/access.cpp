#include "plugins/access/access.h"

#include <regex>
#include <unordered_set>

#include <fmt/format.h>

#include "core/smtp/address.h"
#include "core/smtp/server/session.h"
#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

// One list file pair (exact entries + regexes) for one side (white or black).
struct Matcher {
    std::unordered_set<std::string> exact;  // lower case
    CidrList cidrs;                         // connect lists only
    std::optional<std::regex> re;

    bool matches(const std::string& value) const {
        if (value.empty()) return false;
        std::string v = to_lower(value);
        if (exact.count(v)) return true;
        return re && std::regex_match(v, *re);
    }
    bool matches_ip(const IpAddr& ip) const { return cidrs.contains(ip); }
};

struct Phase {
    bool enabled = false;
    Matcher white, black;
    std::string deny_msg;
};

void load_matcher(const ConfigDir& cfg, const std::string& base, const char* kind, Matcher& m,
                  bool allow_cidr, Diagnostics& d) {
    for (const auto& l : cfg.list(base + "." + kind, d)) {
        if (allow_cidr && l.text.find_first_of(":/") != std::string::npos) {
            if (auto c = Cidr::parse(l.text)) {
                m.cidrs.add(*c);
                continue;
            }
        }
        if (allow_cidr) {
            if (auto ip = IpAddr::parse(l.text)) {
                m.cidrs.add(Cidr{*ip, ip->v6 ? 128 : 32});
                continue;
            }
        }
        m.exact.insert(to_lower(l.text));
    }
    std::string pattern;
    std::string file = base + "." + kind + "_regex";
    for (const auto& l : cfg.list(file, d)) {
        try {
            std::regex test(l.text, std::regex::ECMAScript | std::regex::icase);
        } catch (const std::regex_error& e) {
            d.error(cfg.root() + "/" + file, l.line,
                    fmt::format("invalid regular expression '{}': {}", l.text, e.what()));
            continue;
        }
        pattern += (pattern.empty() ? "" : "|") + l.text;
    }
    if (!pattern.empty())
        m.re.emplace("^(?:" + pattern + ")$",
                     std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
}

class Access : public Plugin {
  public:
    std::string name() const override { return "access"; }

    Phase conn, mail, rcpt;
    bool rcpt_accept = false;

    std::optional<Result> on_connect(HookCall& c) const {
        Session& s = *c.session;
        std::string ip = s.remote_ip().unmapped().str();
        const std::string& host = s.remote_host();
        auto listed = [&](const Matcher& m) {
            return m.matches_ip(s.remote_ip()) || m.matches(ip) || m.matches(host);
        };
        if (listed(conn.white)) return Result::cont();
        if (listed(conn.black)) return Result::deny(conn.deny_msg);
        return Result::cont();
    }

    std::optional<Result> on_mail(HookCall& c) const {
        if (!c.address || c.address->null) return Result::cont();
        std::string a = c.address->str();
        if (mail.white.matches(a)) return Result::cont();
        if (mail.black.matches(a)) return Result::deny(mail.deny_msg);
        return Result::cont();
    }

    std::optional<Result> on_rcpt(HookCall& c) const {
        if (!c.address) return Result::cont();
        std::string a = c.address->str();
        if (rcpt.white.matches(a)) return rcpt_accept ? Result::ok() : Result::cont();
        if (rcpt.black.matches(a)) return Result::deny(rcpt.deny_msg);
        return Result::cont();
    }
};

}  // namespace

std::shared_ptr<Plugin> make_access_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                           HookTable& table, uint32_t timeout_ms) {
    auto p = std::make_shared<Access>();
    Ini ini = cfg.ini("access.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "check", "rcpt", "deny_msg"});
    r.check_known("check", {"any", "conn", "helo", "mail", "rcpt", "data"});
    r.check_known("rcpt", {"accept"});
    r.check_known("deny_msg", {"conn", "helo", "mail", "rcpt"});
    p->conn.enabled = r.get_bool("check", "conn", false);
    p->mail.enabled = r.get_bool("check", "mail", false);
    p->rcpt.enabled = r.get_bool("check", "rcpt", false);
    p->rcpt_accept = r.get_bool("rcpt", "accept", false);
    if (r.get_bool("check", "helo", false))
        d.warn(ini.path, 0, "[check] helo: HELO ACLs are not implemented; ignored");
    if (cfg.exists("access.domains"))
        d.warn(cfg.root() + "/access.domains", 0,
               "the 'any' mode (access.domains) is not implemented; this file is ignored");
    p->conn.deny_msg = r.get_str("deny_msg", "conn", "You are not allowed to connect");
    p->mail.deny_msg = r.get_str("deny_msg", "mail", "That sender cannot send mail here");
    p->rcpt.deny_msg = r.get_str("deny_msg", "rcpt", "That recipient is not allowed");
    struct {
        Phase* phase;
        const char* base;
        bool cidr;
    } phases[] = {{&p->conn, "connect.rdns_access", true},
                  {&p->mail, "mail_from.access", false},
                  {&p->rcpt, "rcpt_to.access", false}};
    for (auto& ph : phases) {
        if (!ph.phase->enabled) continue;
        load_matcher(cfg, ph.base, "whitelist", ph.phase->white, ph.cidr, d);
        load_matcher(cfg, ph.base, "blacklist", ph.phase->black, ph.cidr, d);
    }
    Access* self = p.get();
    if (p->conn.enabled)
        table.add(
            Hook::connect, "access", [self](HookCall& c) { return self->on_connect(c); }, 0,
            timeout_ms);
    if (p->mail.enabled)
        table.add(
            Hook::mail, "access", [self](HookCall& c) { return self->on_mail(c); }, 0, timeout_ms);
    if (p->rcpt.enabled)
        table.add(
            Hook::rcpt, "access", [self](HookCall& c) { return self->on_rcpt(c); }, 0, timeout_ms);
    return p;
}

}  // namespace kasi
