// A ready queue's waiting deliveries by engagement priority (delivery_queue.h): high first,
// normal and low still get their turns, oldest first within a level, put-back first.
#include "core/queue/delivery_queue.h"

#include <catch2/catch.hpp>

#include <string>

using namespace kasi;

namespace {

std::unique_ptr<Delivery> delivery(const std::string& id, const char* priority) {
    auto m = std::make_shared<QueuedMessage>();
    m->id = id;
    if (priority) m->more().notes.emplace_back("priority", priority);
    auto d = std::make_unique<Delivery>();
    d->msg = m;
    return d;
}

std::string order(DeliveryQueue& q, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i)
        if (auto d = q.take()) out += d->msg->id;
    return out;
}

}  // namespace

TEST_CASE("delivery queue: high goes first, normal and low keep their turns") {
    DeliveryQueue q;
    for (int i = 0; i < 8; ++i) q.push_back(delivery("h", "high"));
    for (int i = 0; i < 4; ++i) q.push_back(delivery("n", nullptr));
    for (int i = 0; i < 2; ++i) q.push_back(delivery("l", "low"));
    CHECK(q.size() == 14);
    CHECK(order(q, 7) == "hnhlhnh");  // 4 : 2 : 1
    CHECK(order(q, 7) == "hnhlhnh");
    CHECK(q.empty());
    CHECK_FALSE(q.take());
}

TEST_CASE("delivery queue: an empty level gives its turn, oldest first within a level") {
    DeliveryQueue q;
    q.push_back(delivery("a", "low"));
    q.push_back(delivery("b", "low"));
    q.push_back(delivery("c", "bogus"));  // anything else is normal
    CHECK(order(q, 3) == "cab");
    q.push_back(delivery("x", "normal"));
    q.push_back(delivery("y", "normal"));
    q.push_front(delivery("z", "normal"));  // put back: first in its level
    CHECK(order(q, 3) == "zxy");
}

TEST_CASE("delivery queue: take_if takes what it selects from every level") {
    DeliveryQueue q;
    q.push_back(delivery("h1", "high"));
    q.push_back(delivery("n1", nullptr));
    q.push_back(delivery("l1", "low"));
    auto out =
        q.take_if([](const Delivery& d) { return d.msg->id.back() == '1' && d.msg->id[0] != 'n'; });
    CHECK(out.size() == 2);
    CHECK(q.size() == 1);
    CHECK(q.take_all().size() == 1);
    CHECK(q.empty());
    CHECK(parse_priority("high") == 0);
    CHECK(parse_priority("urgent") == -1);
}
