// The spool writer: one thread that owns the open segment files and makes records durable
// with group commit. Loops submit records; the thread appends everything pending with one
// writev per file, then one fdatasync per file touched, then reports each record's outcome
// through its callback (called on the writer thread: callers post it to their own loop).
// While one batch syncs the next accumulates, so N concurrent messages cost one sync.
//
// Failure handling: a failed write (ENOSPC, EIO) or sync truncates the segment back to the
// last durable offset and fails the whole batch; a failed sync also abandons the segment
// (its page-cache state is unknown after a failed fsync) and opens a new one. Nothing in a
// failed batch was acknowledged, and later batches succeed again once space returns.
//
// Whether the spool can accept (write_error(), for /health): the errno of the last batch
// while writes fail, 0 again after a batch succeeds. Since a node reported not ready may get
// no traffic to prove it healthy, the writer thread also probes while failing (each
// probe_interval_ms when idle): it reserves the failed batch's size (at most 1 MiB) in an
// unnamed temporary file in the spool directory (O_TMPFILE: nothing is left behind, the
// segments are not touched), writes and syncs a block of it, and lets it go; success ends
// the failing state.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/spool/record.h"
#include "core/spool/segment_files.h"

namespace kasi {

struct SpoolResult {
    int err = 0;  // errno; 0 = durable
    uint64_t segment = 0;
    uint64_t offset = 0;
    uint64_t body_offset = 0;  // message records: where the message bytes start
};

struct SpoolRequest {
    RecordType type = RecordType::message;
    std::string head;  // message: envelope text; state: StateUpdate text
    std::string body;  // message bytes (message records only)
    std::function<void(const SpoolResult&)> done;
    uint64_t offset = 0;  // set by the writer
    // A lazy record (delivery progress: losing it on a crash means a retry, never a lost
    // message) does not wake the writer: it rides with the next batch or the periodic
    // flush (lazy_flush_ms), and its own fdatasync may be left to a later batch. Its
    // callback then means "written", not "durable".
    bool lazy = false;
    // State records: the message segment of the message concerned. The writer reports,
    // per journal segment, which message segments it refers to, so that a journal segment
    // can be deleted once all of those are gone.
    uint64_t ref_msg_seq = 0;
};

struct SpoolWriterOptions {
    uint64_t segment_bytes = 64ull << 20;
    uint64_t batch_bytes = 16ull << 20;
};

class SpoolWriter {
  public:
    SpoolWriter(std::string dir, SpoolWriterOptions opts) : dir_(std::move(dir)), opts_(opts) {}
    ~SpoolWriter();

    // Opens fresh segments after the highest existing sequence numbers and starts the thread.
    bool start(uint64_t next_msg_seq, uint64_t next_meta_seq, std::string& err);
    void submit(SpoolRequest r);  // any thread
    void stop();                  // writes what is pending, then joins

    struct Stats {
        uint64_t records = 0, batches = 0, syncs = 0, failures = 0;
    };
    Stats stats();
    uint64_t current_msg_seq() const { return current_msg_seq_.load(); }
    int write_error() const { return write_error_.load(std::memory_order_relaxed); }
    // Called on the writer thread when a message segment is retired (rotated), with the
    // number of message records made durable in it. Set before start().
    std::function<void(uint64_t seq, uint64_t messages)> on_rotate;
    // The same for a journal segment, with the message segments its records refer to.
    std::function<void(uint64_t seq, std::vector<uint64_t> refs)> on_meta_rotate;

  private:
    struct Active {
        SegmentKind kind;
        int fd = -1;
        uint64_t seq = 0;
        uint64_t size = 0;
    };

    void run();
    void write_batch(std::vector<SpoolRequest>& batch);
    void sync_meta_if_stale();
    void set_failing(int err, uint64_t batch_bytes);
    void probe_space();
    static constexpr int64_t probe_interval_ms = 1000;
    static constexpr int64_t lazy_flush_ms = 20;
    int append(Active& seg, std::vector<SpoolRequest*>& reqs, std::vector<uint8_t>& headers,
               std::vector<std::string>& lens);
    bool open_segment(Active& seg, uint64_t seq, std::string& err);
    void close_segment(Active& seg);

    std::string dir_;
    SpoolWriterOptions opts_;
    Active msg_{SegmentKind::msg};
    Active meta_{SegmentKind::meta};
    int dir_fd_ = -1;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<SpoolRequest> pending_;
    bool stopping_ = false;
    std::thread thread_;
    Stats stats_;
    std::atomic<int> write_error_{0};  // errno of the last batch while writes fail
    uint64_t failed_bytes_ = 0;        // the size of the batch that failed
    int64_t last_probe_ms_ = 0;
    std::atomic<uint64_t> current_msg_seq_{0};
    size_t urgent_ = 0;  // non-lazy requests pending
    int64_t last_meta_sync_ms_ = 0;
    bool meta_unsynced_ = false;
    uint64_t msg_records_ = 0;      // durable message records in the current segment
    std::set<uint64_t> meta_refs_;  // message segments the current journal segment refers to
    void retire(Active& seg, bool sync_pending);  // for the
                                                  // one-line "recovered" message
};

}  // namespace kasi
