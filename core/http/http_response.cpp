#include "core/http/http_response.h"

#include <fmt/format.h>

#include "core/util/clock.h"
#include "core/util/json.h"

namespace kasi {

HttpResponse HttpResponse::json(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.body += '\n';
    return r;
}

HttpResponse HttpResponse::error(int status, std::string_view field, std::string_view message) {
    JsonObject e;
    e.num("status", status);
    if (!field.empty()) e.str("field", field);
    e.str("message", message);
    return json(status, JsonObject().raw("error", e.done()).done());
}

HttpResponse HttpResponse::text(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
}

const char* http_reason(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 207:
            return "Multi-Status";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::string serialize_response(const HttpResponse& r, bool keep_alive, bool head_only) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\nServer: kasi\r\nDate: {}\r\nContent-Type: {}\r\n"
        "Content-Length: {}\r\nConnection: {}\r\n",
        r.status, http_reason(r.status), http_date(now_ms() / 1000), r.content_type, r.body.size(),
        keep_alive ? "keep-alive" : "close");
    for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
    out += "\r\n";
    if (!head_only) out += r.body;
    return out;
}

}  // namespace kasi
