/* kf_store_db.c: the store's SQLite plumbing: error messages, prepared statements,
 * transactions, and NULL-aware binding of values. */
#include "store/kf_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

int kf_store_fail(kf_store *s, kf_err *err, const char *what) {
    int code = sqlite3_errcode(s->db);
    int kcode = KF_E_IO;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) kcode = KF_E_FORMAT;
    else if (code == SQLITE_NOMEM) kcode = KF_E_NOMEM;
    else if (code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH) kcode = KF_E_INVALID;
    return kf_fail(err, kcode, "store %s: %s: %s", s->path ? s->path : "?", what,
                   sqlite3_errmsg(s->db));
}

int kf_store_prepare(kf_store *s, const char *sql, sqlite3_stmt **st, kf_err *err) {
    *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        int rc = kf_store_fail(s, err, "prepare");
        sqlite3_finalize(*st);
        *st = NULL;
        return rc;
    }
    return 0;
}

int kf_store_exec(kf_store *s, const char *sql, kf_err *err) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        char what[64];
        snprintf(what, sizeof what, "%.48s%s", sql, strlen(sql) > 48 ? "..." : "");
        return kf_store_fail(s, err, what);
    }
    return 0;
}

int kf_store_tx_begin(kf_store *s, kf_err *err) {
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return kf_store_fail(s, err, "begin transaction");
    return 0;
}

int kf_store_tx_commit(kf_store *s, kf_err *err) {
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = kf_store_fail(s, err, "commit");
        kf_store_tx_rollback(s);
        return rc;
    }
    return 0;
}

void kf_store_tx_rollback(kf_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

void kf_store_bind_text(sqlite3_stmt *st, int i, const char *text) {
    if (text) sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

void kf_store_bind_pos(sqlite3_stmt *st, int i, double v) {
    if (v > 0) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

char *kf_store_col_text(sqlite3_stmt *st, int i) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    return kf_strdup((const char *)sqlite3_column_text(st, i));
}

double kf_store_col_double(sqlite3_stmt *st, int i) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return 0;
    return sqlite3_column_double(st, i);
}
