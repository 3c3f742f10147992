// The reply text as the rules see it. Replies are any bytes (a hostile or broken server
// can send NULs, invalid UTF-8 or 100 KB), so the classifier never matches the raw text:
//
//   - a multi-line reply becomes one line: the continuation lines lose the reply code
//     and the enhanced status they repeat ("550-5.1.1 "), when they repeat the first
//     line's code, so a phrase split across lines still reads as one;
//   - ASCII letters are lower-cased (other bytes are kept as they are, so a UTF-8 phrase
//     in a rule file matches the same bytes in a reply);
//   - every run of white space (space, tab, CR, LF, VT, FF) becomes one space, NULs go;
//   - only the first kMaxClassifiedText bytes of the result are kept: what decides a
//     bounce is at the start, and this bounds the matching time whatever the server sent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kasi {

constexpr size_t kMaxClassifiedText = 8192;

std::string normalize_reply_text(std::string_view raw, size_t cap = kMaxClassifiedText);

// The same folding for a phrase written in a rule file (no line joining, no cap; a
// leading or trailing space is kept: " - spam" is not "anti-spam").
std::string normalize_phrase(std::string_view phrase);

}  // namespace kasi
