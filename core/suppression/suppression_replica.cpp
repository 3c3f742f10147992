#include "core/suppression/suppression_replica.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log/log.h"
#include "core/suppression/pg_conn.h"
#include "core/suppression/pg_migrations.h"
#include "core/suppression/suppression_outbox.h"
#include "core/suppression/suppression_store.h"
#include "core/util/clock.h"
#include "core/util/file.h"
#include "core/util/strings.h"

namespace kasi {

namespace {

constexpr int64_t first_retry_ms = 250;

const char* const sql_add =
    "INSERT INTO kasi_suppression AS s"
    " (scope, address, reason, event, created, expires, deleted, seq)"
    " VALUES ($1, $2, $3, $4, $5, $6, false, nextval('kasi_suppression_seq'))"
    " ON CONFLICT (scope, address) DO UPDATE SET reason = EXCLUDED.reason,"
    " event = EXCLUDED.event, created = EXCLUDED.created, expires = EXCLUDED.expires,"
    " deleted = false, seq = EXCLUDED.seq, changed_at = now()"
    " WHERE s.deleted OR s.created <= EXCLUDED.created"
    " OR (s.expires <> 0 AND s.expires <= $7)";

const char* const sql_remove =
    "INSERT INTO kasi_suppression AS s"
    " (scope, address, reason, event, created, expires, deleted, seq)"
    " VALUES ($1, $2, 'manual', '', $3, 0, true, nextval('kasi_suppression_seq'))"
    " ON CONFLICT (scope, address) DO UPDATE SET deleted = true, seq = EXCLUDED.seq,"
    " changed_at = now() WHERE NOT s.deleted";

const char* const sql_confirm =
    "INSERT INTO kasi_suppression_outboxes (id, node, pushed) VALUES ($1, $2, $3)"
    " ON CONFLICT (id) DO UPDATE SET pushed = EXCLUDED.pushed, updated = now()";

const char* const sql_pull =
    "SELECT scope, address, reason, event, created, expires, deleted, seq"
    " FROM kasi_suppression WHERE seq > $1 ORDER BY seq LIMIT $2";

std::string str(int64_t v) {
    return std::to_string(v);
}

// A row of the pull as an entry; false with the reason when it cannot be one.
bool row_entry(const PGresult* r, int i, SuppressionEntry& e, bool& deleted, std::string& why) {
    std::string reason;
    if (!pg_text(r, i, 0, e.scope) || !pg_text(r, i, 1, e.address) || !pg_text(r, i, 2, reason) ||
        !pg_text(r, i, 3, e.event) || !pg_i64(r, i, 4, e.created) || !pg_i64(r, i, 5, e.expires) ||
        !pg_bool(r, i, 6, deleted)) {
        why = "a NULL or malformed column";
        return false;
    }
    if (deleted) {
        e.address = normalize_address(e.address);
        return valid_scope(e.scope, why) && valid_address(e.address, why);
    }
    auto rs = parse_reason(reason);
    if (!rs) {
        why = fmt::format("unknown reason '{}'", reason);
        return false;
    }
    e.reason = *rs;
    return validate_entry(e, why);
}

}  // namespace

SuppressionReplica::SuppressionReplica(SuppressionStore& store, SuppressionOutbox& outbox,
                                       std::string dir, SuppressionReplicaOptions opts)
    : store_(store), outbox_(outbox), dir_(std::move(dir)), opts_(std::move(opts)) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // -1: calls run to their deadlines
    load_cursor();
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "kasi-suppr-pg");
        run();
    });
}

SuppressionReplica::~SuppressionReplica() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    uint64_t one = 1;
    if (stop_fd_ >= 0 && ::write(stop_fd_, &one, sizeof one) < 0) {
        // a full eventfd counter is still readable: nothing to do
    }
    if (thread_.joinable()) thread_.join();
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

void SuppressionReplica::wake() {
    {
        std::lock_guard lk(mu_);
        woken_ = true;
    }
    cv_.notify_all();
}

