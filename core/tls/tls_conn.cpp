#include "core/tls/tls_conn.h"

#include <openssl/err.h>

#include <fmt/format.h>

namespace kasi {

TlsConn::TlsConn(SSL_CTX* ctx, Role role, const std::string& sni_name) : ssl_(SSL_new(ctx)) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);  // an empty input BIO means "wait", not EOF
    SSL_set_bio(ssl_.get(), in_, out_);
    if (role == Role::server) {
        SSL_set_accept_state(ssl_.get());
    } else {
        if (!sni_name.empty()) SSL_set_tlsext_host_name(ssl_.get(), sni_name.c_str());
        SSL_set_connect_state(ssl_.get());
        handshake();  // produces the ClientHello
    }
}

bool TlsConn::fail(const char* what, int rc) {
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    if (err == SSL_ERROR_ZERO_RETURN) {
        peer_closed_ = true;
        return true;
    }
    if (error_.empty())
        error_ = fmt::format(
            "{}: {}", what,
            ssl_errors(err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "protocol error"));
    ERR_clear_error();
    return false;
}

bool TlsConn::handshake() {
    int rc = SSL_do_handshake(ssl_.get());
    if (rc == 1) {
        done_ = true;
        if (!held_.empty()) {
            std::string h;
            h.swap(held_);
            return write(h);
        }
        return true;
    }
    return fail("handshake", rc);
}

bool TlsConn::feed(const char* data, size_t n, std::string& plain) {
    if (!error_.empty()) return false;
    while (n > 0) {
        int w = BIO_write(in_, data, int(std::min<size_t>(n, 1 << 30)));
        if (w <= 0) return false;
        data += w;
        n -= size_t(w);
    }
    if (!done_ && !handshake()) return false;
    if (!done_) return true;
    char buf[16384];
    for (;;) {
        int r = SSL_read(ssl_.get(), buf, sizeof buf);
        if (r > 0) {
            plain.append(buf, size_t(r));
            continue;
        }
        return fail("read", r);
    }
}

bool TlsConn::write(std::string_view plain) {
    if (!error_.empty()) return false;
    if (!done_) {
        held_.append(plain);
        return true;
    }
    while (!plain.empty()) {
        int w = SSL_write(ssl_.get(), plain.data(), int(std::min<size_t>(plain.size(), 1 << 30)));
        if (w <= 0) {
            fail("write", w);
            return false;
        }
        plain.remove_prefix(size_t(w));
    }
    return true;
}

void TlsConn::shutdown() {
    if (done_ && error_.empty()) SSL_shutdown(ssl_.get());
    ERR_clear_error();
}

std::string TlsConn::take_output() {
    std::string out;
    size_t pending = BIO_ctrl_pending(out_);
    if (pending == 0) return out;
    out.resize(pending);
    int r = BIO_read(out_, out.data(), int(pending));
    out.resize(r > 0 ? size_t(r) : 0);
    return out;
}

std::string TlsConn::version() const {
    return SSL_get_version(ssl_.get());
}

std::string TlsConn::cipher() const {
    const char* c = SSL_get_cipher_name(ssl_.get());
    return c ? c : "";
}

std::string TlsConn::server_name() const {
    const char* n = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
    return n ? n : "";
}

bool TlsConn::peer_cert_verified() const {
    X509* peer = SSL_get0_peer_certificate(ssl_.get());
    return peer && SSL_get_verify_result(ssl_.get()) == X509_V_OK;
}

}  // namespace kasi
