// Builds an RFC 5322 / MIME message from the API's fields: text and/or html
// (multipart/alternative), attachments (multipart/mixed), RFC 2047 encoded words for
// non-ASCII display names and subjects, quoted-printable bodies where a part is not plain
// short-lined ASCII, CRLF everywhere. Values were validated by the caller (no CR/LF in
// header values); what is built here is always well-formed.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kasi {

struct MailAddr {
    std::string email, name;
    std::string header_form() const;  // "\"Name\" <a@b>", "=?utf-8?B?...?= <a@b>" or "a@b"
};

struct Attachment {
    std::string filename, content_type = "application/octet-stream";
    std::string data;        // decoded bytes
    std::string content_id;  // set: an inline part (Content-Disposition: inline)
};

struct MessageFields {
    MailAddr from;
    std::vector<MailAddr> to, cc, reply_to;  // bcc never appears in the header
    std::string subject, text, html;
    bool has_text = false, has_html = false;
    std::vector<std::pair<std::string, std::string>> headers;  // extra, validated
    std::vector<Attachment> attachments;
};

// The message bytes, headers first. `message_id` and `date` are used as given.
std::string build_message(const MessageFields& f, const std::string& message_id,
                          const std::string& date);

// {{key}} placeholders replaced from `subs` (missing keys become ""); `html` escapes the
// values for HTML text.
std::string substitute(std::string_view text, const std::map<std::string, std::string>& subs,
                       bool html);

// Helpers, exposed for the tests.
std::string encode_word(std::string_view text);       // RFC 2047 "B" when not plain ASCII
std::string quoted_printable(std::string_view text);  // CRLF line breaks kept as hard breaks
std::string to_crlf(std::string_view text);           // bare LF and bare CR become CRLF

}  // namespace kasi
