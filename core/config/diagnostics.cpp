#include "core/config/diagnostics.h"

#include <fmt/format.h>

namespace kasi {

static std::string where(std::string_view file, int line) {
    return line > 0 ? fmt::format("{}:{}: ", file, line) : fmt::format("{}: ", file);
}

void Diagnostics::error(std::string_view file, int line, std::string_view msg) {
    errors.push_back(where(file, line) + std::string(msg));
}

void Diagnostics::warn(std::string_view file, int line, std::string_view msg) {
    warnings.push_back(where(file, line) + std::string(msg));
}

}  // namespace kasi
