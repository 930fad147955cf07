/* kf_store.c: opening the store (pragmas, schema creation, schema version check) and the
 * runs table (begin, end, find the last one for --resume, read one back). */
#include "store/kf_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kf_str.h"

#define KF_STORE_BUSY_MS 30000

static const char *const kf_store_schema =
    "CREATE TABLE kf_schema (version INTEGER NOT NULL);"
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY, target TEXT, agents TEXT, attempts INTEGER, command TEXT,"
    "  torch_version TEXT, blas TEXT, threads INTEGER, device TEXT, kforge_version TEXT,"
    "  precision TEXT, atol REAL, rtol REAL, started INTEGER, finished INTEGER);"
    "CREATE TABLE problems ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  path TEXT NOT NULL, level INTEGER NOT NULL DEFAULT -1,"
    "  done INTEGER NOT NULL DEFAULT 0, status TEXT, message TEXT,"
    "  eager_ms REAL, compile_ms REAL, kforge_ms REAL, speedup_eager REAL, speedup_compile REAL,"
    "  eager_default_ms REAL, compile_default_ms REAL,"
    "  agent TEXT, attempts INTEGER NOT NULL DEFAULT 0, degenerate INTEGER NOT NULL DEFAULT 0,"
    "  winner_attempt INTEGER REFERENCES attempts(id) ON DELETE SET NULL,"
    "  finished INTEGER,"
    "  UNIQUE (run_id, path));"
    "CREATE TABLE attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  problem_id INTEGER NOT NULL REFERENCES problems(id) ON DELETE CASCADE,"
    "  agent TEXT NOT NULL, number INTEGER NOT NULL, status TEXT NOT NULL, message TEXT,"
    "  trial INTEGER, output INTEGER, idx INTEGER, got REAL, expected REAL, signal INTEGER,"
    "  ms REAL, min_ms REAL, max_ms REAL, eager_ms REAL, compile_ms REAL,"
    "  degenerate INTEGER NOT NULL DEFAULT 0, build_s REAL,"
    "  plan_json TEXT, sources_json TEXT, created INTEGER,"
    "  UNIQUE (problem_id, agent, number));"
    "CREATE INDEX attempts_problem ON attempts(problem_id);"
    "CREATE INDEX problems_path ON problems(path);";

/* Inside a transaction: create the schema in an empty database, or check the version. */
static int kf_store_check_schema(kf_store *s, kf_err *err) {
    sqlite3_stmt *st;
    int prc = kf_store_prepare(
        s, "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'),"
           " (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'kf_schema')", &st, err);
    if (prc) return prc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return kf_store_fail(s, err, "reading the schema");
    }
    int n_tables = sqlite3_column_int(st, 0), has_version = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    if (n_tables == 0) {
        int rc = kf_store_exec(s, kf_store_schema, err);
        if (rc) return rc;
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO kf_schema (version) VALUES (%d)",
                 KF_STORE_SCHEMA_VERSION);
        return kf_store_exec(s, sql, err);
    }
    if (!has_version)
        return kf_fail(err, KF_E_FORMAT, "store %s: a SQLite file but not a kforge store", s->path);
    prc = kf_store_prepare(s, "SELECT max(version) FROM kf_schema", &st, err);
    if (prc) return prc;
    int version = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version == 1) { /* version 1 lacks the default-precision baselines: add them */
        int rc = kf_store_exec(s, "ALTER TABLE problems ADD COLUMN eager_default_ms REAL;"
                                  "ALTER TABLE problems ADD COLUMN compile_default_ms REAL;"
                                  "UPDATE kf_schema SET version = 2;", err);
        if (rc) return rc;
        version = 2;
    }
    if (version != KF_STORE_SCHEMA_VERSION)
        return kf_fail(err, KF_E_FORMAT,
                       "store %s has schema version %d; this kforge reads version %d "
                       "(use another file or migrate it)",
                       s->path, version, KF_STORE_SCHEMA_VERSION);
    return 0;
}

/* Switching a new file to WAL needs an exclusive lock, and SQLite answers "busy" at once
 * (without the busy handler) when another process is doing the same: retry for a while. */
static int kf_store_set_wal(kf_store *s, kf_err *err) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int waited_ms = 0;; waited_ms += 10) {
        int rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return 0;
        int base = rc & 0xff;
        if ((base != SQLITE_BUSY && base != SQLITE_LOCKED) || waited_ms >= KF_STORE_BUSY_MS)
            return kf_store_fail(s, err, "setting WAL mode");
        nanosleep(&pause, NULL);
    }
}

