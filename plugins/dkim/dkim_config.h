// What the dkim plugin signs with: dkim.ini and the key directories, read once per config
// generation (start and reload) and shared read-only by every loop.
//
//   dkim.ini [sign]     enabled, selector, domain, headers (Haraka's), plus Kasi's
//                       canonicalization, oversign, timestamp, expire, also
//            [canon]    body (Haraka's; header canonicalization is relaxed there)
//            [domain:D] per signing domain: canonicalization, headers, oversign,
//                       timestamp, expire, selectors (which keys sign), also
//   dkim/<domain>/private + selector   Haraka's per-domain key
//   dkim/<domain>/<selector>.private   further keys (Ed25519 beside RSA, rotation)
//   dkim.private.key                   the fallback key ([sign] domain and selector)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config_dir.h"
#include "plugins/dkim/signer.h"

namespace kasi::dkim {

struct DomainKey {
    std::string selector, path;
    std::shared_ptr<const PrivateKey> key;
};

struct SignPolicy {
    Canon header = Canon::relaxed, body = Canon::relaxed;
    std::vector<std::string> headers, oversign;  // lowercase
    bool timestamp = true;
    int64_t expire_s = 0;
    std::vector<std::string> selectors;  // empty: every key of the domain
    std::vector<std::string> also;       // further signing domains (an ESP's own)
};

class DkimConfig {
  public:
    // Reads everything; problems go to `d` naming file and line. Returns null when signing
    // is disabled ([sign] enabled=false).
    static std::shared_ptr<const DkimConfig> load(const ConfigDir& cfg, Diagnostics& d);

    // The signatures for a message whose signing domain is `domain` (a From/Sender/envelope
    // domain or a policy's override): keys found by walking up the labels, else the
    // fallback key; then the `also` domains. `now` fills t= and x=.
    std::vector<SignSpec> plan(std::string_view domain, int64_t now, std::string& why) const;
    // Whether keys exist for exactly this domain (for the `also` list and overrides).
    bool has_domain(std::string_view domain) const { return keys_.count(std::string(domain)); }

  private:
    const std::vector<DomainKey>* keys_for(std::string_view domain, std::string& found) const;
    const SignPolicy& policy_for(const std::string& domain) const;
    void add_specs(const std::string& domain, const std::vector<DomainKey>& keys, int64_t now,
                   std::vector<SignSpec>& out) const;

    std::map<std::string, std::vector<DomainKey>, std::less<>> keys_;
    std::string fallback_domain_;
    std::vector<DomainKey> fallback_;
    SignPolicy defaults_;
    std::map<std::string, SignPolicy, std::less<>> per_domain_;
};

}  // namespace kasi::dkim
