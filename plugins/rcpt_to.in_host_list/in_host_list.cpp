#include "plugins/rcpt_to.in_host_list/in_host_list.h"

#include <regex>
#include <unordered_set>

#include <fmt/format.h>

#include "core/smtp/address.h"
#include "core/smtp/server/session.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

class InHostList : public Plugin {
  public:
    std::string name() const override { return "rcpt_to.in_host_list"; }

    std::unordered_set<std::string> hosts;
    std::optional<std::regex> re;

    bool is_local(const std::string& domain) const {
        if (hosts.count(domain)) return true;
        return re && std::regex_match(domain, *re);
    }

    std::optional<Result> rcpt(HookCall& c) const {
        if (!c.address || !is_local(c.address->domain)) return Result::cont();
        if (c.address->has_routing_chars && !c.session->relaying())
            return Result::deny(fmt::format("I cannot deliver mail for <{}>", c.address->str()));
        return Result::ok();
    }
};

}  // namespace

std::shared_ptr<Plugin> make_in_host_list_plugin(const ConfigDir& cfg, const Settings&,
                                                 Diagnostics& d, HookTable& table,
                                                 uint32_t timeout_ms) {
    auto p = std::make_shared<InHostList>();
    for (const auto& l : cfg.list("host_list", d)) p->hosts.insert(to_lower(l.text));
    std::string alt;
    for (const auto& l : cfg.list("host_list_regex", d)) {
        try {
            std::regex test(l.text, std::regex::ECMAScript | std::regex::icase);
        } catch (const std::regex_error& e) {
            d.error(cfg.root() + "/host_list_regex", l.line,
                    fmt::format("invalid regular expression '{}': {}", l.text, e.what()));
            continue;
        }
        alt += (alt.empty() ? "" : "|") + l.text;
    }
    if (!alt.empty())
        p->re.emplace("^(?:" + alt + ")$", std::regex::ECMAScript | std::regex::icase);
    InHostList* self = p.get();
    table.add(
        Hook::rcpt, "rcpt_to.in_host_list", [self](HookCall& c) { return self->rcpt(c); }, 0,
        timeout_ms);
    return p;
}

}  // namespace kasi
