// Minimal JSON output for log records: one object built field by field. Strings are
// escaped per RFC 8259; invalid UTF-8 bytes become U+FFFD so every record is valid JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kasi {

void json_escape(std::string& out, std::string_view s);

class JsonObject {
  public:
    JsonObject& str(std::string_view key, std::string_view v);
    JsonObject& num(std::string_view key, int64_t v);
    JsonObject& real(std::string_view key, double v);
    JsonObject& boolean(std::string_view key, bool v);
    JsonObject& raw(std::string_view key, std::string_view json);  // a nested value
    std::string done();                                            // "{...}"

  private:
    void key(std::string_view k);
    std::string s_ = "{";
};

}  // namespace kasi
