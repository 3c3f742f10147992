#include "plugins/auth/flat_file/flat_file.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <map>

#include <fmt/format.h>

#include "core/util/strings.h"
#include "plugins/auth/auth_base.h"

namespace kasi {

namespace {

class FlatFile : public AuthBase {
  public:
    std::string name() const override { return "auth/flat_file"; }

    std::map<std::string, std::string> users;

    bool check_plain_passwd(const std::string& user, const std::string& password) override {
        auto it = users.find(user);
        // Compare in constant time; an unknown user costs the same as a wrong password.
        const std::string& want = it == users.end() ? password + "x" : it->second;
        bool same = want.size() == password.size() &&
                    CRYPTO_memcmp(want.data(), password.data(), password.size()) == 0;
        return it != users.end() && same;
    }

    std::optional<std::string> get_plain_passwd(const std::string& user) override {
        auto it = users.find(user);
        if (it == users.end()) return std::nullopt;
        return it->second;
    }
};

}  // namespace

std::shared_ptr<Plugin> make_auth_flat_file_plugin(const ConfigDir& cfg, const Settings&,
                                                   Diagnostics& d, HookTable& table,
                                                   uint32_t timeout_ms) {
    auto p = std::make_shared<FlatFile>();
    Ini ini = cfg.ini("auth_flat_file.ini", d);
    IniReader r(ini, d);
    r.check_sections({"main", "core", "users"});
    r.check_known("core", {"methods", "constrain_sender"});
    r.check_known("main", {});
    auto methods = r.get_list("core", "methods");
    if (methods.empty()) methods = {"PLAIN", "LOGIN", "CRAM-MD5"};
    for (auto m : methods) {
        for (auto& ch : m) ch = char(std::toupper(static_cast<unsigned char>(ch)));
        if (m != "PLAIN" && m != "LOGIN" && m != "CRAM-MD5") {
            const auto* e = ini.find("core", "methods");
            d.error(ini.path, e ? e->line : 0,
                    fmt::format("[core] methods: '{}' is not PLAIN, LOGIN or CRAM-MD5", m));
            continue;
        }
        p->methods.push_back(m);
    }
    p->constrain_sender = r.get_bool("core", "constrain_sender", true);
    if (const auto* s = ini.section("users")) {
        for (const auto& e : s->entries) {
            if (!e.value || e.value->empty()) {
                d.error(ini.path, e.line, fmt::format("[users] '{}' has no password", e.key));
                continue;
            }
            p->users[e.key] = *e.value;
        }
    }
    struct stat st;
    if (!ini.path.empty() && ::stat(ini.path.c_str(), &st) == 0 && (st.st_mode & 077))
        d.warn(ini.path, 0,
               fmt::format("holds passwords but is readable by group or others (mode {:o}); "
                           "chmod 600",
                           st.st_mode & 0777));
    p->register_hooks(table, timeout_ms);
    return p;
}

}  // namespace kasi
