// The deliveries waiting in one ready queue, in the order its connections take them:
// engagement priority first, without starving the rest.
//
// A message carries a priority in its transaction note `priority` — `high`, `normal` (the
// default) or `low` — set by a policy from what the application knows (engagement: a
// recent opener goes first) or by the HTTP API's `priority` field. The queue keeps one FIFO
// per level. While several levels wait, every 7 deliveries taken are 4 high, 2 normal and
// 1 low, in the fixed turn H N H L H N H; a level with nothing waiting gives its turn to the
// highest level that has something. So high-priority mail overtakes the rest, and low mail
// still gets a seventh of the connections' turns however much high mail arrives. Within a
// level the oldest goes first; a delivery put back (its connection closed) goes first in
// its level again.
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/queue/queued_message.h"

namespace kasi {

// 0 high, 1 normal, 2 low: the note `priority` of the message (anything else is normal).
int delivery_priority(const QueuedMessage& m);
// -1 when it is none of high, normal, low (inline: the HTTP API's reader checks it too)
inline int parse_priority(std::string_view text) {
    return text == "high" ? 0 : text == "normal" ? 1 : text == "low" ? 2 : -1;
}

class DeliveryQueue {
  public:
    void push_back(std::unique_ptr<Delivery> d);
    void push_front(std::unique_ptr<Delivery> d);  // put back: first in its level
    std::unique_ptr<Delivery> take();              // the next by the turn; null if empty
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    // Takes out every delivery `pred` selects, in level order.
    std::vector<std::unique_ptr<Delivery>> take_if(
        const std::function<bool(const Delivery&)>& pred);
    std::vector<std::unique_ptr<Delivery>> take_all();

  private:
    std::array<std::deque<std::unique_ptr<Delivery>>, 3> levels_;
    size_t size_ = 0;
    unsigned turn_ = 0;
};

}  // namespace kasi
