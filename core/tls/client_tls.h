// The TLS client context Kasi connects out with (outbound STARTTLS, and HTTPS from Lua's
// kasi.http): TLS 1.2 or later, the system's CAs (or `ca_file`) loaded for verification,
// which each connection turns on where it is required (force_tls_hosts, HTTPS).
#pragma once

#include <string>

#include "core/tls/ssl_ptr.h"

namespace kasi {

// Null on failure, with the reason in `err`.
SslCtxPtr make_client_tls_ctx(const std::string& ca_file, std::string& err);

}  // namespace kasi
