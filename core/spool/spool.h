// The spool: the directory named by config/queue_dir, owned by one kasi process (an
// exclusive flock on DIR/lock). Opening it recovers what a previous run left: unfinished
// tails are cut off (they were never acknowledged), the journal is replayed, finished
// segments are removed and the live state is compacted into a fresh journal segment.
// After that, every write goes through the group-commit writer (writer.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/spool/envelope.h"
#include "core/spool/spool_reader.h"
#include "core/spool/writer.h"

namespace kasi {

class Spool {
  public:
    ~Spool();

    bool open(const std::string& dir, std::string& err);
    void close();
    const std::string& dir() const { return dir_; }
    const SpoolSnapshot& recovered() const { return recovered_; }

    // `done` runs on the writer thread once the record is durable (or failed).
    void submit_message(const Envelope& env, std::string body,
                        std::function<void(const SpoolResult&)> done);
    void submit_state(const StateUpdate& u, std::function<void(const SpoolResult&)> done);
    SpoolWriter::Stats stats() { return writer_ ? writer_->stats() : SpoolWriter::Stats{}; }

  private:
    bool recover(std::string& err);

    std::string dir_;
    int lock_fd_ = -1;
    SpoolSnapshot recovered_;
    std::unique_ptr<SpoolWriter> writer_;
};

}  // namespace kasi