int kf_store_open(const char *path, kf_store **out, kf_err *err) {
    *out = NULL;
    if (!path || !*path) return kf_fail(err, KF_E_INVALID, "store: no path given");
    kf_store *s = calloc(1, sizeof *s);
    if (!s) return kf_fail(err, KF_E_NOMEM, "store: out of memory");
    s->path = kf_strdup(path);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int rc = s->db ? kf_store_fail(s, err, "open")
                       : kf_fail(err, KF_E_NOMEM, "store %s: out of memory", path);
        kf_store_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, KF_STORE_BUSY_MS);
    int rc = kf_store_exec(s, "PRAGMA foreign_keys = ON", err);
    /* WAL lets readers (a report) run beside a writer; ":memory:" stays in memory mode. */
    if (!rc) rc = kf_store_set_wal(s, err);
    if (!rc) rc = kf_store_exec(s, "PRAGMA synchronous = NORMAL", err);
    if (!rc) rc = kf_store_tx_begin(s, err);
    if (!rc) {
        rc = kf_store_check_schema(s, err);
        if (rc) kf_store_tx_rollback(s);
        else rc = kf_store_tx_commit(s, err);
    }
    if (rc) {
        kf_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kf_store_close(kf_store *s) {
    if (!s) return;
    if (s->db) sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

int kf_store_begin_run(kf_store *s, const kf_run_info *info, int64_t *run_id, kf_err *err) {
    sqlite3_stmt *st;
    int prc = kf_store_prepare(
        s, "INSERT INTO runs (target, agents, attempts, command, torch_version, blas, threads,"
           " device, kforge_version, precision, atol, rtol, started)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &st, err);
    if (prc) return prc;
    kf_store_bind_text(st, 1, info->target);
    kf_store_bind_text(st, 2, info->agents);
    sqlite3_bind_int(st, 3, info->attempts);
    kf_store_bind_text(st, 4, info->command);
    kf_store_bind_text(st, 5, info->torch_version);
    kf_store_bind_text(st, 6, info->blas);
    sqlite3_bind_int(st, 7, info->threads);
    kf_store_bind_text(st, 8, info->device);
    kf_store_bind_text(st, 9, info->kforge_version);
    kf_store_bind_text(st, 10, info->precision ? info->precision : "strict");
    kf_store_bind_pos(st, 11, info->atol);
    kf_store_bind_pos(st, 12, info->rtol);
    sqlite3_bind_int64(st, 13, info->started ? info->started : (int64_t)time(NULL));
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "recording the run");
    sqlite3_finalize(st);
    if (!rc) *run_id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

int kf_store_end_run(kf_store *s, int64_t run_id, kf_err *err) {
    sqlite3_stmt *st;
    int prc = kf_store_prepare(s, "UPDATE runs SET finished = ?1 WHERE id = ?2", &st, err);
    if (prc) return prc;
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_int64(st, 2, run_id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "ending the run");
    sqlite3_finalize(st);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = kf_fail(err, KF_E_INVALID, "store %s: no run %lld", s->path, (long long)run_id);
    return rc;
}

int kf_store_last_run(kf_store *s, const char *target, const char *agents, int64_t *run_id,
                      kf_err *err) {
    sqlite3_stmt *st;
    int prc = kf_store_prepare(
        s, "SELECT id FROM runs WHERE (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR agents = ?2)"
           " ORDER BY id DESC LIMIT 1", &st, err);
    if (prc) return prc;
    kf_store_bind_text(st, 1, target);
    kf_store_bind_text(st, 2, agents);
    int rc = sqlite3_step(st);
    int result;
    if (rc == SQLITE_ROW) {
        *run_id = sqlite3_column_int64(st, 0);
        result = 1;
    } else if (rc == SQLITE_DONE) {
        result = 0;
    } else {
        result = kf_store_fail(s, err, "finding the last run");
    }
    sqlite3_finalize(st);
    return result;
}

int kf_store_get_run(kf_store *s, int64_t run_id, kf_run_info *out, kf_err *err) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    int prc = kf_store_prepare(
        s, "SELECT target, agents, attempts, command, torch_version, blas, threads, device,"
           " kforge_version, precision, atol, rtol, started, finished FROM runs WHERE id = ?1", &st, err);
    if (prc) return prc;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_ROW) {
        out->target = kf_store_col_text(st, 0);
        out->agents = kf_store_col_text(st, 1);
        out->attempts = sqlite3_column_int(st, 2);
        out->command = kf_store_col_text(st, 3);
        out->torch_version = kf_store_col_text(st, 4);
        out->blas = kf_store_col_text(st, 5);
        out->threads = sqlite3_column_int(st, 6);
        out->device = kf_store_col_text(st, 7);
        out->kforge_version = kf_store_col_text(st, 8);
        out->precision = kf_store_col_text(st, 9);
        out->atol = kf_store_col_double(st, 10);
        out->rtol = kf_store_col_double(st, 11);
        out->started = sqlite3_column_int64(st, 12);
        out->finished = sqlite3_column_int64(st, 13);
    } else if (rc == SQLITE_DONE) {
        result = kf_fail(err, KF_E_INVALID, "store %s: no run %lld", s->path, (long long)run_id);
    } else {
        result = kf_store_fail(s, err, "reading the run");
    }
    sqlite3_finalize(st);
    return result;
}

void kf_run_info_free(kf_run_info *info) {
    if (!info) return;
    free((void *)info->target);
    free((void *)info->agents);
    free((void *)info->command);
    free((void *)info->torch_version);
    free((void *)info->blas);
    free((void *)info->device);
    free((void *)info->kforge_version);
    free((void *)info->precision);
    memset(info, 0, sizeof *info);
}
