// Egress sources and pools (config/egress.ini). A source is a local address to send from,
// with its EHLO name and an optional region; a pool is a weighted set of sources. Which
// source a delivery leaves from is chosen per attempt: by a get_egress hook if one
// answers, else from the pool named by the message's `pool` note, else from pool
// "default", else from every source; with no source configured Kasi sends from the
// system's default address (source "default"), as before.
//
//   [source:eu1]
//   address=192.0.2.10
//   ehlo=eu1.mta.example.net     ; default: config/me
//   region=eu                    ; optional, for region pinning policies
//   warmup_start=2026-11-01      ; optional, for warm-up policies
//   [pool:default]
//   eu1=1                        ; source=weight
//   us1=3
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config/config_dir.h"
#include "core/config/diagnostics.h"
#include "core/util/ip.h"

namespace kasi {

struct EgressSource {
    std::string name;
    std::optional<IpAddr> address;
    std::string ehlo;  // "" = config/me
    std::string region;
    std::string warmup_start;  // YYYY-MM-DD: first day of the IP's warm-up (kasi/warmup.lua)
};

struct EgressPool {
    std::string name;
    std::vector<std::pair<std::string, int>> members;  // (source, weight)
};

struct EgressConfig {
    std::vector<EgressSource> sources;
    std::vector<EgressPool> pools;

    const EgressSource* source(std::string_view name) const;
    const EgressPool* pool(std::string_view name) const;
    // A source of `pool` (or of pool "default", or any source if there is no such pool)
    // picked by weight with `ticket` (any number; successive tickets spread evenly).
    // Null when no source is configured.
    const EgressSource* pick(std::string_view pool, uint64_t ticket) const;
};

EgressConfig load_egress_config(const ConfigDir& cfg, Diagnostics& d);

}  // namespace kasi
