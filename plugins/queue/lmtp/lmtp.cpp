#include "plugins/queue/lmtp/lmtp.h"

#include <map>

#include <fmt/format.h>

#include "core/queue/queued_message.h"
#include "core/smtp/server/session.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

class Lmtp : public Plugin {
  public:
    std::string name() const override { return "queue/lmtp"; }

    NextHop main;
    std::map<std::string, NextHop> per_domain;

    static std::optional<Result> mark(HookCall& c) {
        if (auto* t = c.session->transaction()) t->notes["queue.wants"] = "lmtp";
        return Result::cont();
    }

    std::optional<Result> get_mx(HookCall& c) const {
        if (!c.hmail || !c.outbound) return Result::cont();
        const std::string* wants = c.hmail->note("queue.wants");
        if (!wants || *wants != "lmtp") return Result::cont();
        auto it = per_domain.find(to_lower(c.domain));
        c.outbound->mx.push_back(it == per_domain.end() ? main : it->second);
        return Result::ok();
    }
};

NextHop read_hop(const Ini& ini, IniReader& r, Diagnostics& d, std::string_view sect,
                 const NextHop& def) {
    r.check_known(sect, {"host", "port", "path"});
    NextHop h = def;
    h.lmtp = true;
    h.host = r.get_str(sect, "host", h.host);
    h.port = uint16_t(r.get_int(sect, "port", h.port, 1, 65535));
    if (auto* e = ini.find(sect, "path"))
        d.warn(ini.path, e->line,
               fmt::format("[{}] path (a UNIX socket) is not supported yet; using {}:{}", sect,
                           h.host, h.port));
    return h;
}

}  // namespace

std::shared_ptr<Plugin> make_lmtp_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                         HookTable& table, uint32_t timeout_ms) {
    auto p = std::make_shared<Lmtp>();
    Ini ini = cfg.ini("lmtp.ini", d);
    IniReader r(ini, d);
    NextHop def;
    def.host = "127.0.0.1";
    def.port = 24;
    p->main = read_hop(ini, r, d, "main", def);
    for (const auto& s : ini.sections)
        if (s.name != "main")
            p->per_domain[to_lower(s.name)] = read_hop(ini, r, d, s.name, p->main);
    Lmtp* self = p.get();
    table.add(Hook::queue, "queue/lmtp", &Lmtp::mark, 0, timeout_ms);
    table.add(
        Hook::get_mx, "queue/lmtp", [self](HookCall& c) { return self->get_mx(c); }, 0, timeout_ms);
    return p;
}

}  // namespace kasi
