// The header block of a message or a MIME part, as a report parser needs it: fields in
// order, each unfolded (RFC 5322 §2.2.3), names compared case-insensitively. Inbound reports
// (bounces, complaints) come from every kind of MTA, so this reader is forgiving: LF or CRLF
// line ends, a line without a colon inside the block is taken as a continuation of the field
// before it, and whatever bytes a value has are kept (no charset conversion; RFC 2047 words
// can be decoded on request). It never fails, and its work is linear in the input.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kasi::mime {

struct Field {
    std::string name;   // as written
    std::string value;  // unfolded, leading and trailing blanks removed
};

struct HeaderFields {
    std::vector<Field> fields;

    // The first field of that name ("" if none) and every one of them.
    std::string_view get(std::string_view name) const;
    std::vector<std::string_view> all(std::string_view name) const;
    bool has(std::string_view name) const;
};

// Reads fields from the start of `text` up to the first empty line. `consumed` is set to
// the offset just past that empty line (or text.size()). At most `max_fields` fields are kept.
HeaderFields parse_fields(std::string_view text, size_t& consumed, size_t max_fields = 2000);

// "type/subtype; a=b; c="d"" : the lower-cased type/subtype and the parameters (names
// lower-cased, quotes removed, RFC 2231 continuations joined).
struct ContentType {
    std::string type;  // "text/plain" when absent or unreadable
    std::vector<std::pair<std::string, std::string>> params;
    std::string_view param(std::string_view name) const;
    bool is(std::string_view t) const { return type == t; }
    bool multipart() const { return type.rfind("multipart/", 0) == 0; }
};
ContentType parse_content_type(std::string_view value);

// RFC 2047 encoded words (=?charset?B|Q?...?=) replaced by their bytes; the charset is not
// converted. Text that is not an encoded word is kept as it is.
std::string decode_words(std::string_view value);

}  // namespace kasi::mime
