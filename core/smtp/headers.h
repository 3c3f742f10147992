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
inline std::string_view header_name_trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}
bool header_field_ok(std::string_view name, std::string_view value, std::string& err);
// Adds "name: value" at the top of the header block (Haraka's add_header) or at its end.
void header_add(std::string& message, std::string_view name, std::string_view value,
                bool at_end = false);
size_t header_remove(std::string& message, std::string_view name);  // how many were removed

// The addresses of a From/Sender/To value ("Name <a@b>, c@d"), without display names.
std::vector<std::string> header_addresses(std::string_view value);
// The domain a message is sent as, as haraka-plugin-dkim chooses its signing domain: the
// one address in From, else the Sender's domain, else `envelope_domain` (lowercase).
std::string author_domain(std::string_view message, std::string_view envelope_domain);

// Calls fn(name, start, end) for each header field of a wire-form message: `name` trimmed,
// [start, end) the whole field with its continuation lines and final CRLF. Returns the
// offset where the header block ends: the blank line, or the first line that is not a field.
template <class F>
size_t for_each_header_field(std::string_view m, F fn) {
    size_t pos = 0;
    while (pos < m.size()) {
        size_t eol = m.find("\r\n", pos);
        size_t line_end = eol == std::string_view::npos ? m.size() : eol;
        auto line = m.substr(pos, line_end - pos);
        if (line.empty() || line[0] == ' ' || line[0] == '\t') return pos;
        auto colon = line.find(':');
        if (colon == std::string_view::npos) return pos;
        size_t end = eol == std::string_view::npos ? m.size() : eol + 2;
        while (end < m.size() && (m[end] == ' ' || m[end] == '\t')) {  // continuation lines
            size_t e2 = m.find("\r\n", end);
            end = e2 == std::string_view::npos ? m.size() : e2 + 2;
        }
        fn(header_name_trim(line.substr(0, colon)), pos, end);
        pos = end;
    }
    return pos;
}

}  // namespace kasi
