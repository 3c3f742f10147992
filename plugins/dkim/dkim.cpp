#include "plugins/dkim/dkim.h"

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/smtp/headers.h"
#include "core/util/clock.h"
#include "core/util/strings.h"
#include "plugins/dkim/dkim_config.h"

namespace kasi {

namespace {

using dkim::DkimConfig;
using dkim::SignSpec;

class DkimJob : public SealJob {
  public:
    explicit DkimJob(std::vector<SignSpec> specs) : specs_(std::move(specs)) {}
    std::string seal(std::string_view message, std::string& err) override {
        std::string why;
        auto fields = dkim::sign_message(message, specs_, why);
        if (fields) return *fields;
        err = fmt::format("dkim: not signed: {}", why);
        return {};
    }
    bool heavy() const override {
        for (const auto& s : specs_)
            if (s.key->type() == dkim::KeyType::rsa) return true;
        return false;
    }

  private:
    std::vector<SignSpec> specs_;
};

class DkimPlugin : public Plugin, public Sealer {
  public:
    explicit DkimPlugin(std::shared_ptr<const DkimConfig> c) : cfg_(std::move(c)) {}
    std::string name() const override { return "dkim"; }
    Stage stage() const override { return Stage::sign; }

    std::unique_ptr<SealJob> prepare(SealInput& msg) const override {
        auto note = [&](const char* k) -> std::string {
            auto it = msg.notes.find(k);
            return it == msg.notes.end() ? std::string() : it->second;
        };
        std::string skip = note("dkim.skip");
        if (!skip.empty() && skip != "0" && skip != "false") return nullptr;
        std::vector<std::string> domains;
        if (std::string over = note("dkim.domain"); !over.empty())
            domains = split_list(over, ", ");
        else if (!note("forward").empty())
            domains.push_back(msg.sender_domain);
        else
            domains.push_back(author_domain(msg.body, msg.sender_domain));
        int64_t now = now_ms() / 1000;
        std::vector<SignSpec> specs;
        std::string why;
        for (const auto& d : domains) {
            for (auto& s : cfg_->plan(d, now, why)) {
                bool dup = false;
                for (const auto& have : specs)
                    dup |= have.domain == s.domain && have.selector == s.selector;
                if (!dup) specs.push_back(std::move(s));
            }
        }
        if (specs.empty()) {
            log::info("[{}] dkim: not signed: {}", msg.id, why);
            return nullptr;
        }
        return std::make_unique<DkimJob>(std::move(specs));
    }

  private:
    std::shared_ptr<const DkimConfig> cfg_;
};

}  // namespace

std::shared_ptr<Plugin> make_dkim_plugin(const ConfigDir& cfg, const Settings&, Diagnostics& d,
                                         HookTable& table, uint32_t) {
    auto c = DkimConfig::load(cfg, d);
    if (!c) return std::make_shared<DkimPlugin>(nullptr);
    auto p = std::make_shared<DkimPlugin>(std::move(c));
    table.add_sealer(p);
    return p;
}

}  // namespace kasi
