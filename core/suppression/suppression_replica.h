// Sharing the suppression list through PostgreSQL (docs/suppression.md, "Sharing the list
// through PostgreSQL"). Each node keeps its embedded store (suppression_store.h) as the
// list it checks; PostgreSQL holds the shared one. One thread per node (kasi-suppr-pg)
// does all the talking, waiting for libpq on itself only (pg_conn.h), so no event loop waits
// on the database.
//
//   local change   add()/remove() of the store -> the outbox (suppression_outbox.h),
//                  fdatasync'ed, then the store's journal, then the caller's answer;
//                  the thread is woken and pushes
//   push           records of the outbox in batches, each batch one transaction: the
//                  advisory write lock, an upsert per record, the outbox's confirmed count
//   pull           every poll interval: SELECT ... WHERE seq > cursor ORDER BY seq, in
//                  pages, applied to the store without going through the outbox; the
//                  cursor is kept in DIR/pg-cursor (written atomically)
//
// Order. kasi_suppression has one row per (scope, address), and every insert or update
// sets seq from a sequence. A pull must never pass a row whose seq was taken earlier but
// committed later, so every writing transaction takes pg_advisory_xact_lock(pg_lock_write)
// before it takes a seq: writers are serialised, commit order is seq order, and a pull that
// sees seq N has seen every row below N that will ever exist. Writes are rare (bounces,
// complaints, operators, imports in batches), so the lock costs nothing that matters.
// A removal is a tombstone (deleted = true), so that it reaches the other nodes.
//
// Conflicts. PostgreSQL decides with the store's own rule (suppression_table.h): an add
// replaces a row unless that row is newer (larger created) and still in force; a removal
// always applies. A pulled row is the key's state in PostgreSQL, and the store takes it as
// it is (a remove and an add in one commit when the entry differs), so every node converges
// on PostgreSQL's state.
//
// PostgreSQL down: nothing waits for it. Changes are accepted and durable locally as
// before, queue in the outbox and are pushed once it answers; lookups use the local store.
// The thread retries with a backoff from 250 ms to retry_max_ms; each connection first
// runs the schema migrations (pg_migrations.h). A bad row in an answer (an unknown reason,
// an invalid address) is logged and skipped, never trusted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/suppression/suppression_journal.h"

struct pg_result;  // libpq's PGresult

namespace kasi {

class PgConn;
class SuppressionOutbox;
class SuppressionStore;

struct SuppressionReplicaOptions {
    std::string dsn;              // libpq connection string (never logged)
    int64_t poll_ms = 1000;       // pull interval: the staleness bound while PostgreSQL is up
    int64_t retry_max_ms = 5000;  // longest wait between connection attempts
    size_t push_batch = 500;      // outbox records per transaction
    size_t pull_page = 1000;      // rows per SELECT
};

struct SuppressionReplicaStatus {
    bool connected = false;
    uint64_t pending = 0;             // outbox records not confirmed by PostgreSQL
    int64_t last_pull_ms = 0;         // wall clock of the last complete pull (0: none yet)
    int64_t cursor = 0;               // the highest seq pulled
    uint64_t pushed = 0, pulled = 0;  // since start
    int schema = 0;                   // schema version seen at the last connection
};

class SuppressionReplica {
  public:
    // Starts the thread. `dir` is the store's directory (for DIR/pg-cursor).
    SuppressionReplica(SuppressionStore& store, SuppressionOutbox& outbox, std::string dir,
                       SuppressionReplicaOptions opts);
    // Stops the thread and waits: a connection attempt or statement in flight is abandoned
    // at once (pg_conn.h).
    ~SuppressionReplica();
    SuppressionReplica(const SuppressionReplica&) = delete;
    SuppressionReplica& operator=(const SuppressionReplica&) = delete;

    // The outbox has new records: push now.
    void wake();
    SuppressionReplicaStatus status() const;

  private:
    void run();
    void session(PgConn& c, std::string& err);
    bool prepare(PgConn& c, std::string& err);
    bool push(PgConn& c, std::string& err);
    bool push_batch(PgConn& c, const std::string& id, const std::string& node, uint64_t upto,
                    std::vector<JournalRecord>& recs, std::string& err);
    bool push_once(PgConn& c, const std::string& id, const std::string& node, uint64_t upto,
                   const std::vector<JournalRecord>& recs, size_t& bad, std::string& err);
    bool pull(PgConn& c, bool& done, std::string& err);
    bool apply_page(const pg_result* r, int64_t& last_seq, std::string& err);
    void load_cursor();
    bool save_cursor(std::string& err);
    // Waits up to `ms` or until woken; false when stopping.
    bool wait(int64_t ms);
    bool stopping() const;
    void report_down(const std::string& err);

    SuppressionStore& store_;
    SuppressionOutbox& outbox_;
    std::string dir_;
    SuppressionReplicaOptions opts_;

    mutable std::mutex mu_;  // everything below
    std::condition_variable cv_;
    bool stop_ = false, woken_ = false;
    SuppressionReplicaStatus st_;
    bool pushed_known_ = false;
    std::string pushed_id_;  // the outbox file whose confirmed count is pushed_
    uint64_t pushed_gen_ = 0;
    uint64_t pushed_ = 0;
    std::string db_id_;  // kasi_suppression_meta.id of the database the cursor is in
    std::string last_logged_;
    int64_t last_logged_ms_ = 0;
    int stop_fd_ = -1;  // an eventfd, written once to stop: every libpq wait watches it
    std::thread thread_;
};

}  // namespace kasi
