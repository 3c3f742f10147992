// kasictl's admin commands over the HTTP API (core/http/api_admin.cpp) when config/http.ini
// has a plain `listen` address; the control socket otherwise (or with --socket). The
// request goes to the first plain listener (a wildcard address becomes loopback), with
// "Authorization: Bearer $KASI_API_TOKEN" when that variable is set; the API's trusted
// networks need no token.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config/settings.h"

namespace kasi {

// The admin command `cmd` with its words over HTTP: prints the answer as the control
// socket would ("ok: ..." / "error: ..."); returns the exit status. nullopt when the API
// is not configured (the caller uses the socket).
std::optional<int> ctl_http(const std::string& dir, const std::string& cmd,
                            const std::vector<std::string>& args);

// The pieces, for commands that speak to the API themselves (ctl_suppress_http.h).
struct CtlHttpTarget {
    ListenAddr addr;            // the first plain listener
    size_t max_body_bytes = 0;  // the largest request body it takes (http.ini)
};
// Nullopt when config/http.ini does not exist or has no plain listener.
std::optional<CtlHttpTarget> ctl_http_target(const std::string& dir);

struct CtlHttpReply {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    const std::string* header(const std::string& lower_name) const;
};
// One request over a fresh connection; false with `err` when there is no answer, and
// `refused` set when nothing listens (kasi is not running).
bool ctl_http_request(const ListenAddr& a, const std::string& method, const std::string& path,
                      const std::string& content_type, const std::string& body, CtlHttpReply& out,
                      std::string& err, bool* refused = nullptr);
// An error answer's {"error": {"message": ...}} as "MESSAGE (FIELD)", else the body.
std::string ctl_http_error_text(const CtlHttpReply& r);

// A JSON answer of the running kasi: GET `http_path` of the admin API when http.ini has a
// plain listener, else `socket_line` over the control socket (its answer "ok JSON").
// nullopt when kasi is not running; "" with `err` when it answered with an error.
std::optional<std::string> ctl_ask_json(const std::string& dir, const std::string& spool,
                                        const std::string& http_path,
                                        const std::string& socket_line, std::string& err);

}  // namespace kasi
