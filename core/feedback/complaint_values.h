// Reading the values of a complaint report, whatever format carried them (arf_parser.h):
// what makes every string of a ComplaintReport one line and capped, an address bare and
// lower-cased, a feedback type one lower-cased word, an IP address an IP address. Each
// function reads only its argument and never fails; what it cannot read gives "".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/feedback/complaint_report.h"

namespace kasi::arf {

inline constexpr size_t kMaxValue = 512;
inline constexpr size_t kMaxRecipients = 100;
inline constexpr size_t kMaxDomains = 20;
inline constexpr size_t kMaxKasiHeaders = 20;

// One line: control characters become blanks, runs of blanks one space, trimmed, capped.
std::string clean(std::string_view v, size_t max = kMaxValue);

// The first mailbox of an address header or report field, bare and lower-cased: the
// address in angle brackets ("Name <a@b>"; it wins over a display name that looks like an
// address), else the first word that is an address. Quoted strings and comments are
// skipped; a "rfc822;" type and a "mailto:" prefix are removed.
std::string mailbox_of(std::string_view value);

// "abuse", "auth-failure", ...: the first word, lower-cased; "abuse" when there is none.
std::string feedback_type_of(std::string_view v);

// An IP address as written (brackets and an "IPv6:" tag removed), "" if it is not one.
std::string ip_of(std::string_view v);

// Domain names in a field ("example.net", "a.example, b.example"), lower-cased, added once.
void add_domains(std::vector<std::string>& out, std::string_view v);

// An address added once, at most kMaxRecipients; "" is not added.
void add_recipient(ComplaintReport& r, std::string a);

// A header of the returned message kept when it is one of Kasi's (X-Kasi-*).
void add_kasi_header(ComplaintReport& r, std::string_view name, std::string_view value);

ComplaintReport not_complaint(std::string why);
ComplaintReport complaint_of(std::string_view format);

}  // namespace kasi::arf
