#include "core/queue/delivery_context.h"

#include "core/dns/resolver.h"
#include "core/spool/spool.h"

namespace kasi {

DeliveryContext::DeliveryContext(uv_loop_t* l, Spool& spool, QueueSettings s)
    : loop(l),
      spool_dir(spool.dir()),
      settings(std::move(s)),
      resolver(std::make_shared<Resolver>(l, settings.cfg->dns)),
      bodies(l, spool.dir()),
      journal(spool),
      hooks(l, settings.hooks, resolver) {}

DeliveryContext::~DeliveryContext() {
    *alive = false;
}

void DeliveryContext::set_settings(QueueSettings s) {
    bool dns_changed = s.cfg->dns.servers.size() != settings.cfg->dns.servers.size();
    settings = std::move(s);
    if (dns_changed) resolver = std::make_shared<Resolver>(loop, settings.cfg->dns);
}

std::shared_ptr<const std::string> DeliveryContext::intern(std::string s) {
    auto it = intern_.find(s);
    if (it != intern_.end()) return it->second;
    if (intern_.size() >= 1024) intern_.clear();  // holders keep their strings alive
    auto p = std::make_shared<const std::string>(s);
    intern_.emplace(std::move(s), p);
    return p;
}

}  // namespace kasi
