// The machine-readable part of a DSN (RFC 3464 §2): one block of per-message fields
// (Reporting-MTA, Arrival-Date, ...) then one block per recipient (Final-Recipient, Action,
// Status, Remote-MTA, Diagnostic-Code, ...), blocks separated by empty lines. Read from a
// message/delivery-status part, or from plain text where an MTA wrote the same fields into
// its human-readable part. Field values are unfolded; the "type;" prefixes (rfc822;, dns;,
// smtp;) are removed; vendor fields (X-Postfix-*, X-Actual-Recipient, ...) are ignored but
// for PowerMTA's bounce category, which is its verdict on the recipient.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct DsnRecipientFields {
    std::string final_recipient, original_recipient, action, status, remote_mta, diagnostic_type,
        diagnostic, last_attempt;
    std::string bounce_category;  // PowerMTA's X-PowerMTA-BounceCategory ("bad-mailbox", ...)
};

struct DeliveryStatus {
    std::string reporting_mta, received_from_mta;
    std::vector<DsnRecipientFields> recipients;
};

DeliveryStatus parse_delivery_status(std::string_view body);

// True when `text` holds at least one Final-Recipient/Original-Recipient field at a line
// start (DSN fields written into a text part).
bool has_dsn_fields(std::string_view text);

// "rfc822; a@b" -> "a@b" (and "<a@b>" -> "a@b"); "dns; mx.example" -> "mx.example".
std::string strip_type(std::string_view value);

}  // namespace kasi
