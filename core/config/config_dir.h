// A Haraka-layout config directory (DIR/config) and its file types:
//   value - the first non-blank, non-comment line, trimmed ("me", "queue_dir");
//   list  - every non-blank line not starting with # or ; trimmed ("host_list", "plugins");
//   data  - all lines, raw;
//   ini   - Haraka's INI dialect (ini.h).
// Relative names may not escape the directory; absolute names are allowed, as in Haraka.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/config/diagnostics.h"
#include "core/config/ini.h"
#include "core/util/ip.h"

namespace kasi {

struct ListLine {
    std::string text;
    int line;
};

class ConfigDir {
  public:
    explicit ConfigDir(std::string root) : root_(std::move(root)) {}

    const std::string& root() const { return root_; }
    // The full path of `name`, or nullopt if it escapes the directory.
    std::optional<std::string> path_of(const std::string& name) const;
    bool exists(const std::string& name) const;

    std::optional<ListLine> value(const std::string& name, Diagnostics& d) const;
    std::vector<ListLine> list(const std::string& name, Diagnostics& d) const;
    std::optional<std::vector<std::string>> data(const std::string& name, Diagnostics& d) const;
    Ini ini(const std::string& name, Diagnostics& d) const;  // empty [main] when missing

    // Reads a whole file; false if missing. Errors other than ENOENT go to `d`.
    bool read_file(const std::string& name, std::string& out, Diagnostics& d) const;

  private:
    std::string root_;
};

// Typed access to one INI file for one consumer. Booleans are declared here, by the
// consumer, as haraka-config's `booleans` option does. Invalid values are errors.
class IniReader {
  public:
    IniReader(const Ini& ini, Diagnostics& d) : ini_(ini), d_(d) {}

    bool get_bool(std::string_view sect, std::string_view key, bool def) const;
    long long get_int(std::string_view sect, std::string_view key, long long def, long long min,
                      long long max) const;
    std::string get_str(std::string_view sect, std::string_view key, std::string def) const;
    // "key[]=a" lines, or one comma/space separated value.
    std::vector<std::string> get_list(std::string_view sect, std::string_view key) const;
    // An HMAC secret: the value itself, or "file:PATH" (relative to `dir`) read from a file;
    // at least 16 characters, else an error (`hint` appended to it). "" when missing/bad.
    std::string get_secret(std::string_view sect, std::string_view key, const std::string& dir,
                           std::string_view hint = {}) const;
    // Warns about keys of `sect` not in `known` (with the line).
    void check_known(std::string_view sect, std::initializer_list<std::string_view> known) const;
    void check_sections(std::initializer_list<std::string_view> known) const;
    // A section of valueless keys that are addresses or CIDR blocks ([ip_whitelist],
    // [no_tls_hosts]); a bad entry is an error with its line.
    CidrList get_cidr_section(std::string_view sect) const;
    const Ini& ini() const { return ini_; }

  private:
    const Ini& ini_;
    Diagnostics& d_;
};

}  // namespace kasi
