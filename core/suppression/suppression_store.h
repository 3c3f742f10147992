// The embedded suppression store: the (scope, address) pairs Kasi must never send to,
// held in memory for lookups (suppression_table.h) and made durable in an append-only
// journal (suppression_journal.h) in its own directory. One process owns a directory (an
// exclusive flock on DIR/lock).
//
// Durability. add() and remove() return true only once their records are on stable
// storage: written to the journal and fdatasync'ed (the journal's directory entry was
// synced when the file was created). A crash at any moment, kill -9 or power loss, loses
// no acknowledged change. A change whose call had not returned may or may not survive; its
// caller got no answer and retries (adds and removes are idempotent). A change becomes
// visible to lookups when it is durable, never before.
//
// Group commit. A writer appends its records under a mutex and then waits for a sync that
// covers them. A waiter that finds no sync running becomes the leader: one fdatasync for
// every record written so far, then it applies all of them to the table in journal order
// and wakes the others. While one sync runs the next group collects, so many concurrent
// writers share each sync (the spool's writer does the same with a thread of its own;
// here the callers already run off the event loops, so the leader is one of them).
// A failed fdatasync leaves the file's state unknown (the kernel may have dropped the
// dirty pages), so the store then refuses every change until it is opened again.
//
// Threads. find(), check(), list() and the counters take a shared lock on the table, for
// one hash probe and a copy of the entry. Changes take it exclusively, 1024 at a time.
// When the slot array must grow, the bigger one is built under the shared lock (lookups
// continue) and swapped in under the exclusive one.
//
// Expiry. An entry whose `expires` has passed never matches. The maintenance thread drops
// such entries from memory (every sweep_interval_s) and compaction drops them from the
// journal, once they have been expired for expiry_grace_s (an hour). Every record carries
// its write time `at`, and replacement decisions use it (suppression_table.h), never the
// clock at replay, so replaying the journal gives the table the live store had. Dropping
// an entry is invisible to those decisions as long as every record applied later was
// written after the entry expired: the grace covers records still waiting for their sync
// and a clock stepped back by less than the grace.
//
// Compaction. When the journal holds more than twice as many records as there are entries
// (and more than compact_min_records), it is rewritten, in the maintenance thread:
//   1. fix a point P: a journal offset before which every record is applied to the table,
//      and the horizon A (now minus the grace);
//   2. drop entries expired by A, then write every other entry (as an add with at = A) to
//      suppressions.journal.compact, reading the table in slices under the shared lock:
//      lookups and writers carry on;
//   3. append the records written after P, copied from the old journal, and fdatasync;
//   4. with writers held back for a moment: copy the last few records, fdatasync, rename
//      over the journal, fsync the directory, continue appending to the new file.
// The snapshot of step 2 is fuzzy: writers change the table while it is read, so for a
// given address it may hold the state at P or a later one. Replaying the records after P
// over any such state gives the live state: a remove resets, and an add decided against
// a state its own journal prefix already produced decides the same way again.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/suppression/suppression_entry.h"
#include "core/suppression/suppression_journal.h"
#include "core/suppression/suppression_table.h"

