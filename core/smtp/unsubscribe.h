// One-click unsubscribe (RFC 8058, RFC 2369): List-Unsubscribe with an https URL and/or a
// mailto, and List-Unsubscribe-Post: List-Unsubscribe=One-Click, added to relayed mail
// before it is signed (both are in the dkim plugin's default header list).
//
// unsubscribe.ini: [main] secret (or "file:PATH"), url, mailto, one_click (true);
// [tenant:T] url, mailto. Policies and message metadata use the notes unsubscribe.url,
// unsubscribe.mailto, unsubscribe.list (else the campaign) and unsubscribe.skip. In a url
// or mailto, {token} becomes a token that names the recipient, the list and the tenant
// under an HMAC, so links cannot be forged for other addresses; verify_unsubscribe_token()
// (and `kasictl unsubscribe verify`) checks one. A message to several recipients gets a
// token without a recipient. A message that has List-Unsubscribe already is left alone.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_dir.h"

namespace kasi {

struct UnsubscribeToken {
    std::string recipient, list, tenant;
    int64_t issued_s = 0;
};

std::string make_unsubscribe_token(std::string_view secret, const UnsubscribeToken& t);
std::optional<UnsubscribeToken> verify_unsubscribe_token(std::string_view secret,
                                                         std::string_view token);

struct UnsubscribeTargets {
    std::string url, mailto;  // templates ({token}); either may be empty
};

class UnsubscribeConfig {
  public:
    static std::shared_ptr<const UnsubscribeConfig> load(const ConfigDir& cfg, Diagnostics& d);
    UnsubscribeTargets targets_for(std::string_view tenant) const;
    const std::string& secret() const { return secret_; }
    bool one_click() const { return one_click_; }

  private:
    std::string secret_;
    bool one_click_ = true;
    UnsubscribeTargets defaults_;
    std::map<std::string, UnsubscribeTargets, std::less<>> by_tenant_;
};

// Adds the headers to `message` as the notes and config say. Returns false with the reason
// in `err` when a value is refused (CR/LF or '<' '>' in it: header injection); the message
// is then left unchanged. `cfg` may be null (only notes with full targets then).
bool add_list_unsubscribe(std::string& message, const std::map<std::string, std::string>& notes,
                          const std::vector<std::string>& rcpts, const UnsubscribeConfig* cfg,
                          int64_t now_s, std::string& err);

}  // namespace kasi
