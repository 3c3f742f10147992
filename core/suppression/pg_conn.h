// A PostgreSQL connection through libpq, for the suppression list's replica thread
// (suppression_replica.h). Only that dedicated thread uses it, never an event loop. Calls
// wait, but never blindly: libpq runs non-blocking (PQconnectStartParams, PQsendQuery*),
// and every wait is a poll() on the server's socket, the caller's stop descriptor and a
// deadline. So a stop request or a dead network ends any call within moments or by its
// deadline, with no PQcancel (which itself could hang on a partitioned network). A call
// that was stopped or timed out leaves the connection unusable: drop it.
//
// Handles are RAII (PgResult frees a PGresult, PgConn closes its PGconn), and values only
// ever travel as parameters of PQsendQueryParams: no SQL is built from values.
//
// The connection string is libpq's (key=value pairs or a postgresql:// URI). Kasi puts
// application_name=kasi and client_encoding=UTF8 before it, so the operator's values win.
// The string may hold a password: it is never logged; where() names host, port and database
// only. A password is better kept in a passfile (PGPASSFILE, passfile=).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
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
    struct Limits {
        int stop_fd = -1;               // readable: give up at once (-1: none)
        int64_t connect_ms = 10000;     // the whole connection attempt
        int64_t statement_ms = 120000;  // one exec() or run(), waiting included
    };
    // Null with `err` when the server cannot be reached, refuses, or the stop fd fired.
    static std::unique_ptr<PgConn> connect(const std::string& conninfo, Limits limits,
                                           std::string& err);
    ~PgConn() = default;
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;

    // One statement with text parameters (a null optional is SQL NULL). The result, or null
    // with `err` unless the statement succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK).
    PgResult exec(const char* sql, const std::vector<std::optional<std::string>>& params,
                  std::string& err);
    // Statements without values (a migration script, BEGIN, COMMIT): the simple protocol,
    // several statements allowed; false with the first error.
    bool run(const char* sql, std::string& err);
    // False once the connection is broken, or a call was stopped or timed out.
    bool ok() const { return usable_ && PQstatus(c_.get()) == CONNECTION_OK; }
    // The SQLSTATE of the last failed exec() or run() ("" when there was none, or no answer).
    const std::string& sqlstate() const { return sqlstate_; }
    // "host:port/dbname" (never the password).
    std::string where() const;

  private:
    struct ConnFree {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    PgConn() = default;
    // Waits for the socket (`out`: writable too) until `deadline_ms`; false with `err` on
    // stop, timeout or a poll error.
    bool wait_socket(bool out, int64_t deadline_ms, std::string& err);
    // After a PQsend*: flushes, waits and collects the results; the last one, or null.
    PgResult finish(std::string& err);
    bool failed(const PGresult* r, std::string& err);
    std::string result_error_text() const;  // the connection's last error, on one line

    std::unique_ptr<PGconn, ConnFree> c_;
    Limits limits_;
    bool usable_ = true;
    std::string sqlstate_;
};

// Reading a result's fields. False (or empty) when the field is NULL or not what is asked.
bool pg_i64(const PGresult* r, int row, int col, int64_t& out);
bool pg_text(const PGresult* r, int row, int col, std::string& out);
bool pg_bool(const PGresult* r, int row, int col, bool& out);

}  // namespace kasi