namespace kasi {

struct SuppressionOptions {
    // Compact when the journal holds more than 2x as many records as live entries, and
    // more than this many.
    uint64_t compact_min_records = 100000;
    // The maintenance thread compacts when due and sweeps expired entries out of memory
    // every sweep_interval_s. Without it, call compact() and sweep_expired() yourself.
    bool background = true;
    int64_t sweep_interval_s = 300;
    // Expired entries are dropped (from memory by sweeps, from the journal by compaction)
    // once they have been expired this long: see "Expiry" above.
    int64_t expiry_grace_s = 3600;
    // Called on the syncing thread before each fdatasync (tests slow syncs down with it).
    std::function<void()> before_sync;
};

struct SuppressionQuery {
    std::optional<std::string> scope;  // only this scope ("" = global); none = all
    std::optional<SuppressionReason> reason;
    size_t limit = 100;
    uint64_t after = 0;  // the `next` of the previous page; 0 = from the start
    int64_t now = 0;     // skip entries expired at `now` (0: include them)
};

// A page of list(). Entries come in storage order, not sorted. A page may hold fewer than
// `limit` entries (a page scans at most about a million slots); `next` == 0 means the walk
// is complete. An entry present for the whole walk is listed exactly once; one added or
// re-added during the walk may be missed, or (re-added) listed twice.
struct SuppressionPage {
    std::vector<SuppressionEntry> entries;
    uint64_t next = 0;
};

// A scope name built for one lookup without the heap, such as "domain:" + the lower-cased
// sending domain (the RCPT check builds one per recipient). A name longer than any stored
// scope can be does not fit(): no entry can be in it, and the caller leaves it out.
class SuppressionScopeName {
  public:
    SuppressionScopeName(std::string_view prefix, std::string_view name, bool lower_name);
    bool fits() const { return fits_; }
    std::string_view view() const { return {buf_, len_}; }

  private:
    char buf_[suppression_max_scope];
    size_t len_ = 0;
    bool fits_ = false;
};

struct SuppressionStats {
    uint64_t entries = 0;          // in memory, including expired ones not yet swept
    uint64_t journal_records = 0;  // records in the current journal file
    uint64_t journal_bytes = 0;
    uint64_t commits = 0;  // journal appends by add()/remove() (up to 4096 changes each)
    uint64_t syncs = 0;    // fdatasync calls that made them durable
    uint64_t compactions = 0;
    uint64_t memory_bytes = 0;  // the table's own estimate
};

class SuppressionStore {
    struct Key {
        explicit Key() = default;
    };

  public:
    using Entry = SuppressionEntry;

    // Creates `dir` if needed and replays the journal. A torn tail is truncated and logged;
    // damage in the middle, a foreign file or a directory in use fails with `err`.
    static std::unique_ptr<SuppressionStore> open(const std::string& dir, std::string& err);
    static std::unique_ptr<SuppressionStore> open(const std::string& dir, SuppressionOptions opts,
                                                  std::string& err);
    SuppressionStore(Key, std::string dir, SuppressionOptions opts);
    ~SuppressionStore();
    SuppressionStore(const SuppressionStore&) = delete;
    SuppressionStore& operator=(const SuppressionStore&) = delete;

    // Adds or replaces entries (address normalized here; created 0 = now). Every entry is
    // checked before anything is written. True once all are durable; a batch larger than
    // 4096 is written in slices, and `err` then says how many were stored before a failure.
    bool add(const std::vector<Entry>& entries, std::string& err);
    // Removes (scope, address) for each address; absent ones are not an error.
    bool remove(const std::string& scope, const std::vector<std::string>& addresses,
                std::string& err);

    // Sharing the list (suppression_replica.h). `fn`, when set, sees every validated change
    // of add() and remove() before it is written, and a false return refuses the change
    // with its `err`; set it before any writer runs. apply_replicated() writes changes that
    // came from elsewhere (PostgreSQL) as given, without calling `fn`: the records are
    // checked like add()'s, and a remove followed by an add of the same key replaces the
    // entry whatever the replacement rule says.
    using ChangeHook = std::function<bool(const std::vector<JournalRecord>&, std::string&)>;
    void set_before_write(ChangeHook fn) { before_write_ = std::move(fn); }
    bool apply_replicated(std::vector<JournalRecord> changes, std::string& err);

    // Lookups normalize the address into a buffer on the stack and hash views: a miss (the
    // common case, once per recipient at RCPT and before each delivery) allocates nothing.
    std::optional<Entry> find(std::string_view scope, std::string_view address, int64_t now) const;
    // The first entry in force for `address` in the global scope, then in `scopes` in order.
    std::optional<Entry> check(std::string_view address, std::span<const std::string_view> scopes,
                               int64_t now) const;
    std::optional<Entry> check(std::string_view address, const std::vector<std::string>& scopes,
                               int64_t now) const;
    SuppressionPage list(const SuppressionQuery& q) const;
    size_t size() const;
    uint64_t count(SuppressionReason r) const;
    SuppressionStats stats() const;
    const std::string& journal_path() const { return path_; }

