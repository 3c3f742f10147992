#include "core/suppression/suppression_entry.h"

#include <fmt/format.h>

#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr std::array<std::string_view, 6> reason_names = {
    "hard_bounce", "complaint", "unsubscribe", "manual", "import", "soft_bounce"};

bool has_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

bool valid_time(int64_t t) {
    return t >= 0 && t <= suppression_max_time;
}

}  // namespace

std::string_view reason_name(SuppressionReason r) {
    size_t i = reason_index(r);
    return i < reason_names.size() ? reason_names[i] : "unknown";
}

std::optional<SuppressionReason> parse_reason(std::string_view name) {
    for (size_t i = 0; i < reason_names.size(); ++i)
        if (iequals(name, reason_names[i])) return all_suppression_reasons[i];
    return std::nullopt;
}

std::string normalize_address(std::string_view address) {
    return to_lower(trim(address));
}

bool valid_address(std::string_view a, std::string& err) {
    if (a.empty()) {
        err = "empty address";
        return false;
    }
    if (a.size() > suppression_max_address) {
        err = fmt::format("address longer than {} bytes", suppression_max_address);
        return false;
    }
    size_t at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) {
        err = fmt::format("'{}' is not local@domain", a);
        return false;
    }
    if (has_control(a) || a.find_first_of(" \t") != std::string_view::npos) {
        err = "address contains a space or a control byte";
        return false;
    }
    return true;
}

bool valid_scope(std::string_view scope, std::string& err) {
    if (scope.size() > suppression_max_scope) {
        err = fmt::format("scope longer than {} bytes", suppression_max_scope);
        return false;
    }
    if (has_control(scope)) {
        err = "scope contains a control byte";
        return false;
    }
    return true;
}

bool validate_entry(SuppressionEntry& e, std::string& err) {
    e.address = normalize_address(e.address);
    return validate_stored_entry(e, err);
}

bool validate_stored_entry(const SuppressionEntry& e, std::string& err) {
    if (!valid_address(e.address, err) || !valid_scope(e.scope, err)) return false;
    for (char c : e.address) {  // trimmed already: valid_address refuses spaces
        if (c >= 'A' && c <= 'Z') {
            err = "an address that is not lower-cased";
            return false;
        }
    }
    if (reason_index(e.reason) >= all_suppression_reasons.size()) {
        err = fmt::format("unknown reason {}", int(e.reason));
        return false;
    }
    if (e.event.size() > suppression_max_event || has_control(e.event)) {
        err = fmt::format("event id longer than {} bytes or with a control byte",
                          suppression_max_event);
        return false;
    }
    if (!valid_time(e.created) || !valid_time(e.expires)) {
        err = "created/expires outside [0, 2^32) unix seconds";
        return false;
    }
    return true;
}

}  // namespace kasi
