// The DATA payload as it goes on the wire (RFC 5321 §4.5.2): every line that starts with
// "." gets another "." in front, a bare LF becomes CRLF, a last line without an end gets
// one, and the terminating ".\r\n" follows. The spool keeps messages un-stuffed.
#pragma once

#include <string>
#include <string_view>

namespace kasi {

void append_dot_stuffed(std::string& out, std::string_view body);

// What the message needs from the server: BODY=8BITMIME (a byte >= 0x80 anywhere).
bool has_8bit(std::string_view body);

}  // namespace kasi
