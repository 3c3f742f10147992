// Builds the queue's compact messages while the spool is being recovered (Spool::open's
// on_live), so that a restart never holds the spool's full snapshot and the queue at the
// same time. The QueueManager then schedules what it built.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/queue/queued_message.h"
#include "core/spool/spool_reader.h"

namespace kasi {

class QueueLoader {
  public:
    struct Item {
        std::shared_ptr<QueuedMessage> msg;
        int64_t next_due_ms = 0;
    };

    void add(SpooledMessage& sm);  // takes the strings out of `sm`
    std::vector<Item>& items() { return items_; }

  private:
    std::shared_ptr<const std::string> intern(const std::string& s);

    std::vector<Item> items_;
    std::unordered_map<std::string, std::shared_ptr<const std::string>> intern_;
};

}  // namespace kasi
