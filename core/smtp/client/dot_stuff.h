// The DATA payload as it goes on the wire (RFC 5321 §4.5.2): every line that starts with
// "." gets another "." in front, a bare LF and a bare CR each become CRLF (so the next hop
// never sees a bare CR or LF, and "\r.\r" cannot end its DATA early: the line after the
// CR is a line like any other, dot-stuffed), a last line without an end gets one, and the
// terminating ".\r\n" follows. The spool keeps messages un-stuffed; whatever put them
// there (SMTP, the HTTP API, a Lua header edit), this is the one way out to the wire.
#pragma once

#include <string>
#include <string_view>

namespace kasi {

void append_dot_stuffed(std::string& out, std::string_view body);

// What the message needs from the server: BODY=8BITMIME (a byte >= 0x80 anywhere).
bool has_8bit(std::string_view body);

}  // namespace kasi
