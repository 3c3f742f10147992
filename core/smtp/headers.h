// What the server needs to know about a received message's header block, and the headers
// it adds: the trace header (Received, RFC 5321 §4.4) and, when missing, Message-ID and
// Date (RFC 5322 §3.6; the submission server's duty per RFC 6409 §8).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct HeaderFacts {
    int received = 0;
    bool has_message_id = false;
    bool has_date = false;
    size_t header_bytes = 0;  // up to and including the blank line (or the whole message)
    size_t lines = 0;
    bool line_limit_hit = false;  // scanning stopped at max_lines (Haraka's headers.max_lines)
};

HeaderFacts scan_headers(std::string_view message, size_t max_lines = SIZE_MAX);

struct ReceivedInfo {
    std::string helo, rdns, ip, me, version, id, envelope_from, tls_cipher;
    bool esmtp = true, tls = false, auth = false;
    int64_t epoch_s = 0;
};

std::string build_received(const ReceivedInfo& r);

// Header edits for plugins (Lua's transaction:get_header/add_header/remove_header), on a
// message in wire form (CRLF). Values are unfolded and trimmed when read; names compare
// case-insensitively.
std::vector<std::string> header_values(std::string_view message, std::string_view name);
// A name is printable ASCII without ':' or space; a value has no CR, LF or NUL (no header
// injection). The reason is in `err`.
bool header_field_ok(std::string_view name, std::string_view value, std::string& err);
// Adds "name: value" at the top of the header block (Haraka's add_header) or at its end.
void header_add(std::string& message, std::string_view name, std::string_view value,
                bool at_end = false);
size_t header_remove(std::string& message, std::string_view name);  // how many were removed

}  // namespace kasi
