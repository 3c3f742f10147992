#include "core/server/server_config.h"

#include <atomic>

#include <fmt/format.h>

#include "core/server/extensions.h"

namespace kasi {

std::shared_ptr<const ServerConfig> load_server_config(const std::string& base_dir,
                                                       Diagnostics& d) {
    static std::atomic<uint64_t> generation{0};
    auto cfg = std::make_shared<ServerConfig>();
    cfg->base_dir = base_dir;
    ConfigDir dir(base_dir + "/config");
    cfg->settings = load_settings(dir, base_dir, d);
    auto table = std::make_shared<HookTable>();
    if (const auto& build = extensions().build_plugins) {
        build(dir, cfg->settings, d, *table);
    } else {  // a program without plugins/ (core/server/extensions.h)
        table->finalize();
        if (!dir.list("plugins", d).empty())
            d.error(dir.root() + "/plugins", 0, "this program has no plugins");
    }
    cfg->hooks = table;
    cfg->outbound = std::make_shared<OutboundConfig>(load_outbound_config(dir, base_dir, d));
    cfg->unsubscribe = UnsubscribeConfig::load(dir, d);
    cfg->http = HttpConfig::load(dir, d);
    bool has_tls = false;
    for (const auto& p : table->plugins()) has_tls |= p->name() == "tls";
    for (const auto& l : cfg->settings.listen)
        if (l.implicit_tls && !has_tls)
            d.error(dir.root() + "/smtp.ini", 0,
                    fmt::format("listener {} is the smtps port (implicit TLS) but the tls plugin "
                                "is not in config/plugins",
                                l.str()));
    cfg->generation = ++generation;
    if (!d.ok()) return nullptr;
    return cfg;
}

}  // namespace kasi
