// Where bounces and complaints come back: the addresses Kasi accepts mail for on its SMTP
// listeners without relaying it and without an ACL, because what arrives there is a
// report about mail Kasi sent (a DSN, an ARF complaint, an auto-reply), never mail to
// pass on. They are
//   - every VERP return-path domain of verp.ini (default, [domain:], [tenant:]): the
//     bounces of messages sent with a VERP MAIL FROM come back to an address there;
//   - feedback.ini [main] `domains` (any address at them) and `addresses` (exactly these),
//     e.g. the address given to Yahoo's or Microsoft's feedback-loop programme.
// Nothing else is accepted this way: a report mailbox is not a relay (the message stops
// here) and no other address becomes reachable (never an open relay).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"

namespace kasi {

class VerpConfig;

class ReportMailboxes {
  public:
    // Null when there is nothing to accept (no VERP, no feedback.ini lists).
    static std::shared_ptr<const ReportMailboxes> load(const ConfigDir& cfg, const VerpConfig* verp,
                                                       Diagnostics& d);

    // `address` is local@domain (any case; a trailing dot on the domain is ignored).
    bool accepts(std::string_view address) const;
    const std::vector<std::string>& domains() const { return domains_; }
    const std::vector<std::string>& addresses() const { return addresses_; }

  private:
    std::vector<std::string> domains_, addresses_;  // lower-case
};

}  // namespace kasi
