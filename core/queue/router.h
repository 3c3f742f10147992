// The router: a due delivery (from the scheduler, scheduler.h) gets its egress source and
// its route, and goes to the ready queue for them (ready_queues.h):
//
//   egress source   get_egress, else the pools of egress.ini (egress.h)
//   route           get_mx's next hops (smarthosts, LMTP), else the MX lookup, cached per
//                   domain for 60 s (10 s for a temporary error)
//
// A message that came to a report mailbox goes to the report transport instead
// (report_transport.h): Kasi reads it, nothing leaves.
// A delivery that cannot be routed (no MX, a DNS error, a policy's refusal) goes straight
// to the outcome stage (outcome.h) with the reply that says why: 5xx bounces, 4xx defers.
// Routes are built in route.h.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/queue/delivery_context.h"
#include "core/queue/route.h"

namespace kasi {

class Outcome;
class ReadyQueues;
class ReportTransport;

class Router {
  public:
    Router(DeliveryContext& ctx, ReadyQueues& ready, ReportTransport& reports, Outcome& outcome)
        : ctx_(ctx), ready_(ready), reports_(reports), outcome_(outcome) {}

    void route(std::unique_ptr<Delivery> d);
    // Cached routes are looked up again (all of them, or `domain`'s): a reload, a flush.
    void forget_routes() { routes_.clear(); }
    void forget_route(const std::string& domain) { routes_.erase(domain); }

  private:
    struct RouteEntry {
        int64_t expires_ms = 0;
        bool ok = false;
        SmtpReply error;                     // when not ok
        std::shared_ptr<const Route> route;  // when ok; the egress source is applied at place()
    };

    std::unique_ptr<Delivery> drop_suppressed(std::unique_ptr<Delivery> d);
    void pick_from_pool(Delivery& d);
    void ask_get_egress(std::unique_ptr<Delivery> d);
    void ask_get_mx(std::unique_ptr<Delivery> d);
    void route_to_hops(std::unique_ptr<Delivery> d, std::vector<NextHop> hops);
    void route_by_dns(std::unique_ptr<Delivery> d);
    void mx_answered(const std::string& domain, MxResult r);
    // `sourced`: the route already has the delivery's egress source applied.
    void place(std::unique_ptr<Delivery> d, const RouteEntry& e, bool sourced = false);

    DeliveryContext& ctx_;
    ReadyQueues& ready_;
    ReportTransport& reports_;
    Outcome& outcome_;
    std::unordered_map<std::string, RouteEntry> routes_;  // by recipient domain
    // deliveries waiting for their domain's MX lookup (one lookup per domain)
    std::unordered_map<std::string, std::vector<std::unique_ptr<Delivery>>> resolving_;
    uint64_t egress_ticket_ = 0;  // spreads deliveries over a pool's sources by weight
};

}  // namespace kasi
