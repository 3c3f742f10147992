#include "plugins/relay/relay.h"

#include <map>

#include <fmt/format.h>

#include "core/smtp/address.h"
#include "core/smtp/server/session.h"
#include "core/util/ip.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct DestDomain {
    std::string action;  // accept, continue, deny
    std::string nexthop;
    std::optional<NextHop> hop;
};

class RelayPlugin : public Plugin {
  public:
    std::string name() const override { return "relay"; }

    bool acl = true, force_routing = true, dest_domains = false, all = false;
    CidrList allow;
    std::map<std::string, DestDomain> domains;

    std::optional<Result> connect_init(HookCall& c) const {
        if (all || (acl && allow.contains(c.session->remote_ip()))) c.session->set_relaying(true);
        return Result::cont();
    }

    std::optional<Result> connect(HookCall& c) const {
        return c.session->relaying() ? Result::ok() : Result::cont();
    }

    std::optional<Result> rcpt(HookCall& c) const {
        if (!dest_domains || c.session->relaying() || !c.address) return Result::cont();
        auto it = domains.find(c.address->domain);
        if (it == domains.end()) return Result::deny("You are not allowed to relay");
        // Relaying is allowed for this recipient only, never for the whole connection
        // (a later recipient in another domain must be judged on its own).
        if (it->second.action == "accept") return Result::ok();
        if (it->second.action == "continue") {
            c.session->allow_relay_for_this_rcpt();
            return Result::cont();
        }
        return Result::deny("You are not allowed to relay");
    }

    // force_routing: mail for a listed domain (or, failing that, the "any" entry) goes to
    // its nexthop instead of the MX.
    std::optional<Result> get_mx(HookCall& c) const {
        if (!force_routing || !c.outbound) return Result::cont();
        auto it = domains.find(to_lower(c.domain));
        if (it == domains.end() || !it->second.hop) it = domains.find("any");
        if (it == domains.end() || !it->second.hop) return Result::cont();
        c.outbound->mx.push_back(*it->second.hop);
        return Result::ok();
    }
};

// {"action": "accept", "nexthop": "host:port"}: a tiny reader for these two string keys.
bool parse_dest(std::string_view json, DestDomain& out) {
    auto get = [&](std::string_view key, std::string& val) {
        auto k = json.find("\"" + std::string(key) + "\"");
        if (k == std::string_view::npos) return true;
        auto colon = json.find(':', k);
        auto q1 = json.find('"', colon);
        auto q2 = json.find('"', q1 + 1);
        if (colon == std::string_view::npos || q1 == std::string_view::npos ||
            q2 == std::string_view::npos)
            return false;
        val = std::string(json.substr(q1 + 1, q2 - q1 - 1));
        return true;
    };
    json = trim(json);
    if (json.empty() || json.front() != '{' || json.back() != '}') return false;
    return get("action", out.action) && get("nexthop", out.nexthop);
}

}  // namespace

std::shared_ptr<Plugin> make_relay_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                          HookTable& table, uint32_t timeout_ms) {
    auto p = std::make_shared<RelayPlugin>();
    Ini ini = cfg.ini("relay.ini", d);
    IniReader r(ini, d);
    r.check_sections({"relay"});
    r.check_known("relay", {"acl", "force_routing", "dest_domains", "all"});
    p->acl = r.get_bool("relay", "acl", true);
    p->force_routing = r.get_bool("relay", "force_routing", true);
    p->dest_domains = r.get_bool("relay", "dest_domains", false);
    p->all = r.get_bool("relay", "all", false);
    if (p->all)
        d.warn(ini.path, 0, "[relay] all=true makes this server an open relay: testing only");
    for (const auto& line : cfg.list("relay_acl_allow", d)) {
        std::string text(trim(std::string_view(line.text).substr(0, line.text.find('#'))));
        if (text.empty()) continue;
        auto c = Cidr::parse(text);
        if (!c) {
            d.error(cfg.root() + "/relay_acl_allow", line.line,
                    fmt::format("'{}' is not an IP address or CIDR block", text));
            continue;
        }
        p->allow.add(*c);
    }
    Ini dd = cfg.ini("relay_dest_domains.ini", d);
    if (auto* sect = dd.section("domains")) {
        for (const auto& e : sect->entries) {
            DestDomain dest;
            if (!e.value || !parse_dest(*e.value, dest) ||
                (dest.action != "accept" && dest.action != "continue" && dest.action != "deny")) {
                d.error(
                    dd.path, e.line,
                    fmt::format("[domains] {}: expected {{\"action\": \"accept|continue|deny\", "
                                "\"nexthop\": \"host:port\"}}",
                                e.key));
                continue;
            }
            if (!dest.nexthop.empty()) {
                std::string err;
                dest.hop = parse_next_hop(dest.nexthop, err);
                if (!dest.hop) {
                    d.error(
                        dd.path, e.line,
                        fmt::format("[domains] {}: nexthop '{}': {}", e.key, dest.nexthop, err));
                    continue;
                }
            }
            p->domains[to_lower(e.key)] = dest;
        }
    }
    RelayPlugin* self = p.get();
    table.add(
        Hook::connect_init, "relay", [self](HookCall& c) { return self->connect_init(c); }, 0,
        timeout_ms);
    table.add(
        Hook::connect, "relay", [self](HookCall& c) { return self->connect(c); }, 0, timeout_ms);
    table.add(
        Hook::rcpt, "relay", [self](HookCall& c) { return self->rcpt(c); }, 0, timeout_ms);
    bool any_hop = false;
    for (const auto& [dom, dest] : p->domains) any_hop |= dest.hop.has_value();
    if (p->force_routing && any_hop)
        table.add(
            Hook::get_mx, "relay", [self](HookCall& c) { return self->get_mx(c); }, 0, timeout_ms);
    return p;
}

}  // namespace kasi
