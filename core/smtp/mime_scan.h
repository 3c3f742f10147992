// Counting MIME parts without parsing the message (connection.ini max.mime_parts, as
// Haraka's limit against messages built to exhaust a MIME parser). One pass over the
// lines: boundary parameters are collected from Content-Type headers of the top-level
// header block and of every part's header block, and each delimiter line of a known
// boundary ("--b", not the closing "--b--") is one part.
#pragma once

#include <cstddef>
#include <string_view>

namespace kasi {

// Number of body parts, counting stops once it exceeds `stop_after`.
size_t count_mime_parts(std::string_view message, size_t stop_after);

}  // namespace kasi
