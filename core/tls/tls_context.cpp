#include "core/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

int accept_any_client_cert(int, X509_STORE_CTX*) {
    return 1;  // requestCert without rejectUnauthorized: ask, record, never refuse
}

int on_servername(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;
    auto* self = static_cast<TlsServerContext*>(arg);
    SSL_CTX* ctx = self->for_name(name);
    if (ctx && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::vector<std::string> certificate_names(X509* cert) {
    std::vector<std::string> names;
    if (!cert) return names;
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type != GEN_DNS) continue;
            const auto* s = gn->d.dNSName;
            names.push_back(
                lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  size_t(ASN1_STRING_length(s)))));
        }
        GENERAL_NAMES_free(sans);
    }
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
        std::string c = lower(cn);
        if (std::find(names.begin(), names.end(), c) == names.end()) names.push_back(c);
    }
    return names;
}

bool TlsServerContext::configure(SSL_CTX* ctx, const TlsServerOptions& o, Diagnostics& d,
                                 const std::string& ini_path) {
    bool ok = true;
    SSL_CTX_set_min_proto_version(ctx, std::max(o.min_version, int(TLS1_2_VERSION)));
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (o.honor_cipher_order) opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(ctx, opts);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) {
        d.error(ini_path, 0,
                fmt::format("ciphers '{}': {}", o.ciphers, ssl_errors("no usable cipher")));
        ok = false;
    }
    if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1) {
        d.error(
            ini_path, 0,
            fmt::format("ciphersuites '{}': {}", o.ciphersuites, ssl_errors("no usable suite")));
        ok = false;
    }
    if (!o.dhparam_path.empty()) {
        BioPtr bio(BIO_new_file(o.dhparam_path.c_str(), "r"));
        EVP_PKEY* dh = bio ? PEM_read_bio_Parameters(bio.get(), nullptr) : nullptr;
        if (!dh || SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
            if (dh) EVP_PKEY_free(dh);
            d.error(ini_path, 0,
                    fmt::format("dhparam {}: {}", o.dhparam_path, ssl_errors("cannot read")));
            ok = false;
        }
    } else {
        SSL_CTX_set_dh_auto(ctx, 1);
    }
    static const unsigned char sid_ctx[] = "kasi-smtp";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (o.request_cert) {
        int mode = SSL_VERIFY_PEER;
        if (o.reject_unauthorized) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, o.reject_unauthorized ? nullptr : accept_any_client_cert);
        int rc = o.ca_path.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                   : SSL_CTX_load_verify_locations(ctx, o.ca_path.c_str(), nullptr);
        if (rc != 1) {
            d.error(ini_path, 0, fmt::format("CA file {}: {}", o.ca_path, ssl_errors()));
            ok = false;
        }
    }
    return ok;
}

namespace {

// Loads one key/cert pair into ctx; returns false (with an error naming the files).
bool load_identity(SSL_CTX* ctx, const TlsKeyCert& kc, Diagnostics& d) {
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, kc.cert_path.c_str()) != 1) {
        d.error(kc.origin, 0,
                fmt::format("certificate {}: {}", kc.cert_path, ssl_errors("cannot load")));
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, kc.key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
        d.error(kc.origin, 0,
                fmt::format("private key {}: {}", kc.key_path, ssl_errors("cannot load")));
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        d.error(
            kc.origin, 0,
            fmt::format("private key {} does not match certificate {}", kc.key_path, kc.cert_path));
        ERR_clear_error();
        return false;
    }
    return true;
}

}  // namespace

void TlsServerContext::load_sni_dir(const TlsServerOptions& o, Diagnostics& d,
                                    const std::string& ini_path) {
    std::error_code ec;
    if (o.sni_dir.empty() || !fs::is_directory(o.sni_dir, ec)) return;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(o.sni_dir, ec))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.')
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    // A file with both a key and a certificate is a bundle; otherwise a key and a
    // certificate sharing a stem (example.com.key + example.com.crt) form a pair.
    std::vector<TlsKeyCert> ids;
    std::map<std::string, TlsKeyCert> halves;
    for (const auto& p : files) {
        std::string text;
        if (!read_whole_file(p.string(), text)) {
            d.error(p.string(), 0, "cannot read");
            continue;
        }
        bool has_key = text.find("PRIVATE KEY-----") != std::string::npos;
        bool has_cert = text.find("BEGIN CERTIFICATE-----") != std::string::npos;
        if (has_key && has_cert) {
            ids.push_back({p.string(), p.string(), p.string()});
        } else if (has_key || has_cert) {
            auto& h = halves[p.stem().string()];
            (has_key ? h.key_path : h.cert_path) = p.string();
            h.origin = p.string();
        } else {
            d.warn(p.string(), 0, "neither a PEM private key nor a certificate; ignored");
        }
    }
    for (auto& [stem, h] : halves) {
        if (h.key_path.empty() || h.cert_path.empty()) {
            d.warn(h.origin, 0,
                   fmt::format("'{}' has no matching {} file; ignored", stem,
                               h.key_path.empty() ? "private key" : "certificate"));
            continue;
        }
        ids.push_back(h);
    }
    for (const auto& id : ids) {
        SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
        if (!configure(ctx.get(), o, d, ini_path) || !load_identity(ctx.get(), id, d)) continue;
        for (const auto& n : certificate_names(SSL_CTX_get0_certificate(ctx.get())))
            by_name_.emplace(n, ctx.get());
        sni_ctxs_.push_back(std::move(ctx));
    }
}

std::shared_ptr<TlsServerContext> TlsServerContext::build(const TlsServerOptions& o, Diagnostics& d,
                                                          const std::string& ini_path) {
    auto self = std::make_shared<TlsServerContext>();
    size_t errors_before = d.errors.size();
    self->load_sni_dir(o, d, ini_path);
    self->default_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* def = self->default_.get();
    self->configure(def, o, d, ini_path);
    if (!o.identities.empty()) {
        for (const auto& id : o.identities) load_identity(def, id, d);
    } else if (!self->sni_ctxs_.empty()) {
        // No default pair: the first SNI certificate answers clients that name no host.
        SSL_CTX* first = self->sni_ctxs_.front().get();
        SSL_CTX_use_certificate(def, SSL_CTX_get0_certificate(first));
        SSL_CTX_use_PrivateKey(def, SSL_CTX_get0_privatekey(first));
    } else {
        d.error(ini_path, 0,
                "no certificate: neither the key/cert files of [main] nor any in config/tls/");
    }
    SSL_CTX_set_tlsext_servername_callback(def, on_servername);
    SSL_CTX_set_tlsext_servername_arg(def, self.get());
    if (d.errors.size() != errors_before) return nullptr;
    return self;
}

SSL_CTX* TlsServerContext::for_name(const std::string& server_name) const {
    std::string n = lower(server_name);
    if (!n.empty() && n.back() == '.') n.pop_back();
    if (auto it = by_name_.find(n); it != by_name_.end()) return it->second;
    auto dot = n.find('.');
    if (dot != std::string::npos) {
        if (auto it = by_name_.find("*" + n.substr(dot)); it != by_name_.end()) return it->second;
    }
    return nullptr;
}

std::vector<std::string> TlsServerContext::names() const {
    std::vector<std::string> v;
    for (const auto& [n, c] : by_name_) v.push_back(n);
    return v;
}

}  // namespace kasi
