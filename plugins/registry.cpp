#include "plugins/registry.h"

#include <fmt/format.h>

#include "core/util/strings.h"
#include "plugins/plugin_table.h"
#include "policy/lua_runtime.h"

namespace kasi {

std::string canonical_plugin_name(const std::string& raw) {
    std::string name = raw;
    if (name.starts_with("haraka-plugin-")) name = name.substr(14);
    // As listed in Haraka's plugins.js (its table of deprecated plugin names).
    static const std::pair<const char*, const char*> deprecated[] = {
        {"rate_limit", "limit"},
        {"max_unrecognized_commands", "limit"},
        {"rcpt_to.max_count", "limit"},
        {"relay_acl", "relay"},
        {"relay_all", "relay"},
        {"relay_force_routing", "relay"},
        {"dkim_sign", "dkim"},
        {"dnsbl", "dns-list"},
        {"connect.rdns_access", "access"},
        {"mail_from.access", "access"},
        {"rcpt_to.access", "access"},
    };
    for (auto& [from, to] : deprecated)
        if (name == from) return to;
    return name;
}

bool build_plugins(const ConfigDir& cfg, const Settings& s, Diagnostics& d, HookTable& table) {
    std::vector<std::string> loaded;
    for (const auto& line : cfg.list("plugins", d)) {
        std::string name = canonical_plugin_name(line.text);
        if (name == "dkim_verify") {  // Haraka's verifier: Kasi has none, and says so
            d.error(cfg.root() + "/plugins", line.line,
                    fmt::format("plugin '{}': Kasi signs outbound mail with DKIM (plugin "
                                "'dkim') but does not verify the DKIM signatures of inbound "
                                "mail; remove this line",
                                line.text));
            continue;
        }
        bool dup = false;
        for (const auto& l : loaded) dup |= l == name;
        if (dup) {
            d.warn(cfg.root() + "/plugins", line.line,
                   fmt::format("plugin '{}' listed twice; the second is ignored", line.text));
            continue;
        }
        const NativePlugin* f = nullptr;
        for (const auto& p : native_plugins())
            if (name == p.name) f = &p;
        bool lua = !f && is_lua_plugin(cfg, name);
        if (!f && !lua) {
            d.error(cfg.root() + "/plugins", line.line,
                    fmt::format("unknown plugin '{}' (no native plugin of that name and no "
                                "plugins/{}.lua)",
                                line.text, name));
            continue;
        }
        uint32_t timeout = s.plugin_timeout_ms;
        if (auto t = cfg.value(name + ".timeout", d)) {
            unsigned long long v;
            if (parse_u64(t->text, v))
                timeout = uint32_t(v * 1000);
            else
                d.error(cfg.root() + "/" + name + ".timeout", t->line, "not a number of seconds");
        }
        if (lua)
            add_lua_plugin(cfg, name, line.line, timeout, d, table);
        else if (auto p = f->make(cfg, s, d, table, timeout))
            table.keep(std::move(p));
        loaded.push_back(name);
    }
    table.finalize();
    return d.ok();
}

void add_plugin_extensions(Extensions& e) {
    e.build_plugins = &build_plugins;
}

}  // namespace kasi
