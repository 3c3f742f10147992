#include "core/smtp/mime_scan.h"

#include <string>
#include <vector>

#include "core/util/strings.h"

namespace kasi {

namespace {

// The boundary parameter of a Content-Type value, if any (quoted or token).
std::string boundary_of(std::string_view value) {
    size_t pos = 0;
    while (pos < value.size()) {
        size_t semi = value.find(';', pos);
        if (semi == std::string_view::npos) return {};
        pos = semi + 1;
        auto rest = trim(value.substr(pos));
        if (!istarts_with(rest, "boundary")) continue;
        rest = trim(rest.substr(8));
        if (rest.empty() || rest[0] != '=') continue;
        rest = trim(rest.substr(1));
        if (!rest.empty() && rest[0] == '"') {
            auto end = rest.find('"', 1);
            return std::string(rest.substr(1, end == std::string_view::npos ? end : end - 1));
        }
        auto end = rest.find_first_of("; \t");
        return std::string(rest.substr(0, end));
    }
    return {};
}

}  // namespace

size_t count_mime_parts(std::string_view m, size_t stop_after) {
    std::vector<std::string> boundaries;
    size_t parts = 0;
    bool in_headers = true;
    std::string content_type;  // the Content-Type field being read (with continuations)
    bool reading_ct = false;
    auto end_field = [&] {
        if (reading_ct) {
            auto b = boundary_of(content_type);
            if (!b.empty() && b.size() <= 200) boundaries.push_back(std::move(b));
        }
        reading_ct = false;
        content_type.clear();
    };
    size_t pos = 0;
    while (pos < m.size()) {
        size_t eol = m.find('\n', pos);
        if (eol == std::string_view::npos) eol = m.size();
        std::string_view line = m.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = eol + 1;
        if (in_headers) {
            if (line.empty()) {
                end_field();
                in_headers = false;
                // Without a boundary in the top-level header there are no parts, and no
                // part header can declare one: skip the body.
                if (boundaries.empty()) return parts;
            } else if (line[0] == ' ' || line[0] == '\t') {
                if (reading_ct && content_type.size() < 4096) content_type.append(line);
            } else {
                end_field();
                if (istarts_with(line, "content-type:")) {
                    reading_ct = true;
                    content_type.assign(line.substr(13));
                }
            }
            continue;
        }
        if (line.size() < 3 || line[0] != '-' || line[1] != '-' || boundaries.empty()) continue;
        std::string_view tail = line.substr(2);
        while (!tail.empty() && (tail.back() == ' ' || tail.back() == '\t')) tail.remove_suffix(1);
        for (const auto& b : boundaries) {
            if (tail == b) {
                if (++parts > stop_after) return parts;
                in_headers = true;  // the part's own header block follows
                break;
            }
        }
    }
    return parts;
}

}  // namespace kasi
