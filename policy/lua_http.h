// kasi.http.request: an HTTP/1.1 client for policies (a webhook, a policy service, a
// reputation lookup), asynchronous on the hook's loop. One request per connection
// (Connection: close); http:// and https:// (certificate and host name verified against
// lua.ini http_ca_file, or the system's CAs); responses parsed by the http-parser library
// (Content-Length, chunked, or until close), with a size cap and an overall timeout.
// Host names are resolved with getaddrinfo on libuv's thread pool (so /etc/hosts works).
#pragma once

#include <uv.h>

#include <openssl/ssl.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kasi {

struct HttpClientRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    int timeout_ms = 10000;
    size_t max_response_bytes = size_t(4) << 20;
};

struct HttpClientResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
    std::string body;
    std::string error;  // set when there is no response
};

// `tls` may be null: https:// then fails with an error. `done` runs on `loop`, once.
void http_request(uv_loop_t* loop, SSL_CTX* tls, HttpClientRequest req,
                  std::function<void(HttpClientResponse)> done);

// Ends the requests still in flight on `loop` (without calling their `done`), on the
// loop's thread before the loop is closed; the loop's owner then runs the loop once more
// for the close callbacks.
void http_close_loop(uv_loop_t* loop);

// Splits "http[s]://host[:port]/path?query"; false with `err` if it is not such a URL.
bool http_split_url(const std::string& url, bool& https, std::string& host, uint16_t& port,
                    std::string& target, std::string& err);

}  // namespace kasi
