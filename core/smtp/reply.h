// SMTP reply formatting (RFC 5321 §4.2): multi-line replies use "code-" on every line but
// the last, and, when ENHANCEDSTATUSCODES is on, each line carries the enhanced status
// code (RFC 2034), unless the text already begins with one. No wire line is longer than
// 512 octets with its code and CRLF (RFC 5321 §4.5.3.1.5): a longer text line is folded
// (at a space when one is near, never inside a UTF-8 character) into more reply lines,
// and a CR, NUL or other control character inside a line goes out as a space. Texts that
// plugins give (hook answers) are also capped as a whole (cap_reply_text).
#pragma once

#include <string>
#include <string_view>

namespace kasi {

// True if `text` begins with "d.d.d " (an enhanced status code).
bool starts_with_enhanced(std::string_view text);
// Appends the formatted reply to `out`. `enhanced` may be empty (none added). Lines of
// `text` are separated by '\n'.
void format_reply(std::string& out, int code, std::string_view enhanced, std::string_view text);
// The longest wire line of a reply, with the code and CRLF.
constexpr size_t max_reply_line = 512;
// The longest reply text a plugin's hook answer may give (longer ones are cut, "..."
// marking the cut): at most a handful of folded lines.
constexpr size_t max_reply_text = 2048;
void cap_reply_text(std::string& text);
// A default enhanced code for a reply code when the caller has no better one.
std::string_view default_enhanced(int code);

}  // namespace kasi
