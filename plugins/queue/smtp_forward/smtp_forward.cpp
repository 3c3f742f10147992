#include "plugins/queue/smtp_forward/smtp_forward.h"

#include <map>

#include <fmt/format.h>

#include "core/queue/queued_message.h"
#include "core/smtp/server/session.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

struct Forward {
    NextHop hop;
    bool enable_outbound = false;
};

class SmtpForward : public Plugin {
  public:
    std::string name() const override { return "queue/smtp_forward"; }

    Forward main;
    std::map<std::string, Forward> per_domain;

    const Forward& for_domain(std::string_view domain) const {
        auto it = per_domain.find(to_lower(domain));
        return it == per_domain.end() ? main : it->second;
    }

    static std::optional<Result> mark(HookCall& c) {
        if (auto* t = c.session->transaction()) t->notes["queue.wants"] = "smtp_forward";
        return Result::cont();
    }

    std::optional<Result> queue_outbound(HookCall& c) const {
        // Relayed mail is forwarded when [main] (or, for a single-domain transaction, that
        // domain's section) says enable_outbound.
        auto* t = c.session->transaction();
        if (!t) return Result::cont();
        bool forward = main.enable_outbound;
        for (const auto& r : t->rcpts) forward = forward || for_domain(r.domain).enable_outbound;
        if (forward) t->notes["queue.wants"] = "smtp_forward";
        return Result::cont();
    }

    std::optional<Result> get_mx(HookCall& c) const {
        if (!c.hmail || !c.outbound) return Result::cont();
        const std::string* wants = c.hmail->note("queue.wants");
        if (!wants || *wants != "smtp_forward") return Result::cont();
        if (const std::string* nh = c.hmail->note("queue.next_hop")) {
            std::string err;
            if (auto hop = parse_next_hop(*nh, err)) {
                c.outbound->mx.push_back(*hop);
                return Result::ok();
            }
        }
        c.outbound->mx.push_back(for_domain(c.domain).hop);
        return Result::ok();
    }
};

void read_section(const Ini& ini, IniReader& r, Diagnostics& d, std::string_view sect,
                  const Forward& defaults, Forward& f) {
    f = defaults;
    if (auto* e = ini.find(sect, "host"); e && e->value) f.hop.host = std::string(trim(*e->value));
    if (ini.find(sect, "port"))
        f.hop.port = uint16_t(r.get_int(sect, "port", f.hop.port, 1, 65535));
    f.hop.lmtp = r.get_bool(sect, "using_lmtp", f.hop.lmtp);
    f.enable_outbound = r.get_bool(sect, "enable_outbound", f.enable_outbound);
    f.hop.auth_user = r.get_str(sect, "auth_user", f.hop.auth_user);
    f.hop.auth_pass = r.get_str(sect, "auth_pass", f.hop.auth_pass);
    f.hop.auth_allow_cleartext =
        r.get_bool(sect, "auth_allow_cleartext", f.hop.auth_allow_cleartext);
    f.hop.bind = r.get_str(sect, "bind", f.hop.bind);
    f.hop.bind_helo = r.get_str(sect, "bind_helo", f.hop.bind_helo);
    if (!f.hop.bind.empty() && !IpAddr::parse(f.hop.bind)) {
        auto* e = ini.find(sect, "bind");
        d.error(ini.path, e ? e->line : 0,
                fmt::format("[{}] bind '{}' is not an IP address", sect, f.hop.bind));
    }
}

}  // namespace

std::shared_ptr<Plugin> make_smtp_forward_plugin(const ConfigDir& cfg, const Settings&,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms) {
    auto p = std::make_shared<SmtpForward>();
    Ini ini = cfg.ini("smtp_forward.ini", d);
    IniReader r(ini, d);
    std::initializer_list<std::string_view> keys = {"host",
                                                    "port",
                                                    "enable_tls",
                                                    "enable_outbound",
                                                    "auth_type",
                                                    "auth_user",
                                                    "auth_pass",
                                                    "auth_allow_cleartext",
                                                    "bind",
                                                    "bind_helo",
                                                    "using_lmtp",
                                                    "one_message_per_rcpt",
                                                    "check_sender",
                                                    "check_recipient",
                                                    "domain_selector",
                                                    "queue",
                                                    "forwarding_host_pool",
                                                    "dead_forwarding_host_retry_secs",
                                                    "connect_timeout",
                                                    "idle_timeout",
                                                    "max_connections"};
    Forward base;
    base.hop.host = "localhost";
    base.hop.port = 2555;
    r.check_known("main", keys);
    read_section(ini, r, d, "main", base, p->main);
    for (auto key : {"forwarding_host_pool", "domain_selector", "check_sender", "check_recipient",
                     "one_message_per_rcpt", "queue"})
        if (auto* e = ini.find("main", key))
            d.warn(ini.path, e->line,
                   fmt::format("[main] {} is not supported by kasi's smtp_forward; ignored", key));
    for (const auto& s : ini.sections) {
        if (s.name == "main" || s.name == "tls") continue;
        r.check_known(s.name, keys);
        read_section(ini, r, d, s.name, p->main, p->per_domain[to_lower(s.name)]);
    }
    SmtpForward* self = p.get();
    table.add(Hook::queue, "queue/smtp_forward", &SmtpForward::mark, 0, timeout_ms);
    table.add(
        Hook::queue_outbound, "queue/smtp_forward",
        [self](HookCall& c) { return self->queue_outbound(c); }, 0, timeout_ms);
    table.add(
        Hook::get_mx, "queue/smtp_forward", [self](HookCall& c) { return self->get_mx(c); }, 0,
        timeout_ms);
    return p;
}

}  // namespace kasi
