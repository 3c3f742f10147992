// A PostgreSQL connection through libpq, for the suppression list's replica thread
// (suppression_replica.h). Every call blocks, so only that dedicated thread makes them,
// never an event loop. Handles are RAII (PgResult frees a PGresult, PgConn closes its
// PGconn), values only ever travel as parameters of PQexecParams (no SQL is built from
// values), and cancel() may be called from another thread to end a statement in flight
// (shutdown does).
//
// The connection string is libpq's (key=value pairs or a postgresql:// URI). Kasi puts
// connect_timeout=5, application_name=kasi and client_encoding=UTF8 before it, so the operator's values win.
// The string may hold a password: it is never logged; where() names host, port and
// database only. A password is better kept in a passfile (PGPASSFILE, passfile=).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kasi {

struct PgResultFree {
    void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

class PgConn {
  public:
    // Null with `err` when the server cannot be reached or refuses.
    static std::unique_ptr<PgConn> connect(const std::string& conninfo, std::string& err);
    ~PgConn();
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;

    // One statement with text parameters (a null optional is SQL NULL). The result, or null
    // with `err` unless the statement succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK).
    PgResult exec(const char* sql, const std::vector<std::optional<std::string>>& params,
                  std::string& err);
    // Statements without values (a migration script, BEGIN, COMMIT): PQexec.
    bool run(const char* sql, std::string& err);
    bool ok() const { return PQstatus(c_.get()) == CONNECTION_OK; }
    // The SQLSTATE of the last failed exec() or run() ("" when there was none, or no answer).
    const std::string& sqlstate() const { return sqlstate_; }
    // "host:port/dbname" (never the password).
    std::string where() const;
    // Asks the server to cancel the statement in flight; safe from any thread.
    void cancel();

  private:
    struct ConnFree {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    struct CancelFree {
        void operator()(PGcancel* c) const { PQfreeCancel(c); }
    };
    PgConn() = default;
    std::string error() const;

    bool failed(const PGresult* r, std::string& err);

    std::unique_ptr<PGconn, ConnFree> c_;
    std::string sqlstate_;
    std::mutex cancel_mu_;
    std::unique_ptr<PGcancel, CancelFree> cancel_;
};

// Reading a result's fields. False (or empty) when the field is NULL or not what is asked.
bool pg_i64(const PGresult* r, int row, int col, int64_t& out);
bool pg_text(const PGresult* r, int row, int col, std::string& out);
bool pg_bool(const PGresult* r, int row, int col, bool& out);

}  // namespace kasi
