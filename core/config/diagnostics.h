// Collected config problems. Errors stop start-up (and make --check-config exit 1);
// warnings (unknown keys, ignored lines) are logged and do not. Every message starts with
// "file:line:" when a line is known.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct Diagnostics {
    std::vector<std::string> errors;
    std::vector<std::string> warnings;

    void error(std::string_view file, int line, std::string_view msg);
    void warn(std::string_view file, int line, std::string_view msg);
    bool ok() const { return errors.empty(); }
};

}  // namespace kasi