SuppressionReplicaStatus SuppressionReplica::status() const {
    auto h = outbox_.counts();  // never waits for an append's fdatasync
    std::lock_guard lk(mu_);
    SuppressionReplicaStatus s = st_;
    uint64_t done = pushed_known_ && pushed_gen_ == h.gen ? pushed_ : 0;
    s.pending = h.records > done ? h.records - done : 0;
    return s;
}

bool SuppressionReplica::stopping() const {
    std::lock_guard lk(mu_);
    return stop_;
}

bool SuppressionReplica::wait(int64_t ms) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stop_ || woken_; });
    woken_ = false;
    return !stop_;
}

void SuppressionReplica::run() {
    int64_t retry = first_retry_ms;
    while (!stopping()) {
        std::string err;
        PgConn::Limits limits;
        limits.stop_fd = stop_fd_;
        auto c = PgConn::connect(opts_.dsn, limits, err);
        if (c) {
            if (prepare(*c, err)) {
                retry = first_retry_ms;
                session(*c, err);
            }
            std::lock_guard lk(mu_);
            st_.connected = false;
        }
        if (stopping()) break;
        if (!err.empty()) report_down(err);
        if (!wait(retry)) break;
        retry = std::min(retry * 2, opts_.retry_max_ms);
    }
}

// Logs that PostgreSQL cannot be used: a new reason at once, the same one once a minute.
void SuppressionReplica::report_down(const std::string& err) {
    int64_t now = now_ms();
    if (err == last_logged_ && now - last_logged_ms_ < 60000) return;
    last_logged_ = err;
    last_logged_ms_ = now;
    log::warn(
        "suppression: PostgreSQL: {}; the local list keeps serving, changes wait in the "
        "outbox ({} pending); retrying",
        err, status().pending);
}

// On each new connection: the schema, the database's id (a new database: pull from 0), and
// how much of the outbox this database has confirmed.
bool SuppressionReplica::prepare(PgConn& c, std::string& err) {
    std::string e;
    if (!c.run("SET statement_timeout = '60s'", e)) return err = e, false;
    PgSchema schema;
    if (!migrate_suppression_schema(c, schema, e)) {
        err = "schema migration failed: " + e;
        return false;
    }
    const auto& all = suppression_pg_migrations();
    if (schema.after > all.back().version)
        log::warn("suppression: PostgreSQL schema version {} is newer than this Kasi's ({})",
                  schema.after, all.back().version);
    else if (schema.after != schema.before)
        log::notice("suppression: PostgreSQL schema migrated from version {} to {}", schema.before,
                    schema.after);
    auto r = c.exec("SELECT id FROM kasi_suppression_meta LIMIT 1", {}, e);
    std::string db;
    if (!r || !pg_text(r.get(), 0, 0, db) || db.empty()) {
        err = "reading kasi_suppression_meta: " + (r ? std::string("no row") : e);
        return false;
    }
    auto h = outbox_.head();
    r = c.exec("SELECT pushed FROM kasi_suppression_outboxes WHERE id = $1", {h.id}, e);
    int64_t pushed = 0;
    if (!r) return err = e, false;
    if (PQntuples(r.get()) > 0 && (!pg_i64(r.get(), 0, 0, pushed) || pushed < 0)) {
        err = "kasi_suppression_outboxes.pushed of " + h.id + " is not a count";
        return false;
    }
    std::lock_guard lk(mu_);
    if (db != db_id_) {
        if (!db_id_.empty())
            log::notice(
                "suppression: PostgreSQL holds another database than the last pull's: "
                "pulling everything");
        db_id_ = db;
        st_.cursor = 0;
    }
    pushed_id_ = h.id;
    pushed_gen_ = h.gen;
    pushed_ = std::min<uint64_t>(uint64_t(pushed), h.records);
    pushed_known_ = true;
    st_.connected = true;
    st_.schema = schema.after;
    log::notice(
        "suppression: PostgreSQL {} connected (schema {}); {} changes to push, pulling "
        "after seq {}",
        c.where(), schema.after, h.records - pushed_, st_.cursor);
    last_logged_.clear();
    return true;
}

