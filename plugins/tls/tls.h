// tls: STARTTLS (RFC 3207) and implicit TLS on the smtps port, as Haraka's tls plugin.
//   tls.ini [main] key, cert (tls_key.pem / tls_cert.pem; key[]=/cert[]= for an RSA and an
//                  ECDSA pair), dhparam, ciphers (TLS 1.2), ciphersuites (TLS 1.3),
//                  minVersion (TLSv1.2 | TLSv1.3; nothing lower), honorCipherOrder (true),
//                  requestCert (false), rejectUnauthorized (false), ca, no_starttls_ports[],
//                  handshake_timeout (seconds, 30)
//           [no_tls_hosts] CIDRs never offered STARTTLS
//   config/tls/  PEM bundles (key + chain in one file) or key/cert pairs sharing a name,
//                chosen by SNI from their CN and DNS SANs.
// STARTTLS is advertised only when a certificate loaded, the session is not TLS yet, and
// neither the client nor the local port is excluded. The upgrade resets the session
// (EHLO again). Failed handshakes are logged with the reason and the connection closed.
#pragma once

#include <memory>

#include "core/config/config_dir.h"
#include "core/config/settings.h"
#include "core/hooks/plugin.h"

namespace kasi {

std::shared_ptr<Plugin> make_tls_plugin(const ConfigDir& cfg, const Settings& s, Diagnostics& d,
                                        HookTable& table, uint32_t timeout_ms);

}  // namespace kasi
