// One HTTP/1.1 request and the incremental parser that produces it (Debian's http-parser,
// the parser Node.js used for a decade). The parser enforces the size limits while it reads,
// so an oversized header or body is refused before it is buffered: 431 for the header, 413
// for the body (from Content-Length when there is one). Pipelined requests stay in the
// caller's buffer: the parser pauses after each complete request.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kasi {

struct HttpRequest {
    std::string method;                                        // "GET", "POST", ...
    std::string path;                                          // percent-decoded, without the query
    std::string query;                                         // raw, without '?'
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    bool keep_alive = true;

    const std::string* header(std::string_view lower_name) const;
    std::string query_param(std::string_view name) const;  // percent-decoded; "" if absent
    // Every name=value pair of the query, in order, percent-decoded (a name without '=' has
    // an empty value); false on a bad escape.
    bool query_pairs(std::vector<std::pair<std::string, std::string>>& out) const;
};

class RequestParser {
  public:
    enum class State { more, done, error };
    RequestParser();
    // The body limit may depend on the path (the batch endpoint); called once the headers
    // are in.
    void set_limits(size_t max_header, size_t max_body, size_t max_batch_body);

    // Parses from `data`; `used` says how much was consumed (the rest belongs to the next
    // request). After done, take() the request and call reset() before feeding more.
    State feed(const char* data, size_t n, size_t& used);
    HttpRequest take() { return std::move(req_); }
    void reset();
    // After an error: the status to answer (400, 413, 431, 505) and why.
    int error_status() const { return status_; }
    const std::string& error_text() const { return error_; }
    bool in_progress() const { return started_; }
    // The headers asked for "Expect: 100-continue" and the body is within the limit: the
    // caller says "100 Continue" once (take_continue() turns it off).
    bool take_continue() { return std::exchange(continue_, false); }

  private:
    static int on_message_begin(http_parser* p);
    static int on_url(http_parser* p, const char* at, size_t n);
    static int on_header_field(http_parser* p, const char* at, size_t n);
    static int on_header_value(http_parser* p, const char* at, size_t n);
    static int on_headers_complete(http_parser* p);
    static int on_body(http_parser* p, const char* at, size_t n);
    static int on_message_complete(http_parser* p);
    int fail(int status, std::string why);
    bool header_budget(size_t n);

    http_parser parser_{};
    http_parser_settings settings_{};
    HttpRequest req_;
    std::string url_;
    bool in_value_ = false;
    bool started_ = false;
    bool complete_ = false;
    bool continue_ = false;
    size_t header_bytes_ = 0;
    size_t max_header_ = 16384, max_body_ = 1 << 20, max_batch_ = 1 << 20, body_limit_ = 0;
    int status_ = 0;
    std::string error_;
};

// "%41b+c" -> "Ab c" (plus as space only when `plus_space`); false on a bad escape.
bool percent_decode(std::string_view in, std::string& out, bool plus_space);

}  // namespace kasi
