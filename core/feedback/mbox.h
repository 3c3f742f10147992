// Messages in an mbox file: many mail systems keep mail, and bounces, one message after
// another in one file, each starting with a "From sender date" line after an empty line
// (a body line that starts with "From " is written ">From " there). A text that does not
// start with "From " is one message. Only line starts are looked at, so the split is one
// linear pass; at most `max` messages are returned (the last one takes the rest).
#pragma once

#include <string_view>
#include <vector>

namespace kasi {

std::vector<std::string_view> mbox_messages(std::string_view raw, size_t max = 10000);

}  // namespace kasi
