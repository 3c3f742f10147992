// Small string helpers shared by the config reader, the SMTP parser and the spool.
// All are ASCII-only on purpose: SMTP verbs, config keys and header names are ASCII.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kasi {

std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);
// Split on any of `seps`, trimming pieces and dropping empty ones.
std::vector<std::string> split_list(std::string_view s, std::string_view seps = ",");
// `s` cut at every `sep`, empty fields kept ("a\t\tb" -> "a", "", "b"): a record's columns.
std::vector<std::string> split_fields(std::string_view s, char sep);
// Parses a non-negative decimal integer that fits in int64; false on anything else.
bool parse_u64(std::string_view s, unsigned long long& out);
// Percent-escapes bytes outside printable ASCII, plus '%' and space: one token per value.
std::string escape_token(std::string_view s);
bool unescape_token(std::string_view s, std::string& out);
// The domain of an address: what follows its last '@' as written ("" without one).
std::string_view address_domain(std::string_view address);

}  // namespace kasi
