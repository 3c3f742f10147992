// An HTTP response and its wire form; JSON error bodies name the field that was wrong:
//   {"error": {"status": 400, "field": "to[2].email", "message": "..."}}
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kasi {

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra ones

    static HttpResponse json(int status, std::string body);
    static HttpResponse error(int status, std::string_view field, std::string_view message);
    static HttpResponse text(int status, std::string body);
};

// Called exactly once with the answer, on the connection's loop.
using HttpRespond = std::function<void(HttpResponse)>;

const char* http_reason(int status);
// Status line, headers and body; `keep_alive` decides the Connection header.
std::string serialize_response(const HttpResponse& r, bool keep_alive, bool head_only = false);

}  // namespace kasi
