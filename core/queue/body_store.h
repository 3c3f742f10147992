// Message bytes for delivery, read from the spool segments on libuv's thread pool (the
// delivery loop never blocks on the disk), and the lifetime of message segments: a segment
// is deleted once it is closed for good (the writer moved on), every message written to it
// has reached the queue, and all of them are finished. Counting the messages the writer
// reports per segment is what makes this safe against a message still on its way from the
// writer to the queue.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/queue/queued_message.h"

namespace kasi {

class BodyStore {
  public:
    BodyStore(uv_loop_t* loop, std::string dir) : loop_(loop), dir_(std::move(dir)) {}
    ~BodyStore();
    BodyStore(const BodyStore&) = delete;
    BodyStore& operator=(const BodyStore&) = delete;

    // Reads the message bytes; cb(err, body) on the loop (err is an errno, 0 on success).
    void read(const QueuedMessage& m, std::function<void(int, std::string)> cb);

    void message_queued(uint64_t seg);    // a message of `seg` entered the queue
    void message_finished(uint64_t seg);  // ... and left it
    // `seg` will receive no more messages; `written` were made durable in it.
    void segment_closed(uint64_t seg, uint64_t written);
    // A journal segment closed for good, whose records concern messages of `refs`: it is
    // deleted once every one of those message segments is (its records are then moot).
    void journal_closed(uint64_t meta_seq, std::vector<uint64_t> refs);
    uint64_t journals_deleted() const { return journals_deleted_; }
    uint64_t segments_deleted() const { return deleted_; }
    uint64_t fast_reads() const { return fast_reads_; }

  private:
    struct Seg {
        int64_t expected = -1;  // messages written, once the segment is closed
        uint64_t queued = 0, finished = 0;
        int fd = -1;
        int reads = 0;  // reads in flight
    };
    int fd_for(uint64_t seg, Seg& s);
    void maybe_delete(uint64_t seg);
    void unlink_async(const std::string& path);
    void msg_segment_gone(uint64_t seg);

    uv_loop_t* loop_;
    std::string dir_;
    std::map<uint64_t, Seg> segs_;
    uint64_t deleted_ = 0;
    uint64_t fast_reads_ = 0;
    uint64_t journals_deleted_ = 0;
    std::map<uint64_t, std::vector<uint64_t>> journals_;  // closed journal -> live refs
    std::set<uint64_t> gone_;                             // message segments deleted while running
};

}  // namespace kasi
