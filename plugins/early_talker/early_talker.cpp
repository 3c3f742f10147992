#include "plugins/early_talker/early_talker.h"

#include <fmt/format.h>

#include "core/smtp/server/session.h"
#include "core/util/ip.h"
#include "core/util/uv_handle.h"

namespace kasi {

namespace {

class EarlyTalker : public Plugin {
  public:
    std::string name() const override { return "early_talker"; }

    uint64_t pause_ms = 5000;
    bool reject = true;
    CidrList whitelist;

    bool exempt(Session& s) const { return s.relaying() || whitelist.contains(s.remote_ip()); }

    // Answers the hook when the pause is over.
    std::optional<Result> connect_init(HookCall& c) const {
        if (pause_ms == 0 || exempt(*c.session)) return Result::cont();
        return c.answer_after(pause_ms, Result::cont());
    }

    std::optional<Result> data(HookCall& c) const {
        if (!reject || !c.session->early_talker() || exempt(*c.session)) return Result::cont();
        return Result{Code::denydisconnect, "You talk too soon"};
    }
};

}  // namespace

std::shared_ptr<Plugin> make_early_talker_plugin(const ConfigDir& cfg, const Settings&,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms) {
    auto p = std::make_shared<EarlyTalker>();
    Ini ini = cfg.ini("early_talker.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "ip_whitelist"});
    r.check_known("main", {"pause", "reject"});
    p->pause_ms = uint64_t(r.get_int("main", "pause", 5, 0, 300)) * 1000;
    p->reject = r.get_bool("main", "reject", true);
    p->whitelist = r.get_cidr_section("ip_whitelist");
    if (p->pause_ms >= timeout_ms && timeout_ms > 0)
        d.error(ini.path, 0,
                fmt::format("[main] pause ({} s) must be shorter than the plugin timeout ({} s)",
                            p->pause_ms / 1000, timeout_ms / 1000));
    EarlyTalker* self = p.get();
    table.add(
        Hook::connect_init, "early_talker", [self](HookCall& c) { return self->connect_init(c); },
        0, timeout_ms);
    table.add(
        Hook::data, "early_talker", [self](HookCall& c) { return self->data(c); }, 0, timeout_ms);
    return p;
}

}  // namespace kasi
