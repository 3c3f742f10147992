// kasictl -c DIR suppress import FILE | export [FILE] while kasi runs: the admin API's
// suppressions/import and suppressions/export (core/http/api_suppressions.cpp).
//
// Import reads FILE with the same CSV reader kasi uses (suppression_csv.h), so a bad row is
// reported here with its line in FILE and skipped; the good rows go to kasi, rewritten as
// plain CSV, in pieces of at most 8 MiB (and half the API's max_body_bytes), each on disk
// when its answer comes. A file of any size therefore imports with bounded memory on both
// sides. Export walks the API's pages (Kasi-Next) into FILE, or stdout without one.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kasi {

// The exit status; nullopt when `args` are not import/export, or when the API is not
// configured or nothing listens on it (kasi is stopped): the caller then opens the list
// itself (ctl_suppress_file.h).
std::optional<int> ctl_suppress_http(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