// Push whatever waits, then pull when due; until an error (in `err`) or stop.
void SuppressionReplica::session(PgConn& c, std::string& err) {
    int64_t next_pull = 0;
    for (;;) {
        if (!push(c, err) || stopping()) return;
        int64_t now = now_ms();
        if (now >= next_pull) {
            bool done = false;
            if (!pull(c, done, err)) return;
            if (done)
                next_pull = now + opts_.poll_ms;
            else
                continue;  // a local change came first: push it, then pull again
        }
        if (!wait(std::max<int64_t>(1, next_pull - now_ms()))) return;
    }
}

bool SuppressionReplica::push(PgConn& c, std::string& err) {
    std::vector<JournalRecord> recs;
    for (;;) {
        auto h = outbox_.head();
        uint64_t from;
        {
            std::lock_guard lk(mu_);
            if (pushed_id_ != h.id)  // rotated: a new file
                pushed_id_ = h.id, pushed_gen_ = h.gen, pushed_ = 0;
            from = pushed_;
        }
        if (from >= h.records) {
            std::string e;
            if (!outbox_.rotate_if_drained(h.id, from, e) && !e.empty())
                log::warn("suppression: {}", e);
            return true;
        }
        if (!outbox_.read(h.id, from, opts_.push_batch, recs, err)) return false;
        uint64_t n = recs.size();
        if (!push_batch(c, h.id, h.node, from + n, recs, err)) return false;
        std::lock_guard lk(mu_);
        pushed_ = from + n;
        st_.pushed += n;
        if (stop_) return true;
    }
}

// One transaction: the write lock, the records, the outbox's new confirmed count `upto`. A
// record that PostgreSQL refuses as data (SQLSTATE class 22: bytes that are not valid in the
// database's encoding, say) would block the outbox for ever: it is logged, left out, and
// the batch is tried again without it; the change stays on this node only.
bool SuppressionReplica::push_batch(PgConn& c, const std::string& id, const std::string& node,
                                    uint64_t upto, std::vector<JournalRecord>& recs,
                                    std::string& err) {
    for (;;) {
        size_t bad = recs.size();
        if (push_once(c, id, node, upto, recs, bad, err)) return true;
        if (bad == recs.size()) return false;
        log::error(
            "suppression: PostgreSQL refused {} {} (scope '{}'): {}; this change stays on "
            "this node only",
            recs[bad].op == JournalOp::add ? "the add of" : "the removal of",
            recs[bad].entry.address, recs[bad].entry.scope, err);
        recs.erase(recs.begin() + long(bad));
    }
}

bool SuppressionReplica::push_once(PgConn& c, const std::string& id, const std::string& node,
                                   uint64_t upto, const std::vector<JournalRecord>& recs,
                                   size_t& bad, std::string& err) {
    std::string e;
    auto fail = [&](const std::string& what) {
        std::string ignored;
        c.run("ROLLBACK", ignored);
        err = "push: " + what;
        return false;
    };
    if (!c.run("BEGIN", e)) return fail(e);
    if (!c.exec("SELECT pg_advisory_xact_lock($1)", {str(pg_lock_write)}, e)) return fail(e);
    std::string now = str(now_ms() / 1000);
    for (size_t i = 0; i < recs.size(); ++i) {
        const auto& x = recs[i].entry;
        // The store took an add that had expired when it was written as a removal (its `at`,
        // kept in the outbox): so does PostgreSQL.
        bool add = recs[i].op == JournalOp::add && !x.expired(recs[i].at);
        bool ok = add ? bool(c.exec(sql_add,
                                    {x.scope, x.address, std::string(reason_name(x.reason)),
                                     x.event, str(x.created), str(x.expires), now},
                                    e))
                      : bool(c.exec(sql_remove, {x.scope, x.address, now}, e));
        if (!ok) {
            if (c.sqlstate().rfind("22", 0) == 0) bad = i;  // this record's data
            return fail(fmt::format("{} ('{}'): {}", id, x.address, e));
        }
    }
    if (!c.exec(sql_confirm, {id, node, str(int64_t(upto))}, e)) return fail(e);
    if (!c.exec("DELETE FROM kasi_suppression_outboxes WHERE node = $1 AND id <> $2", {node, id},
                e))
        return fail(e);
    if (!c.run("COMMIT", e)) return fail(e);
    return true;
}

