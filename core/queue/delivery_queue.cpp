#include "core/queue/delivery_queue.h"

namespace kasi {

namespace {
constexpr int turns[] = {0, 1, 0, 2, 0, 1, 0};  // H N H L H N H
}

int delivery_priority(const QueuedMessage& m) {
    const std::string* p = m.note("priority");
    int level = p ? parse_priority(*p) : 1;
    return level < 0 ? 1 : level;
}

void DeliveryQueue::push_back(std::unique_ptr<Delivery> d) {
    int level = delivery_priority(*d->msg);
    levels_[size_t(level)].push_back(std::move(d));
    ++size_;
}

void DeliveryQueue::push_front(std::unique_ptr<Delivery> d) {
    int level = delivery_priority(*d->msg);
    levels_[size_t(level)].push_front(std::move(d));
    ++size_;
}

std::unique_ptr<Delivery> DeliveryQueue::take() {
    if (size_ == 0) return nullptr;
    int level = turns[turn_++ % std::size(turns)];
    if (levels_[size_t(level)].empty())
        for (level = 0; levels_[size_t(level)].empty(); ++level) {
        }
    auto d = std::move(levels_[size_t(level)].front());
    levels_[size_t(level)].pop_front();
    --size_;
    return d;
}

std::vector<std::unique_ptr<Delivery>> DeliveryQueue::take_if(
    const std::function<bool(const Delivery&)>& pred) {
    std::vector<std::unique_ptr<Delivery>> out;
    for (auto& q : levels_)
        for (auto it = q.begin(); it != q.end();) {
            if (pred(**it)) {
                out.push_back(std::move(*it));
                it = q.erase(it);
                --size_;
            } else {
                ++it;
            }
        }
    return out;
}

std::vector<std::unique_ptr<Delivery>> DeliveryQueue::take_all() {
    return take_if([](const Delivery&) { return true; });
}

}  // namespace kasi
