// Haraka's INI dialect, as haraka-config reads it:
//   - keys before any [section] belong to [main]; "; x" and "# x" lines are comments,
//     there are no inline comments ("k = v ; c" has the value "v ; c");
//   - "key" without "=" is a valueless key (list-like sections: [no_tls_hosts]);
//   - "key[] = v" appends to an array; a trailing backslash continues the line;
//   - integers (^-?\d+$) and floats (^-?\d+\.\d+$) are numbers, everything else a string;
//   - booleans are declared by the consumer (get_bool), truthy = true|yes|ok|enabled|on|1.
// Values are kept as text with their line numbers so that consumers can report
// "file:line: what is wrong" when a value does not fit.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kasi {

struct IniEntry {
    std::string key;
    std::optional<std::string> value;  // nullopt: valueless key
    std::vector<std::string> array;    // for key[] entries
    bool is_array = false;
    int line = 0;
};

struct IniSection {
    std::string name;
    int line = 0;
    std::vector<IniEntry> entries;
    const IniEntry* find(std::string_view key) const;
};

enum class IniType { none, integer, floating, string };
IniType ini_infer_type(const std::optional<std::string>& v);
bool ini_is_truthy(const std::optional<std::string>& v);

struct Ini {
    std::string path;                   // for messages
    std::vector<IniSection> sections;   // [main] first, always present
    std::vector<std::string> problems;  // "path:line: invalid line ..." (ignored lines)

    static Ini parse(std::string_view text, std::string path = "<string>");
    const IniSection* section(std::string_view name) const;
    const IniEntry* find(std::string_view section, std::string_view key) const;
};

}  // namespace kasi
