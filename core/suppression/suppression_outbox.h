// The outbox: the changes made on this node that PostgreSQL has not confirmed yet
// (docs/suppression.md, "Sharing the list through PostgreSQL"). With [postgres] configured
// every add() and remove() of the local store passes through append() first, so a change is
// in the outbox (fdatasync'ed) before the store writes it, and both before its caller is
// answered. The replica thread (suppression_replica.h) reads the records and pushes them;
// PostgreSQL counts how many records of this file it has committed in the same transaction
// as the records themselves (kasi_suppression_outboxes), so a crash at any point neither
// loses a change nor sends one twice.
//
// Why outbox first: a crash between the two writes then leaves a change that is in the
// outbox and not in the store; it reaches PostgreSQL and comes back to the store by the
// pull. The other order would leave one that never leaves the node.
//
// The file is DIR/pg-outbox.NODE.GEN, in the journal's format (suppression_journal.h: the
// same header, framing, recovery and add/remove records). NODE is random, made when the
// first outbox file is made; NODE.GEN is the file's id in PostgreSQL. Files only grow while
// records wait. Once every record is confirmed and the file is larger than rotate_bytes,
// rotate_if_drained() starts pg-outbox.NODE.GEN+1 (made durable before the old one is
// unlinked), so open() deletes any older generation it finds: it was drained.
//
// Memory: the file offset of each record (8 bytes a record), to read from any record on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/suppression/suppression_journal.h"

namespace kasi {

class SuppressionOutbox {
    struct Key {
        explicit Key() = default;
    };

  public:
    // Opens (or makes) the outbox in `dir`, which the caller's store holds locked. A torn
    // tail is cut off and logged; damage in the middle fails with `err`.
    static std::unique_ptr<SuppressionOutbox> open(const std::string& dir, std::string& err);
    SuppressionOutbox(Key, std::string dir);
    ~SuppressionOutbox();
    SuppressionOutbox(const SuppressionOutbox&) = delete;
    SuppressionOutbox& operator=(const SuppressionOutbox&) = delete;

    // Appends the changes; true once they are on stable storage. Concurrent appenders share
    // fdatasyncs (group commit). A failed fdatasync refuses every later append (the file's
    // state is unknown) until the outbox is opened again. Records become readable when they
    // are durable, never before.
    bool append(const std::vector<JournalRecord>& changes, std::string& err);

    struct Head {
        std::string id;    // "NODE.GEN": the file's name in PostgreSQL
        std::string node;  // NODE
        uint64_t gen = 0;
        uint64_t records = 0;
        uint64_t bytes = 0;
    };
    Head head() const;
    // The generation and record count, without waiting for an append's fdatasync (for
    // status on an event loop; the two may be a moment apart).
    struct Counts {
        uint64_t gen = 0, records = 0;
    };
    Counts counts() const { return {pub_gen_.load(), pub_records_.load()}; }
    // Up to `max` records of file `id` from record number `from` on. False with `err` when
    // `id` is not the current file or a read fails.
    bool read(const std::string& id, uint64_t from, size_t max, std::vector<JournalRecord>& out,
              std::string& err) const;
    // Runs `fn` under the outbox's lock if every record is confirmed (generation `gen`,
    // `pushed` records), so that no append can come in meanwhile; false (without running it)
    // when a record waits.
    template <class Fn>
    bool if_drained(uint64_t gen, uint64_t pushed, Fn&& fn) {
        std::lock_guard lk(mu_);
        if (!quiet() || gen != gen_ || pushed != offsets_.size()) return false;
        fn();
        return true;
    }
    // Called once PostgreSQL holds the first `pushed` records of `id`: if that is all of them
    // and the file is larger than rotate_bytes, starts the next file. True if it did.
    bool rotate_if_drained(const std::string& id, uint64_t pushed, std::string& err);
    void set_rotate_bytes(uint64_t n) { rotate_bytes_ = n; }
    const std::string& path() const { return path_; }

  private:
    bool open_latest(std::string& err);
    bool create(uint64_t gen, std::string& err);
    bool load(std::string& err);
    void lead_sync(std::unique_lock<std::mutex>& lk);
    bool refuse_if_broken(std::string& err) const;
    // No append is between its write and its sync (under mu_).
    bool quiet() const { return !syncing_ && unsynced_.empty(); }

    std::string dir_, node_, path_;
    uint64_t gen_ = 0;
    int dir_fd_ = -1, fd_ = -1;
    mutable std::mutex mu_;
    std::condition_variable sync_cv_;
    std::vector<uint64_t> offsets_;   // where each durable record starts
    std::vector<uint64_t> unsynced_;  // where each written, not yet durable record starts
    uint64_t end_ = 0;                // where the next append goes
    uint64_t durable_end_ = 0;        // just past the last durable record
    uint64_t written_seq_ = 0, durable_seq_ = 0;  // appends, and those made durable
    bool syncing_ = false;                        // a leader is in fdatasync
    int broken_ = 0;
    uint64_t rotate_bytes_ = 1 << 20;
    std::atomic<uint64_t> pub_gen_{0}, pub_records_{0};  // counts()
};

}  // namespace kasi
