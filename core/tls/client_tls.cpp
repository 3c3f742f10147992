#include "core/tls/client_tls.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

namespace kasi {

SslCtxPtr make_client_tls_ctx(const std::string& ca_file, std::string& err) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        err = "SSL_CTX_new failed: " + ssl_errors();
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // per connection where required
    int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                             : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
    if (ok != 1) {
        err = fmt::format("loading CA certificates{}{}: {}", ca_file.empty() ? "" : " from ",
                          ca_file, ssl_errors());
        return nullptr;
    }
    return ctx;
}

}  // namespace kasi
