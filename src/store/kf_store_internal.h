/* kf_store_internal.h: what the store's source files share (the handle, statement and
 * transaction helpers). Not part of the public API. */
#ifndef KF_STORE_INTERNAL_H
#define KF_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/kf_store.h"

struct kf_store {
    sqlite3 *db;
    char *path;
};

/* Fails with the database's current message: "store PATH: what: sqlite message". */
int kf_store_fail(kf_store *s, kf_err *err, const char *what);
/* Prepares sql into *st; on failure *st is NULL and the error code is returned. */
int kf_store_prepare(kf_store *s, const char *sql, sqlite3_stmt **st, kf_err *err);
/* Runs sql that returns no rows. */
int kf_store_exec(kf_store *s, const char *sql, kf_err *err);
/* BEGIN IMMEDIATE (so concurrent writers wait on the busy timeout), COMMIT, ROLLBACK. */
int kf_store_tx_begin(kf_store *s, kf_err *err);
int kf_store_tx_commit(kf_store *s, kf_err *err);
void kf_store_tx_rollback(kf_store *s);

/* Binding helpers: NULL text binds SQL NULL; a non-positive double binds NULL. */
void kf_store_bind_text(sqlite3_stmt *st, int i, const char *text);
void kf_store_bind_pos(sqlite3_stmt *st, int i, double v);
/* Column helpers: a copied string (NULL for SQL NULL), a double (0 for SQL NULL). */
char *kf_store_col_text(sqlite3_stmt *st, int i);
double kf_store_col_double(sqlite3_stmt *st, int i);

/* The id of the problem row (run_id, path); 0 when absent, negative on error. When create
 * is set, a missing row is inserted (not done). Call inside a transaction. */
int64_t kf_store_problem_id(kf_store *s, int64_t run_id, const char *path, int create,
                            kf_err *err);

#endif
