// VERP return paths: per sending domain or tenant, MAIL FROM becomes an address at a
// return-path domain the customer publishes (bounces.customer.example: MX to Kasi, SPF),
// so SPF and DMARC align and bounces come back to Kasi with the message and the recipient
// in the address, protected by an HMAC so that forged bounces are recognised.
//
//   <prefix>-<mac>-<id>-<local>=<domain>@<return-path domain>   the recipient fits
//   <prefix>-<mac>-<id>-<n>@<return-path domain>                it does not: its index
//
// <id> is the message id (uuid.N) in base32 (26 characters + ".N"); <mac> the first 40
// bits of HMAC-SHA256(secret, "verp1|id|recipient or #n") in base32; everything is
// lowercase, so a bounce generator that lowercases the address does not break it. The
// local part is at most 64 octets (RFC 5321 §4.5.3.1.1).
//
// verp.ini: [main] secret (or "file:PATH"), prefix (b), default; [domain:D] return_path;
// [tenant:T] return_path. Policies choose per message with the note verp.domain, or set
// verp.skip. One message to several recipients is sent one recipient per transaction.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_dir.h"

namespace kasi {

struct VerpAddress {
    std::string message_id;
    std::string recipient;  // "" when the address carries the index instead
    int rcpt_index = -1;    // -1 when it carries the recipient
};

// "" when `message_id` is not of Kasi's form (uuid or uuid.N).
std::string verp_encode(std::string_view secret, std::string_view prefix,
                        std::string_view rp_domain, std::string_view message_id,
                        std::string_view recipient, int rcpt_index);
// The inverse; nullopt with the reason for anything that is not a valid VERP address
// made with this secret and prefix (forged, altered, or not ours).
std::optional<VerpAddress> verp_decode(std::string_view secret, std::string_view prefix,
                                       std::string_view address, std::string& why);

class VerpConfig {
  public:
    // Null when verp.ini has no rules (VERP off).
    static std::shared_ptr<const VerpConfig> load(const ConfigDir& cfg, Diagnostics& d);
    // The return-path domain for a message: tenant rule, else the sending domain's rule
    // (labels walked up), else the default; "" for none.
    std::string return_path_for(std::string_view sending_domain, std::string_view tenant) const;
    // Every return-path domain the rules name (default, [domain:], [tenant:]), lower-case:
    // mail to these comes back to Kasi (core/feedback/report_mailboxes.h).
    std::vector<std::string> return_path_domains() const;
    // The tenant whose rule names `rp_domain`, when exactly one does; else "".
    std::string tenant_of(std::string_view rp_domain) const;
    const std::string& secret() const { return secret_; }
    const std::string& prefix() const { return prefix_; }

  private:
    std::string secret_, prefix_ = "b", default_;
    std::map<std::string, std::string, std::less<>> by_domain_, by_tenant_;
};

}  // namespace kasi
