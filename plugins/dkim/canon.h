// DKIM canonicalization (RFC 6376 §3.4): "simple" and "relaxed" for header fields and for
// the body. The body is canonicalized in one pass over the message and fed to a sink in
// large runs (no copy of the body, no allocation per line), so that the body hash costs
// little more than SHA-256 itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi::dkim {

enum class Canon { simple, relaxed };

std::string_view canon_name(Canon c);
bool parse_canon(std::string_view s, Canon& header, Canon& body);  // "relaxed/simple", "simple"

// Appends the canonical form of one header field to `out`. `field` is the whole field as it
// appears in the message: "Name: value\r\n" with its continuation lines (the final CRLF may
// be missing: the DKIM-Signature field itself is hashed without it).
void canon_header(Canon c, std::string_view field, std::string& out);

// Receives canonical body bytes.
class BodySink {
  public:
    virtual ~BodySink() = default;
    virtual void put(std::string_view bytes) = 0;
};

// Canonicalizes a body (everything after the blank line, CRLF line ends) into `sink`.
void canon_body(Canon c, std::string_view body, BodySink& sink);

}  // namespace kasi::dkim
