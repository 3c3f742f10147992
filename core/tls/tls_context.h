// Server-side TLS identities: the default certificate (tls.ini key/cert) and the SNI
// certificates found in config/tls/, each in its own SSL_CTX, chosen per connection from
// the ClientHello's server name (exact name first, then a *.parent wildcard).
//
// Built once per config generation and shared read-only by every loop; OpenSSL's SSL_CTX
// is safe to use from several threads once configured. TLS 1.2 is the floor, whatever
// the config says.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/diagnostics.h"
#include "core/tls/ssl_ptr.h"

namespace kasi {

struct TlsKeyCert {
    std::string key_path, cert_path;  // the same file for a PEM bundle
    std::string origin;               // "file:line" of the setting, for errors
};

struct TlsServerOptions {
    std::vector<TlsKeyCert> identities;  // the default identity (RSA and/or ECDSA pair)
    std::string sni_dir;                 // config/tls; empty = none
    std::string dhparam_path;            // optional: PEM DH parameters (FFDHE suites)
    std::string ciphers;                 // TLS 1.2 cipher list; empty = OpenSSL's default
    std::string ciphersuites;            // TLS 1.3 suites; empty = OpenSSL's default
    int min_version = 0;                 // TLS1_2_VERSION or TLS1_3_VERSION
    bool honor_cipher_order = true;
    bool request_cert = false;         // ask clients for a certificate
    bool reject_unauthorized = false;  // with request_cert: refuse unverified client certs
    std::string ca_path;               // CAs for client certificates
};

class TlsServerContext {
  public:
    // Loads everything; problems go to `d` with the file that caused them. Null on error.
    static std::shared_ptr<TlsServerContext> build(const TlsServerOptions& o, Diagnostics& d,
                                                   const std::string& ini_path);

    SSL_CTX* default_ctx() const { return default_.get(); }
    SSL_CTX* for_name(const std::string& server_name) const;  // null if no SNI match
    std::vector<std::string> names() const;                   // indexed SNI names (tests, logs)

  private:
    bool configure(SSL_CTX* ctx, const TlsServerOptions& o, Diagnostics& d,
                   const std::string& ini_path);
    void load_sni_dir(const TlsServerOptions& o, Diagnostics& d, const std::string& ini_path);

    SslCtxPtr default_;
    std::vector<SslCtxPtr> sni_ctxs_;
    std::map<std::string, SSL_CTX*> by_name_;  // lower-case names and "*.suffix" wildcards
};

// Names (CN and DNS SANs, lower-case) a certificate is valid for.
std::vector<std::string> certificate_names(X509* cert);

}  // namespace kasi
