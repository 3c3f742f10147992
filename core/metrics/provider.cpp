#include "core/metrics/provider.h"

#include <utility>

#include "core/util/strings.h"

namespace kasi {

namespace {

// MX host (or domain) suffixes; the first match wins.
constexpr std::pair<std::string_view, std::string_view> table[] = {
    {"google.com", "gmail"},
    {"googlemail.com", "gmail"},
    {"gmail.com", "gmail"},
    {"outlook.com", "microsoft"},
    {"hotmail.com", "microsoft"},
    {"live.com", "microsoft"},
    {"msn.com", "microsoft"},
    {"yahoodns.net", "yahoo"},
    {"yahoo.com", "yahoo"},
    {"aol.com", "yahoo"},
    {"icloud.com", "apple"},
    {"me.com", "apple"},
    {"mac.com", "apple"},
    {"gmx.net", "gmx"},
    {"gmx.de", "gmx"},
    {"web.de", "webde"},
    {"mail.ru", "mailru"},
    {"yandex.net", "yandex"},
    {"yandex.ru", "yandex"},
    {"zoho.com", "zoho"},
    {"protonmail.ch", "proton"},
    {"proton.me", "proton"},
    {"comcast.net", "comcast"},
    {"orange.fr", "orange"},
    {"t-online.de", "t-online"},
    {"qq.com", "tencent"},
    {"mimecast.com", "mimecast"},
    {"pphosted.com", "proofpoint"},
    {"messagelabs.com", "broadcom"},
};

}  // namespace

std::string_view provider_of(std::string_view host) {
    while (!host.empty() && host.back() == '.') host.remove_suffix(1);
    for (const auto& [suffix, name] : table) {
        if (host.size() < suffix.size()) continue;
        std::string_view tail = host.substr(host.size() - suffix.size());
        if (!iequals(tail, suffix)) continue;
        if (host.size() == suffix.size() || host[host.size() - suffix.size() - 1] == '.')
            return name;
    }
    return "other";
}

}  // namespace kasi
