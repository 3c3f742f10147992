// The PostgreSQL schema of the shared suppression list, and the migrations that build it.
// They ship inside the binary (pg_migrations.cpp), numbered from 1; the database records the
// ones applied in kasi_schema_migrations(version, name, applied_at). Every node runs
// migrate() on each connection: in one transaction under an advisory lock (so two nodes
// starting together apply each migration once), it applies those missing, in order. A
// failure rolls the whole transaction back and names the migration and PostgreSQL's error;
// the caller logs it, keeps serving from the local store and tries again later. A database
// with migrations newer than this binary knows is used as it is (migrations only add), with
// a warning.
//
// Version 1:
//   kasi_suppression            one row per (scope, address): reason, event, created,
//                               expires, deleted (a removal: a tombstone that other nodes
//                               pull), seq (from kasi_suppression_seq, new on every change),
//                               changed_at; a unique index on seq for the pull
//   kasi_suppression_outboxes   per node outbox file: how many of its records are committed
//                               (pushed in the same transaction as the records themselves)
//   kasi_suppression_meta       one row: a random id of this database, so that a node
//                               pointed at another database starts its pull from zero
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kasi {

class PgConn;

struct PgMigration {
    int version;
    const char* name;
    const char* sql;  // statements without values, run with PQexec
};

const std::vector<PgMigration>& suppression_pg_migrations();

// Advisory lock keys ("KASI" and a number): migrations; every write to kasi_suppression.
constexpr int64_t pg_lock_migrate = 0x4b41534900000001;
constexpr int64_t pg_lock_write = 0x4b41534900000002;

struct PgSchema {
    int before = 0;  // the version found
    int after = 0;   // the version now
};

// Brings the schema up to date; false with `err` (nothing applied) on failure.
bool migrate_suppression_schema(PgConn& c, PgSchema& out, std::string& err);

}  // namespace kasi
