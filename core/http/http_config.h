// config/http.ini: the HTTP API's listeners, limits and who may use it.
//
//   [main]  listen = 127.0.0.1:8025, [::1]:8025   plain HTTP/1.1 (none: the API is off)
//           listen_tls = 0.0.0.0:8443              HTTPS with [tls] key/cert (or tls.ini's)
//           max_header_bytes, max_body_bytes, max_batch_bytes, max_batch_messages,
//           batch_sessions, max_recipients, idle_timeout, request_timeout, metrics_queues,
//           max_connections
//   [auth]  trusted = 127.0.0.1, 10.0.0.0/8       CIDRs allowed every scope without a token
//           public = /health                      paths anyone may GET
//           tokens = http_tokens                  the token file (config/http_tokens)
//   [tls]   key = tls_key.pem, cert = tls_cert.pem (relative to config/)
//
// Tokens are never stored in clear: config/http_tokens has one "NAME SCOPES SHA256HEX" line
// per token (scopes: send, admin, metrics, comma-separated; `kasictl http token` makes one).
// A request carries "Authorization: Bearer TOKEN"; its SHA-256 is compared in constant time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/util/ip.h"

namespace kasi {

class TlsServerContext;

enum HttpScope : unsigned { scope_send = 1, scope_admin = 2, scope_metrics = 4, scope_all = 7 };

struct HttpToken {
    std::string name;
    std::string sha256;  // 32 raw bytes
    unsigned scopes = 0;
};

struct HttpConfig {
    std::vector<ListenAddr> listen;  // implicit_tls marks the listen_tls ones
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 16 * 1024 * 1024;   // /api/v1/send and the admin endpoints
    size_t max_batch_bytes = 64 * 1024 * 1024;  // /api/v1/send/batch
    size_t max_batch_messages = 1000;
    size_t batch_sessions = 16;      // local SMTP sessions a batch is spread over
    size_t max_recipients = 1000;    // per message (to + cc + bcc)
    int idle_timeout_s = 60;         // keep-alive connection without a request
    int request_timeout_s = 60;      // to receive one whole request
    size_t metrics_queues = 20;      // per-queue series for the busiest N (+ "other")
    int64_t max_connections = 1000;  // open API connections, all listeners together
    CidrList trusted;
    std::vector<std::string> public_paths{"/health"};
    std::vector<HttpToken> tokens;
    std::shared_ptr<TlsServerContext> tls;  // for listen_tls

    // Null when config/http.ini does not exist (the API is off). Errors go to `d`.
    static std::shared_ptr<const HttpConfig> load(const ConfigDir& cfg, Diagnostics& d);

    // The scopes a request from `ip` with `bearer` (may be empty) has; 0 for none.
    unsigned scopes_for(const IpAddr& ip, std::string_view bearer, std::string* who) const;
};

// "name scopes sha256hex" for a new token; `token` gets the secret (43 base64url chars).
std::string make_http_token_line(const std::string& name, unsigned scopes, std::string& token);
// "send,admin" -> bits; 0 on an unknown scope.
unsigned parse_http_scopes(std::string_view text);

}  // namespace kasi
