#include "core/smtp/command.h"

#include "core/util/strings.h"

namespace kasi {

CommandLine split_command(std::string_view line) {
    CommandLine c;
    size_t sp = line.find(' ');
    std::string_view verb = line.substr(0, sp);
    c.verb.reserve(verb.size());
    for (char ch : verb) c.verb += (ch >= 'a' && ch <= 'z') ? char(ch - 32) : ch;
    if (sp != std::string_view::npos) {
        auto rest = line.substr(sp + 1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        c.arg = std::string(rest);
    }
    return c;
}

bool parse_esmtp_params(std::string_view s, std::vector<EsmtpParam>& out, std::string& err) {
    out.clear();
    for (const auto& tok : split_list(s, " ")) {
        auto eq = tok.find('=');
        std::string key = tok.substr(0, eq);
        if (key.empty()) {
            err = "empty parameter name";
            return false;
        }
        for (char& c : key) {
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-')) {
                err = "bad parameter name";
                return false;
            }
            if (c >= 'a' && c <= 'z') c = char(c - 32);
        }
        EsmtpParam p{key, std::nullopt};
        if (eq != std::string::npos) {
            p.value = tok.substr(eq + 1);
            for (unsigned char c : *p.value)
                if (c < 33 || c == '=' || c == 127) {
                    err = "bad parameter value";
                    return false;
                }
        }
        out.push_back(std::move(p));
    }
    return true;
}

std::optional<std::string_view> strip_path_prefix(std::string_view arg, std::string_view prefix) {
    if (!istarts_with(arg, prefix)) return std::nullopt;
    auto rest = arg.substr(prefix.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() != ':') return std::nullopt;
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return rest;
}

std::string bracket_path(std::string_view rest, bool mail) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (rest.empty()) return mail ? "<>" : "";
    if (rest.front() == '<') return std::string(rest);
    size_t sp = rest.find(' ');
    std::string out = "<" + std::string(rest.substr(0, sp)) + ">";
    if (sp != std::string_view::npos) out += rest.substr(sp);
    return out;
}

}  // namespace kasi
