// SMTP reply formatting (RFC 5321 §4.2): multi-line replies use "code-" on every line but
// the last, and, when ENHANCEDSTATUSCODES is on, each line carries the enhanced status
// code (RFC 2034), unless the text already begins with one.
#pragma once

#include <string>
#include <string_view>

namespace kasi {

// True if `text` begins with "d.d.d " (an enhanced status code).
bool starts_with_enhanced(std::string_view text);
// Appends the formatted reply to `out`. `enhanced` may be empty (none added). Lines of
// `text` are separated by '\n'.
void format_reply(std::string& out, int code, std::string_view enhanced, std::string_view text);
// A default enhanced code for a reply code when the caller has no better one.
std::string_view default_enhanced(int code);

}  // namespace kasi
