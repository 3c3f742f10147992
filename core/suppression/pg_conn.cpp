#include "core/suppression/pg_conn.h"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/util/clock.h"

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

bool succeeded(const PGresult* r) {
    auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

}  // namespace

std::unique_ptr<PgConn> PgConn::connect(const std::string& conninfo, Limits limits,
                                        std::string& err) {
    // Kasi's defaults first: with expand_dbname the operator's string, expanded in place of
    // "dbname", overrides them.
    const char* keys[] = {"application_name", "client_encoding", "dbname", nullptr};
    const char* values[] = {"kasi", "UTF8", conninfo.c_str(), nullptr};
    std::unique_ptr<PgConn> c(new PgConn());
    c->limits_ = limits;
    c->c_.reset(PQconnectStartParams(keys, values, 1));
    if (!c->c_) {
        err = "out of memory";
        return nullptr;
    }
    if (PQstatus(c->c_.get()) == CONNECTION_BAD) {
        err = c->result_error_text();
        return nullptr;
    }
    int64_t deadline = now_ms() + limits.connect_ms;
    for (auto st = PGRES_POLLING_WRITING;;) {
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) {
            err = c->result_error_text();
            return nullptr;
        }
        if (!c->wait_socket(st == PGRES_POLLING_WRITING, deadline, err)) {
            err = "connecting: " + err;
            return nullptr;
        }
        st = PQconnectPoll(c->c_.get());
    }
    if (PQsetnonblocking(c->c_.get(), 1) != 0) {
        err = c->result_error_text();
        return nullptr;
    }
    PQsetNoticeProcessor(c->c_.get(), quiet_notice, nullptr);
    return c;
}

std::string PgConn::result_error_text() const {
    return result_error(nullptr, c_.get());
}

bool PgConn::wait_socket(bool out, int64_t deadline_ms, std::string& err) {
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left <= 0) {
            err = "timed out";
            return false;
        }
        pollfd p[2] = {{PQsocket(c_.get()), short(POLLIN | (out ? POLLOUT : 0)), 0},
                       {limits_.stop_fd, POLLIN, 0}};
        if (p[0].fd < 0) {
            err = result_error_text();
            return false;
        }
        int n = ::poll(p, limits_.stop_fd >= 0 ? 2 : 1, int(std::min<int64_t>(left, 1000)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = fmt::format("poll: {}", std::strerror(errno));
            return false;
        }
        if (limits_.stop_fd >= 0 && p[1].revents) {
            err = "stopping";
            return false;
        }
        if (p[0].revents) return true;
    }
}

PgResult PgConn::finish(std::string& err) {
    int64_t deadline = now_ms() + limits_.statement_ms;
    auto give_up = [&] {
        usable_ = false;  // the statement may still run: the connection is not ours to reuse
        sqlstate_.clear();
        return nullptr;
    };
    for (;;) {  // send what libpq buffered
        int f = PQflush(c_.get());
        if (f == 0) break;
        if (f < 0 || !wait_socket(true, deadline, err)) {
            if (f < 0) err = result_error_text();
            return give_up();
        }
        if (!PQconsumeInput(c_.get())) {
            err = result_error_text();
            return give_up();
        }
    }
    PgResult last, first_error;
    for (;;) {
        while (PQisBusy(c_.get())) {
            if (!wait_socket(false, deadline, err)) return give_up();
            if (!PQconsumeInput(c_.get())) {
                err = result_error_text();
                return give_up();
            }
        }
        PgResult r(PQgetResult(c_.get()));
        if (!r) break;
        if (!succeeded(r.get()) && !first_error)
            first_error = std::move(r);
        else
            last = std::move(r);
    }
    if (first_error) {
        failed(first_error.get(), err);
        return nullptr;
    }
    if (!last) {
        failed(nullptr, err);
        return nullptr;
    }
    return last;
}

PgResult PgConn::exec(const char* sql, const std::vector<std::optional<std::string>>& params,
                      std::string& err) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    if (!usable_ || !PQsendQueryParams(c_.get(), sql, int(values.size()), nullptr, values.data(),
                                       nullptr, nullptr, 0)) {
        err = usable_ ? result_error_text() : "the connection was given up";
        sqlstate_.clear();
        return nullptr;
    }
    return finish(err);
}

bool PgConn::run(const char* sql, std::string& err) {
    if (!usable_ || !PQsendQuery(c_.get(), sql)) {
        err = usable_ ? result_error_text() : "the connection was given up";
        sqlstate_.clear();
        return false;
    }
    return finish(err) != nullptr;
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
