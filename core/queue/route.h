// A route: how to reach one destination from one egress source — the hosts and their
// addresses, the EHLO name and local address, TLS, LMTP and credentials. The router
// (router.h) builds one from an MX lookup or from a get_mx hook's next hops; the ready
// queue (ready_queue.h) its connections follow it. Routes that differ in what a connection
// does get different ready queues: queue_key() says which.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/dns/mx.h"
#include "core/queue/egress.h"
#include "core/queue/outbound_config.h"
#include "core/smtp/client/smtp_client.h"

namespace kasi {

struct NextHop;  // core/hooks/plugin.h

struct Route {
    std::string source = "default";
    std::string site;  // canonical: sorted MX host names, or "[ip]:port" for a literal
    std::vector<std::string> mx_hosts;
    std::vector<Endpoint> endpoints;
    std::string helo;
    std::optional<IpAddr> bind;
    bool lmtp = false;
    std::string auth_user, auth_pass;
    bool auth_allow_cleartext = false;
    TlsMode tls = TlsMode::opportunistic;
};

// "source->site", plus the TLS mode when it is not opportunistic, and the credentials' user
// and whether they may go in clear: a ready queue delivers with its first route's settings,
// so routes that differ in these must not share one (the password is not in the key: the
// key is shown by kasictl queue). `source` is the egress source the route will have.
std::string queue_key(const Route& r, const std::string& source);
inline std::string queue_key(const Route& r) {
    return queue_key(r, r.source);
}

// The route to `domain` from its MX lookup (r.kind == ok), before any egress source.
Route route_for_mx(const std::string& domain, const MxResult& r, const OutboundConfig& cfg,
                   const std::string& me);
// The route to a get_mx hook's next hops, resolved in `r` (each host's tag is its index in
// `hops`), from egress source `src` (null: the default) unless the first hop names its own
// local address or EHLO name.
Route route_for_hops(const std::vector<NextHop>& hops, const MxResult& r, const EgressSource* src,
                     const OutboundConfig& cfg, const std::string& me);
// The source's address and EHLO name on `r`, unless a next hop chose them.
void apply_source(Route& r, const EgressSource& s, bool hop_bind = false, bool hop_helo = false);

}  // namespace kasi
