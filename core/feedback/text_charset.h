// Bounce texts in the writer's charset, as UTF-8. Japanese carriers and gateways write their
// reports in ISO-2022-JP (often without saying so, inside a DSN field), others in Shift_JIS,
// EUC-JP, ISO-8859-x or windows-125x; the classifier's phrases are UTF-8, so a report is
// converted before it is read. glibc's iconv does the work; a byte it cannot convert is
// skipped, an unknown charset leaves the text as it is, and the output is capped, so bad
// input costs at most a linear pass.
#pragma once

#include <string>
#include <string_view>

#include "core/mime/mime_tree.h"

namespace kasi {

// `text` from `charset` (a MIME charset name, any case) to UTF-8. Unknown, empty, ASCII or
// UTF-8 charsets return the text unchanged, as does text that has no byte to convert.
std::string to_utf8(std::string_view text, std::string_view charset);

// Text with ISO-2022-JP escape sequences (ESC $ B, ESC $ @, ESC ( J) converted; any other
// text unchanged. For fields that carry no charset (a DSN's Diagnostic-Code).
std::string iso2022_to_utf8(std::string_view text);

// mime::human_text(), converted from its part's charset.
std::string human_text_utf8(const mime::Part& top);

}  // namespace kasi
