// kasictl -c DIR suppress import FILE | export FILE: the suppression list from and to CSV,
// with kasi stopped (ctl_suppress_file.cpp says why).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kasi {

// nullopt when `args` are not import/export FILE (the other suppress commands go to kasi).
std::optional<int> ctl_suppress_file(const std::string& dir, const std::vector<std::string>& args);

}  // namespace kasi
