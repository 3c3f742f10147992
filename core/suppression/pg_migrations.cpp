#include "core/suppression/pg_migrations.h"

#include <fmt/format.h>

#include "core/suppression/pg_conn.h"

namespace kasi {

namespace {

// Never edit a migration that has shipped: add the next one.
const char* const v1 = R"SQL(
CREATE SEQUENCE kasi_suppression_seq;
CREATE TABLE kasi_suppression (
    scope      text     NOT NULL,
    address    text     NOT NULL,
    reason     text     NOT NULL,
    event      text     NOT NULL DEFAULT '',
    created    bigint   NOT NULL,
    expires    bigint   NOT NULL DEFAULT 0,
    deleted    boolean  NOT NULL DEFAULT false,
    seq        bigint   NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, address)
);
CREATE UNIQUE INDEX kasi_suppression_by_seq ON kasi_suppression (seq);
CREATE TABLE kasi_suppression_outboxes (
    id      text   PRIMARY KEY,
    node    text   NOT NULL,
    pushed  bigint NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kasi_suppression_meta (
    id text NOT NULL
);
INSERT INTO kasi_suppression_meta (id)
    SELECT md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text);
)SQL";

}  // namespace

const std::vector<PgMigration>& suppression_pg_migrations() {
    static const std::vector<PgMigration> all = {
        {1, "suppression list, outboxes, database id", v1},
    };
    return all;
}

bool migrate_suppression_schema(PgConn& c, PgSchema& out, std::string& err) {
    std::string e;
    auto fail = [&](const std::string& what) {
        std::string ignored;
        c.run("ROLLBACK", ignored);
        err = what;
        return false;
    };
    if (!c.run("BEGIN", e)) return fail("BEGIN: " + e);
    if (!c.exec("SELECT pg_advisory_xact_lock($1)", {std::to_string(pg_lock_migrate)}, e))
        return fail("taking the migration lock: " + e);
    if (!c.run("CREATE TABLE IF NOT EXISTS kasi_schema_migrations ("
               " version integer PRIMARY KEY, name text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               e))
        return fail("creating kasi_schema_migrations: " + e);
    auto r = c.exec("SELECT coalesce(max(version), 0) FROM kasi_schema_migrations", {}, e);
    int64_t v = 0;
    if (!r || !pg_i64(r.get(), 0, 0, v))
        return fail("reading kasi_schema_migrations: " + (r ? "not a number" : e));
    out.before = out.after = int(v);
    for (const auto& m : suppression_pg_migrations()) {
        if (m.version <= v) continue;
        if (!c.run(m.sql, e))
            return fail(fmt::format("migration {} ({}): {}", m.version, m.name, e));
        if (!c.exec("INSERT INTO kasi_schema_migrations (version, name) VALUES ($1, $2)",
                    {std::to_string(m.version), std::string(m.name)}, e))
            return fail(fmt::format("recording migration {}: {}", m.version, e));
        out.after = m.version;
    }
    if (!c.run("COMMIT", e)) return fail("COMMIT: " + e);
    return true;
}

}  // namespace kasi
