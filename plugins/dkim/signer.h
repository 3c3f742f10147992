// Computing DKIM-Signature header fields (RFC 6376 §3.7, §5; RFC 8463 for Ed25519).
// Pure functions of the message bytes and the signing parameters: no I/O, no global state,
// safe to run on a thread pool. Several signatures of one message share the body hash of
// each canonicalization.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plugins/dkim/canon.h"
#include "plugins/dkim/dkim_key.h"

namespace kasi::dkim {

struct SignSpec {
    std::string domain, selector;  // d=, s=
    std::shared_ptr<const PrivateKey> key;
    Canon header = Canon::relaxed, body = Canon::relaxed;
    std::vector<std::string> headers;   // names to sign, each present instance (lowercase)
    std::vector<std::string> oversign;  // names listed once more than present (lowercase)
    int64_t timestamp = 0;              // t= (0: left out)
    int64_t expire = 0;                 // x= (0: left out)
};

// The DKIM-Signature field ("DKIM-Signature: ...\r\n") for `message` (wire form, CRLF),
// or nullopt with the reason in `err`.
std::optional<std::string> sign_message(std::string_view message, const SignSpec& spec,
                                        std::string& err);
// All signatures, in order, as one block of header fields to put on top of the message.
std::optional<std::string> sign_message(std::string_view message,
                                        const std::vector<SignSpec>& specs, std::string& err);

// The pieces, for tests against published vectors and for a verifier.
std::string body_hash(std::string_view message, Canon c, int64_t limit = -1);  // base64
// The data the signature covers: the selected header fields (h=, bottom-up instances) and
// `sig_field` (the DKIM-Signature field with an empty b= value and no final CRLF).
std::string header_hash_input(std::string_view message, Canon c, const std::vector<std::string>& h,
                              std::string_view sig_field);
// The field with the value of its b= tag removed (what the signature covers), keeping
// everything else byte for byte.
std::string strip_b_value(std::string_view field);
// A tag=value list (RFC 6376 §3.2), whitespace removed from values.
std::vector<std::pair<std::string, std::string>> parse_tags(std::string_view list);

}  // namespace kasi::dkim
