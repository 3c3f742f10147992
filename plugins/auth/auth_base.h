// The SMTP AUTH exchange (RFC 4954) shared by auth plugins, as Haraka's auth/auth_base:
// the plugin says which mechanisms it offers and how to check a password; this class
// advertises AUTH, runs PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195) through the
// session's line handler, delays failures (2^(fails-1) s, capped below the plugin
// timeout), marks a successful client as relaying, and applies constrain_sender.
//
// AUTH is offered only on TLS sessions or to private/loopback client addresses; elsewhere
// an AUTH command gets 538 5.7.11 (encryption required).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/hooks/plugin.h"

namespace kasi {

class AuthBase : public Plugin {
  public:
    // Whether `user` with clear-text `password` may log in (PLAIN, LOGIN).
    virtual bool check_plain_passwd(const std::string& user, const std::string& password) = 0;
    // The stored clear-text password, for CRAM-MD5; nullopt if unknown.
    virtual std::optional<std::string> get_plain_passwd(const std::string& user) = 0;

    // Registers capabilities, unrecognized_command and mail (constrain_sender) hooks.
    void register_hooks(HookTable& table, uint32_t timeout_ms);

    std::vector<std::string> methods;  // upper case, in advertising order
    bool constrain_sender = true;

  private:
    std::optional<Result> capabilities(HookCall& c);
    std::optional<Result> unrecognized(HookCall& c);
    std::optional<Result> mail(HookCall& c);

    uint32_t timeout_ms_ = 30000;
};

// CRAM-MD5's response digest: lower-case hex of HMAC-MD5(password, challenge).
std::string cram_md5_digest(const std::string& password, const std::string& challenge);

}  // namespace kasi
