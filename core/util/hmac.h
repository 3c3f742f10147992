// Keyed tokens: HMAC-SHA256 (OpenSSL), constant-time comparison, and the two encodings
// tokens travel in: lowercase base32 without padding (VERP local parts, which some bounce
// generators lowercase) and base64url without padding (URLs).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kasi {

std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes
std::string sha256(std::string_view data);                             // 32 raw bytes
bool equal_ct(std::string_view a, std::string_view b);                 // constant time

std::string base32_lower(std::string_view bytes);
std::optional<std::string> base32_lower_decode(std::string_view text);  // case-insensitive
std::string base64url(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace kasi
