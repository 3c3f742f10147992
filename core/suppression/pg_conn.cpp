#include "core/suppression/pg_conn.h"

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

namespace kasi {

namespace {

// Notices ("relation already exists, skipping") would go to stderr: drop them.
void quiet_notice(void*, const char*) {}

// libpq's messages end in a newline and may hold several lines (indented with tabs): one
// log line.
std::string one_line(std::string_view e) {
    std::string out;
    for (char ch : e) {
        if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
        if (ch == ' ' && (out.empty() || out.back() == ' ')) continue;
        out += ch;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// The error of a failed result (or of the connection when there is no result).
std::string result_error(const PGresult* r, PGconn* c) {
    std::string e = one_line(r ? PQresultErrorMessage(r) : "");
    if (e.empty()) e = one_line(PQerrorMessage(c));
    return e.empty() ? "unknown error" : e;
}

}  // namespace

std::unique_ptr<PgConn> PgConn::connect(const std::string& conninfo, std::string& err) {
    // Kasi's defaults first: with expand_dbname the operator's string, expanded in place of
    // "dbname", overrides them.
    const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname",
                          nullptr};
    const char* values[] = {"5", "kasi", "UTF8", conninfo.c_str(), nullptr};
    std::unique_ptr<PgConn> c(new PgConn());
    c->c_.reset(PQconnectdbParams(keys, values, 1));
    if (!c->c_) {
        err = "out of memory";
        return nullptr;
    }
    if (PQstatus(c->c_.get()) != CONNECTION_OK) {
        err = c->error();
        return nullptr;
    }
    PQsetNoticeProcessor(c->c_.get(), quiet_notice, nullptr);
    std::lock_guard lk(c->cancel_mu_);
    c->cancel_.reset(PQgetCancel(c->c_.get()));
    return c;
}

PgConn::~PgConn() {
    std::lock_guard lk(cancel_mu_);
    cancel_.reset();
}

std::string PgConn::error() const {
    return result_error(nullptr, c_.get());
}

PgResult PgConn::exec(const char* sql, const std::vector<std::optional<std::string>>& params,
                      std::string& err) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult r(PQexecParams(c_.get(), sql, int(values.size()), nullptr, values.data(), nullptr,
                            nullptr, 0));
    auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    failed(r.get(), err);
    return nullptr;
}

bool PgConn::run(const char* sql, std::string& err) {
    PgResult r(PQexec(c_.get(), sql));
    auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return true;
    return failed(r.get(), err);
}

bool PgConn::failed(const PGresult* r, std::string& err) {
    err = result_error(r, c_.get());
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    sqlstate_ = state ? state : "";
    return false;
}

std::string PgConn::where() const {
    const char* h = PQhost(c_.get());
    const char* p = PQport(c_.get());
    const char* d = PQdb(c_.get());
    return fmt::format("{}:{}/{}", h ? h : "?", p ? p : "?", d ? d : "?");
}

void PgConn::cancel() {
    std::lock_guard lk(cancel_mu_);
    if (!cancel_) return;
    char buf[256];
    PQcancel(cancel_.get(), buf, int(sizeof buf));
}

bool pg_i64(const PGresult* r, int row, int col, int64_t& out) {
    if (row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col)) return false;
    const char* s = PQgetvalue(r, row, col);
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return false;
    out = v;
    return true;
}

bool pg_text(const PGresult* r, int row, int col, std::string& out) {
    if (row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col)) return false;
    out.assign(PQgetvalue(r, row, col), size_t(PQgetlength(r, row, col)));
    return true;
}

bool pg_bool(const PGresult* r, int row, int col, bool& out) {
    std::string t;
    if (!pg_text(r, row, col, t) || (t != "t" && t != "f")) return false;
    out = t == "t";
    return true;
}

}  // namespace kasi
