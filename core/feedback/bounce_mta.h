// Which software wrote a bounce, when its headers say so. Most of what a bounce means is in
// the remote server's reply, but a few MTAs and gateways write their reports in a fixed
// way whose meaning the reply alone does not give: a McAfee or InterScan gateway, IMail,
// Domino or Verizon's gateway names no SMTP command and says "unknown user" only for a
// mailbox that does not exist; a Google Groups report always means the group refused the
// post. The classifier rules can then ask `mta=NAME` (rules/classify/35-mtas.rules).
//
// The marks are the ones sisimai (lib/Sisimai/Lhost/*.pm, BSD-2-Clause) uses to pick its
// module for a report: fixed header values each product writes. Header fields are
// read, and the report's own text for a layout mark (its first 16 KB), so the cost is
// nothing next to parsing the message.
#pragma once

#include <string>
#include <string_view>

#include "core/mime/header_fields.h"

namespace kasi {

// A short lower-case name ("mcafee", "googlegroups", ...), "" when no mark matched.
std::string bounce_mta(const mime::HeaderFields& h, std::string_view text);

// A reason the report's headers give outright, "" if none: au/EZweb marks a message its
// spam filter refused for the recipient with "X-SPASIGN: NG" (filtered).
std::string header_verdict(const mime::HeaderFields& h);

}  // namespace kasi
