// A received message as a tree of MIME parts (RFC 2045/2046), read for what report parsers
// need: the headers of every part, the decoded text of text parts, the reports
// (message/delivery-status, message/feedback-report) and the returned message
// (message/rfc822, text/rfc822-headers) parsed as a message of its own.
//
// Reports come from anyone, so the reader is bounded and never fails: nesting deeper than
// `max_depth` or more than `max_parts` parts stop being split (the rest is kept as one opaque
// part), only text-like parts are decoded and each decoded body is capped at
// `max_text_bytes`; other parts (attachments) are skipped without decoding. A missing or
// wrong boundary leaves the multipart's body as one text part, so a parser still sees its
// words. All work is linear in the input size.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mime/header_fields.h"

namespace kasi::mime {

struct Limits {
    size_t max_depth = 12;
    size_t max_parts = 500;
    size_t max_text_bytes = 1 << 20;  // per decoded part
};

struct Part {
    HeaderFields headers;
    ContentType content_type;
    std::string body;        // decoded, for text/*, message/* (non-rfc822) and unknown leaf types;
                             // empty for skipped attachments
    bool truncated = false;  // body cut at max_text_bytes
    bool opaque = false;     // not split: a limit was reached or the boundary not found
    std::vector<Part> children;  // multipart: its parts; message/rfc822: the message (one)
    const Part* parent = nullptr;

    bool is_message() const;  // message/rfc822, message/global, text/rfc822-headers
};

// The whole message: its top part is the message itself.
struct Message {
    Part top;
    size_t parts = 0;  // parts read
};

Message parse_message(std::string_view raw, const Limits& limits = {});

// Depth-first, in order: the first part of that type, or every one.
const Part* find_part(const Part& from, std::string_view type);
std::vector<const Part*> find_parts(const Part& from, std::string_view type);

// The message's words for a human: the text of the first text/plain part outside any
// returned message (else text/html with tags removed). Empty if none.
std::string human_text(const Part& top);

// Tags removed and common entities decoded; <br>, <p>, <div>, <tr> become line ends.
std::string html_to_text(std::string_view html);

}  // namespace kasi::mime
