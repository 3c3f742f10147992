// The spool: the directory named by config/queue_dir, owned by one kasi process (an
// exclusive flock on DIR/lock). Opening it recovers what a previous run left: unfinished
// tails are cut off (they were never acknowledged), the journal is replayed, finished
// segments are removed and the live state is compacted into a fresh journal segment.
// After that, every write goes through the group-commit writer (writer.h).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/spool/envelope.h"
#include "core/spool/spool_reader.h"
#include "core/spool/writer.h"

namespace kasi {

class Spool {
  public:
    ~Spool();

    // Recovery streams the spool: each unfinished message goes to `on_live` as it is read
    // (the queue builds its own compact form), or, without it, into recovered().messages.
    bool open(const std::string& dir, std::string& err,
              std::function<void(SpooledMessage&)> on_live = {});
    void close();
    const std::string& dir() const { return dir_; }
    const SpoolSnapshot& recovered() const { return recovered_; }
    // The message segment being appended to; lower ones are closed for good.
    uint64_t current_msg_segment() { return writer_ ? writer_->current_msg_seq() : 0; }

    // `done` runs on the writer thread once the record is durable (or failed).
    void submit_message(const Envelope& env, std::string body,
                        std::function<void(const SpoolResult&)> done);
    // `lazy`: delivery progress that may wait for a later sync (writer.h).
    void submit_state(const StateUpdate& u, std::function<void(const SpoolResult&)> done,
                      bool lazy = false, uint64_t ref_msg_seq = 0);
    // Told (on the writer thread) when a message segment is closed for good, with the
    // number of messages written to it.
    void set_rotate_listener(std::function<void(uint64_t seq, uint64_t messages)> fn);
    // Told when a journal segment is closed for good, with the message segments its
    // records refer to: it may be deleted once all of those are.
    void set_meta_listener(std::function<void(uint64_t seq, std::vector<uint64_t> refs)> fn);
    void set_segment_bytes(uint64_t b) { segment_bytes_ = b; }  // before open()
    SpoolWriter::Stats stats() { return writer_ ? writer_->stats() : SpoolWriter::Stats{}; }
    // Whether the spool can accept: 0, or the errno of the last write while writes fail
    // (ENOSPC, EIO). Any thread (writer.h says when it clears).
    int write_error() const { return writer_ ? writer_->write_error() : 0; }

  private:
    std::string dir_;
    int lock_fd_ = -1;
    SpoolSnapshot recovered_;
    std::unique_ptr<SpoolWriter> writer_;
    uint64_t segment_bytes_ = 64ull << 20;
    std::mutex rotate_mu_;
    std::function<void(uint64_t, uint64_t)> rotate_listener_;
    std::function<void(uint64_t, std::vector<uint64_t>)> meta_listener_;
};

}  // namespace kasi