// Pages of rows after the cursor, each applied only while the outbox is drained (checked
// and applied under the outbox's lock, so no local change can slip in between): a pulled
// row must never overwrite a local change PostgreSQL has not seen yet. When one waits,
// `done` stays false and the caller pushes first; the page is read again.
bool SuppressionReplica::pull(PgConn& c, bool& done, std::string& err) {
    for (;;) {
        int64_t cursor;
        uint64_t gen, pushed;
        {
            std::lock_guard lk(mu_);
            cursor = st_.cursor;
            gen = pushed_gen_;
            pushed = pushed_;
        }
        std::string e;
        auto r = c.exec(sql_pull, {str(cursor), str(int64_t(opts_.pull_page))}, e);
        if (!r) return err = "pull: " + e, false;
        int n = PQntuples(r.get());
        if (n > 0) {
            int64_t last = cursor;
            bool ok = true;
            if (!outbox_.if_drained(gen, pushed, [&] { ok = apply_page(r.get(), last, err); }))
                return true;
            if (!ok) return false;
            {
                std::lock_guard lk(mu_);
                st_.cursor = last;
                st_.pulled += uint64_t(n);
            }
            if (!save_cursor(err)) return false;
        }
        if (size_t(n) < opts_.pull_page || stopping()) break;
    }
    std::lock_guard lk(mu_);
    st_.last_pull_ms = now_ms();
    done = true;
    return true;
}

// The rows of one page into the store, as one batch; rows that say nothing new are skipped,
// bad ones logged and skipped. `last_seq` becomes the page's highest seq.
bool SuppressionReplica::apply_page(const pg_result* r, int64_t& last_seq, std::string& err) {
    std::vector<JournalRecord> changes;
    for (int i = 0; i < PQntuples(r); ++i) {
        int64_t seq = 0;
        if (!pg_i64(r, i, 7, seq) || seq <= last_seq) {
            err = "pull: a row's seq is missing or out of order";
            return false;
        }
        last_seq = seq;
        SuppressionEntry e;
        bool deleted = false;
        std::string why;
        if (!row_entry(r, i, e, deleted, why)) {
            log::warn("suppression: PostgreSQL row seq {} skipped: {}", seq, why);
            continue;
        }
        auto local = store_.find(e.scope, e.address, 0);
        if (deleted ? !local : local && *local == e) continue;
        if (local) {
            JournalRecord rm;
            rm.op = JournalOp::remove;
            rm.entry.scope = e.scope;
            rm.entry.address = e.address;
            changes.push_back(std::move(rm));
        }
        if (!deleted) changes.push_back(JournalRecord{JournalOp::add, 0, std::move(e)});
    }
    if (!store_.apply_replicated(std::move(changes), err)) {
        err = "applying pulled changes to the local store: " + err;
        return false;
    }
    return true;
}

// DIR/pg-cursor: "DATABASE-ID SEQ". Missing or unreadable: pull everything (adds and
// removes are idempotent, so a cursor that is behind only costs time).
void SuppressionReplica::load_cursor() {
    std::string text;
    if (!read_whole_file(dir_ + "/pg-cursor", text)) return;
    auto w = split_list(trim(text), " ");
    unsigned long long seq = 0;
    if (w.size() != 2 || !parse_u64(w[1], seq) || seq > uint64_t(INT64_MAX)) {
        log::warn("suppression: {}/pg-cursor is not 'ID SEQ': pulling everything", dir_);
        return;
    }
    db_id_ = w[0];
    st_.cursor = int64_t(seq);
}

bool SuppressionReplica::save_cursor(std::string& err) {
    std::string text;
    {
        std::lock_guard lk(mu_);
        text = fmt::format("{} {}\n", db_id_, st_.cursor);
    }
    std::string path = dir_ + "/pg-cursor", tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0 && pwrite_all(fd, text, 0) && ::fdatasync(fd) == 0;
    int e = errno;
    if (fd >= 0) ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        err = fmt::format("{}: {}", ok ? path : tmp, std::strerror(ok ? errno : e));
        return false;
    }
    return true;
}

}  // namespace kasi
