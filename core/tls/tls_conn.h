// One TLS session over memory BIOs, independent of any socket: the owner feeds it the
// bytes read from the network and sends what take_output() returns. This keeps libuv in
// charge of I/O (no blocking, no fd handed to OpenSSL) and serves both the SMTP server
// (STARTTLS, implicit TLS) and, later, the SMTP client.
//
// Plaintext written before the handshake has finished is held back and encrypted as soon
// as it completes (an implicit-TLS banner, say).
#pragma once

#include <string>
#include <string_view>

#include "core/tls/ssl_ptr.h"

namespace kasi {

class TlsConn {
  public:
    enum class Role { server, client };
    TlsConn(SSL_CTX* ctx, Role role, const std::string& sni_name = {});

    // Ciphertext from the peer in; decrypted application data appended to `plain`.
    // False on a fatal TLS error (error() says why); the connection must then be closed.
    bool feed(const char* data, size_t n, std::string& plain);
    // Plaintext out; the ciphertext is collected for take_output().
    bool write(std::string_view plain);
    // Queues a close_notify alert.
    void shutdown();
    // Ciphertext to send to the peer (handshake messages, records, alerts).
    std::string take_output();

    bool handshake_done() const { return done_; }
    bool peer_closed() const { return peer_closed_; }
    const std::string& error() const { return error_; }
    std::string version() const;  // "TLSv1.3"
    std::string cipher() const;   // "TLS_AES_256_GCM_SHA384"
    std::string server_name() const;
    bool peer_cert_verified() const;  // a client certificate that verified
    SSL* ssl() { return ssl_.get(); }

  private:
    bool handshake();
    bool fail(const char* what, int rc);

    SslPtr ssl_;
    BIO* in_ = nullptr;   // owned by ssl_
    BIO* out_ = nullptr;  // owned by ssl_
    bool done_ = false;
    bool peer_closed_ = false;
    std::string held_;  // plaintext written before the handshake finished
    std::string error_;
};

}  // namespace kasi
