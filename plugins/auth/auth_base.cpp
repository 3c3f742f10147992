#include "plugins/auth/auth_base.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "core/config/settings.h"
#include "core/log/log.h"
#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/smtp/server/session.h"
#include "core/util/base64.h"
#include "core/util/clock.h"
#include "core/util/psl.h"
#include "core/util/strings.h"

namespace kasi {

std::string cram_md5_digest(const std::string& password, const std::string& challenge) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_md5(), password.data(), int(password.size()),
         reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size(), md, &len);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
    return hex;
}

namespace {

bool auth_allowed(Session& s) {
    return s.using_tls() || s.remote_ip().unmapped().is_private();
}

bool same_secret(const std::string& a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// One AUTH exchange. Owned by the line-handler closures; it lives as long as the
// exchange does.
struct Exchange : std::enable_shared_from_this<Exchange> {
    AuthBase* plugin;
    Session* session;
    std::weak_ptr<Session> alive;
    std::string mech;
    std::string user;
    std::string challenge;
    uint32_t timeout_ms;

    void ask(std::string_view b64_prompt, void (Exchange::*next)(std::string_view)) {
        session->reply(334, b64_prompt, "-");
        auto self = shared_from_this();
        session->take_next_line([self, next](std::string_view line) { (self.get()->*next)(line); });
    }

    // Common checks on a client response line; nullopt after replying.
    std::optional<std::string> decode(std::string_view line) {
        if (line == "*") {
            session->reply(501, "Authentication cancelled", "5.0.0");
            return std::nullopt;
        }
        auto d = base64_decode(trim(line));
        if (!d) {
            session->count_error();
            session->reply(501, "Invalid AUTH string", "5.5.2");
            return std::nullopt;
        }
        return d;
    }

    void plain_response(std::string_view line) {
        auto d = decode(line);
        if (!d) return;
        // authzid NUL authcid NUL passwd
        auto p1 = d->find('\0');
        auto p2 = p1 == std::string::npos ? p1 : d->find('\0', p1 + 1);
        if (p2 == std::string::npos || d->find('\0', p2 + 1) != std::string::npos) {
            session->count_error();
            session->reply(501, "Invalid AUTH string", "5.5.2");
            return;
        }
        std::string authzid = d->substr(0, p1);
        user = d->substr(p1 + 1, p2 - p1 - 1);
        std::string pass = d->substr(p2 + 1);
        // Acting for someone else is not supported: authzid must be empty or the user.
        bool ok = (authzid.empty() || authzid == user) && !user.empty() &&
                  plugin->check_plain_passwd(user, pass);
        finish(ok);
    }

    void login_user(std::string_view line) {
        auto d = decode(line);
        if (!d) return;
        user = *d;
        ask("UGFzc3dvcmQ6", &Exchange::login_pass);  // "Password:"
    }

    void login_pass(std::string_view line) {
        auto d = decode(line);
        if (!d) return;
        finish(!user.empty() && plugin->check_plain_passwd(user, *d));
    }

    void cram_response(std::string_view line) {
        auto d = decode(line);
        if (!d) return;
        auto sp = d->rfind(' ');
        if (sp == std::string::npos) {
            session->count_error();
            session->reply(501, "Invalid AUTH string", "5.5.2");
            return;
        }
        user = d->substr(0, sp);
        std::string digest = to_lower(d->substr(sp + 1));
        auto pw = plugin->get_plain_passwd(user);
        finish(pw && same_secret(cram_md5_digest(*pw, challenge), digest));
    }

    void finish(bool ok) {
        Session& s = *session;
        if (ok) {
            s.set_auth_user(user);
            s.notes()["auth_method"] = mech;
            log::info("[{}] AUTH {} user={} ip={}: success", s.uuid(), mech, user,
                      s.remote_ip().str());
            s.reply(235, "Authentication successful", "2.7.0");
            return;
        }
        int fails = 1;
        if (auto it = s.notes().find("auth_fails"); it != s.notes().end())
            fails = std::atoi(it->second.c_str()) + 1;
        s.notes()["auth_fails"] = std::to_string(fails);
        s.count_error();
        log::notice("[{}] AUTH {} user={} ip={}: failed (attempt {})", s.uuid(), mech, user,
                    s.remote_ip().str(), fails);
        // 2^(fails-1) seconds, kept below the plugin timeout as Haraka does
        uint64_t delay = uint64_t(1000) << std::min(fails - 1, 10);
        if (timeout_ms > 1000) delay = std::min<uint64_t>(delay, timeout_ms - 1000);
        std::weak_ptr<Session> w = alive;
        s.pause_then(delay, [w] {
            if (auto sp = w.lock()) sp->reply(535, "Authentication failed", "5.7.8");
        });
    }
};

}  // namespace

void AuthBase::register_hooks(HookTable& table, uint32_t timeout_ms) {
    timeout_ms_ = timeout_ms;
    std::string n = name();
    table.add(
        Hook::capabilities, n, [this](HookCall& c) { return capabilities(c); }, 0, timeout_ms);
    table.add(
        Hook::unrecognized_command, n, [this](HookCall& c) { return unrecognized(c); }, 0,
        timeout_ms);
    table.add(
        Hook::mail, n, [this](HookCall& c) { return mail(c); }, 0, timeout_ms);
}

std::optional<Result> AuthBase::capabilities(HookCall& c) {
    if (methods.empty() || !auth_allowed(*c.session)) return Result::cont();
    std::string cap = "AUTH";
    for (const auto& m : methods) cap += " " + m;
    c.session->capabilities().push_back(cap);
    return Result::cont();
}

std::optional<Result> AuthBase::unrecognized(HookCall& c) {
    auto cmd = split_command(c.arg);
    if (cmd.verb != "AUTH") return Result::cont();
    Session& s = *c.session;
    if (!auth_allowed(s)) {
        s.reply(538, "Encryption required for requested authentication mechanism", "5.7.11");
        return Result::ok();
    }
    if (!s.auth_user().empty()) {
        s.reply(503, "Already authenticated", "5.5.1");
        return Result::ok();
    }
    if (s.transaction()) {
        s.reply(503, "AUTH not permitted during a mail transaction", "5.5.1");
        return Result::ok();
    }
    if (!s.esmtp()) {  // RFC 4954 §3: an extension of EHLO; not before it, not after HELO
        s.reply(503, "Use EHLO before AUTH", "5.5.1");
        return Result::ok();
    }
    auto parts = split_list(cmd.arg, " ");
    if (parts.empty() || parts.size() > 2) {
        s.count_error();
        s.reply(501, "Syntax error", "5.5.4");
        return Result::ok();
    }
    std::string mech = to_lower(parts[0]);
    for (auto& ch : mech) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    if (std::find(methods.begin(), methods.end(), mech) == methods.end()) {
        s.count_error();
        s.reply(504, "Invalid AUTH string", "5.5.4");
        return Result::ok();
    }
    auto ex = std::make_shared<Exchange>();
    ex->plugin = this;
    ex->session = &s;
    ex->alive = s.weak_from_this();
    ex->mech = mech;
    ex->timeout_ms = timeout_ms_;
    std::optional<std::string> initial;
    if (parts.size() == 2) initial = parts[1] == "=" ? std::string() : parts[1];
    if (mech == "PLAIN") {
        if (!initial)
            ex->ask("", &Exchange::plain_response);
        else
            ex->plain_response(*initial);
    } else if (mech == "LOGIN") {
        if (!initial)
            ex->ask("VXNlcm5hbWU6", &Exchange::login_user);  // "Username:"
        else
            ex->login_user(*initial);
    } else {  // CRAM-MD5: no initial response allowed
        if (initial) {
            s.count_error();
            s.reply(501, "CRAM-MD5 takes no initial response", "5.5.4");
            return Result::ok();
        }
        unsigned char rnd[8];
        RAND_bytes(rnd, sizeof rnd);
        std::string hex;
        for (auto b : rnd) hex += fmt::format("{:02x}", b);
        ex->challenge = fmt::format("<{}.{}@{}>", hex, now_ms() / 1000, s.settings().me);
        ex->ask(base64_encode(ex->challenge), &Exchange::cram_response);
    }
    return Result::ok();
}

std::optional<Result> AuthBase::mail(HookCall& c) {
    const std::string& user = c.session->auth_user();
    if (!constrain_sender || user.empty() || !c.address) return Result::cont();
    auto at = user.rfind('@');
    if (at == std::string::npos) return Result::cont();  // not an address: nothing to compare
    if (c.address->null) return Result::cont();
    std::string auth_dom = organizational_domain(user.substr(at + 1));
    std::string env_dom = organizational_domain(c.address->domain);
    if (auth_dom.empty() || env_dom != auth_dom)
        return Result::deny(fmt::format("Envelope domain '{}' doesn't match AUTH domain '{}'",
                                        env_dom.empty() ? c.address->domain : env_dom,
                                        auth_dom.empty() ? user.substr(at + 1) : auth_dom));
    return Result::cont();
}

}  // namespace kasi