    // Rewrites the journal now (the maintenance thread does it when due).
    bool compact(std::string& err);
    // Drops expired entries from memory now; returns how many.
    size_t sweep_expired();

  private:
    class Fd {  // closes its descriptor
      public:
        Fd() = default;
        explicit Fd(int fd) : fd_(fd) {}
        ~Fd() { reset(); }
        Fd(const Fd&) = delete;
        Fd& operator=(const Fd&) = delete;
        int get() const { return fd_; }
        void reset(int fd = -1);
        void swap(Fd& o) { std::swap(fd_, o.fd_); }

      private:
        int fd_ = -1;
    };
    struct Batch {  // one commit, written and waiting to be synced and applied
        uint64_t seq = 0;
        uint64_t end = 0;      // journal offset just past it
        uint64_t records = 0;  // journal records up to and including it
        std::vector<JournalRecord> changes;
    };
    struct Point {  // compaction step 1
        uint64_t end = 0, records = 0;
        int64_t horizon = 0;
    };
    struct Snapshot {                              // compaction steps 2 and 3: the new file so far
        uint64_t size = 0, records = 0;            // all of it
        uint64_t snap_size = 0, snap_records = 0;  // the snapshot part
        uint64_t copied = 0;                       // old journal offset copied up to
    };

    bool open_dir(std::string& err);
    bool replay(std::string& err);
    bool commit(std::vector<JournalRecord> changes, std::string& err);
    bool commit_in_slices(std::vector<JournalRecord> changes, const char* what, std::string& err);
    void lead_sync(std::unique_lock<std::mutex>& lk);
    void apply(const std::vector<Batch>& batches);
    bool refuse_if_broken(std::string& err) const;
    int64_t horizon() const;
    size_t sweep_at(int64_t horizon);
    bool compaction_due();
    void maintenance();
    void wake_maintenance();
    // compaction (suppression_compact.cpp)
    bool fix_point(Point& p, std::string& err);
    bool write_snapshot(int out, int64_t horizon, Snapshot& n, std::string& err);
    bool copy_tail(int out, uint64_t to, Snapshot& n, std::string& err);
    bool swap_in(Fd& out, const std::string& tmp, const Point& p, Snapshot& n, std::string& err);

    std::string dir_, path_;
    SuppressionOptions opts_;
    ChangeHook before_write_;
    Fd dir_fd_, lock_fd_, fd_;

    // The journal, guarded by mu_.
    mutable std::mutex mu_;
    std::condition_variable cv_;
    uint64_t file_end_ = 0;         // where the next append goes
    uint64_t journal_records_ = 0;  // records in the file
    uint64_t applied_end_ = 0;      // every record before this offset is in the table
    uint64_t applied_records_ = 0;
    uint64_t written_seq_ = 0, durable_seq_ = 0;
    std::vector<Batch> queued_;
    bool syncing_ = false;   // a leader is syncing and applying
    bool swapping_ = false;  // compaction step 4: writers wait
    int broken_ = 0;         // errno of a failed fdatasync: changes refused
    uint64_t commits_ = 0, syncs_ = 0, compactions_ = 0;
    int64_t compact_failed_at_ = 0;

    // The table: a shared lock to read, an exclusive one to change; apply_mu_ admits one
    // changer at a time, so that a growth can be built under the shared lock. Lock order:
    // maint_mu_, apply_mu_, mu_, table_mu_.
    mutable std::shared_mutex table_mu_;
    std::mutex apply_mu_;
    SuppressionTable table_;

    std::mutex maint_mu_;  // one compaction or sweep at a time
    std::mutex bg_mu_;     // the maintenance thread's wake-ups (a leaf lock)
    std::condition_variable bg_cv_;
    bool bg_stop_ = false, bg_compact_ = false;
    std::thread bg_;
};

}  // namespace kasi
