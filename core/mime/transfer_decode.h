// Content-Transfer-Encoding undone (RFC 2045 §6): base64 and quoted-printable, forgiving as
// a reader of other people's mail must be (junk characters skipped, a missing pad or a
// broken soft line break tolerated). Output is capped at `max_out` bytes so a 50 MB
// attachment costs a scan, not 50 MB; `truncated` says the cap was hit.
#pragma once

#include <string>
#include <string_view>

namespace kasi::mime {

std::string decode_base64_lenient(std::string_view in, size_t max_out, bool& truncated);
std::string decode_quoted_printable(std::string_view in, size_t max_out, bool& truncated);

// By the encoding's name (case-insensitive); 7bit, 8bit, binary and unknown names give the
// input as it is (capped).
std::string decode_transfer(std::string_view encoding, std::string_view in, size_t max_out,
                            bool& truncated);

}  // namespace kasi::mime
