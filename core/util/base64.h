// Base64 (RFC 4648 §4), strict: SASL (RFC 4954) and, later, DKIM and HTTP need exact
// decoding that refuses junk rather than skipping it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kasi {

std::string base64_encode(std::string_view in);
// Decodes canonical padded base64; whitespace, a bad character, bad padding or a
// truncated group give nullopt. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace kasi
