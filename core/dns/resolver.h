// An asynchronous stub resolver on one libuv loop: UDP to the configured recursive
// resolvers, TCP when an answer is truncated, a timeout per try and the next server on
// the next try, identical queries in flight coalesced, answers cached (dns_cache.h).
//
// Packets that do not answer an outstanding query exactly (wrong source, id or question)
// are dropped and counted; they never complete a query. An answer to the query that is
// broken (dns_message.h) is MALFORMED: logged, counted, and like SERVFAIL it moves on to
// the next try; it is never cached. Callbacks run
// on the loop, possibly before query() returns (cache hits). Destroying the resolver
// drops pending queries without calling their callbacks.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "core/dns/dns_cache.h"
#include "core/dns/dns_config.h"
#include "core/dns/dns_message.h"

namespace kasi {

struct DnsStats {
    uint64_t queries = 0, cache_hits = 0, udp_sent = 0, tcp_fallbacks = 0, timeouts = 0,
             ignored_packets = 0, malformed = 0;
};

class Resolver {
  public:
    using Callback = std::function<void(const DnsResponse&)>;

    Resolver(uv_loop_t* loop, DnsConfig cfg);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    void query(const std::string& name, DnsType type, Callback cb);
    const DnsStats& stats() const;
    const DnsConfig& config() const;
    DnsCache& cache();

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace kasi
