#include "core/spool/intake.h"

#include "core/metrics/metrics.h"
#include "core/util/clock.h"

namespace kasi {

void Intake::submit(Envelope env, std::string body, bool via_http,
                    std::function<void(const SpoolResult&)> done) {
    env.received_ms = now_ms();
    if (auto it = env.notes.find("tenant"); it != env.notes.end()) env.tenant = it->second;
    if (auto it = env.notes.find("campaign"); it != env.notes.end()) env.campaign = it->second;
    // Prepared now, handed over as soon as the message is durable: the queue must get it
    // even if the client is gone by then.
    MessageSink::Durable handoff = sink_ ? sink_->prepare(env, body.size()) : nullptr;
    size_t rcpts = env.rcpts.size();
    spool_.submit_message(env, std::move(body),
                          [handoff = std::move(handoff), rcpts, via_http,
                           done = std::move(done)](const SpoolResult& r) {
                              if (r.err == 0) {
                                  auto& cm = CoreMetrics::global();
                                  (via_http ? cm.received_http : cm.received_smtp)
                                      .fetch_add(1, std::memory_order_relaxed);
                                  cm.recipients_received.fetch_add(rcpts,
                                                                   std::memory_order_relaxed);
                                  if (handoff) handoff(r);
                              }
                              done(r);
                          });
}

}  // namespace kasi
