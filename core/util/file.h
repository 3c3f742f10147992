// Whole-file reads for start-up and reload paths (certificates, policy modules): never
// on a hot path, so plain blocking I/O.
#pragma once

#include <string>
#include <string_view>

namespace kasi {

// The file's bytes into `out`; false if it cannot be opened.
bool read_whole_file(const std::string& path, std::string& out);

// At most `max` bytes of the file into `out`; false with the reason (strerror) in `err`.
bool read_file_capped(const std::string& path, size_t max, std::string& out, std::string& err);

// Replaces `path` with `data` so that a crash leaves the old file or the new one, whole:
// written to PATH.tmp, fdatasync'ed, renamed over `path`. False with `err` ("PATH.tmp:
// reason") when it could not; the old file then stays.
bool write_file_replacing(const std::string& path, std::string_view data, std::string& err);

}  // namespace kasi
