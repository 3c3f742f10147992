// Organizational domains (RFC 7489 §3.2) from the Public Suffix List: the public suffix
// of a name plus one label. Used where Haraka uses tlds.get_organizational_domain
// (auth constrain_sender; later DMARC alignment and provider grouping).
//
// The list is Debian's publicsuffix package file, read once per process; rules with
// wildcards and exceptions are honoured. Without the file, the last two labels are the
// organizational domain (and one warning is logged).
#pragma once

#include <string>
#include <string_view>

namespace kasi {

// Lower-cased organizational domain of `domain`, or "" when `domain` is itself a public
// suffix (or empty).
std::string organizational_domain(std::string_view domain);

// For tests: load rules from a given file instead of the system one (false if unreadable).
bool psl_load_file(const std::string& path);

}  // namespace kasi
