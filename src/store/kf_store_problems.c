/* kf_store_problems.c: problems and attempts: starting a problem, recording attempts with
 * their programs and results, finishing a problem atomically, and reading outcomes back. */
#include "store/kf_store_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kf_str.h"

#define KF_ROW_COLUMNS                                                                      \
    "path, level, status, message, eager_ms, compile_ms, kforge_ms, speedup_eager,"        \
    " speedup_compile, agent, attempts, degenerate, winner_attempt, eager_default_ms,"       \
    " compile_default_ms"

int kf_status_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < KF_ST_COUNT; i++)
        if (!strcmp(kf_status_name((kf_status)i), name)) return i;
    return -1;
}

/* Reads the KF_ROW_COLUMNS of the current row of st, starting at column 0. */
static void kf_store_read_row(sqlite3_stmt *st, kf_problem_row *r) {
    memset(r, 0, sizeof *r);
    r->path = kf_store_col_text(st, 0);
    r->level = sqlite3_column_int(st, 1);
    const char *status = (const char *)sqlite3_column_text(st, 2);
    int code = kf_status_from_name(status);
    r->status = code < 0 ? KF_ST_ERROR : (kf_status)code;
    r->message = kf_store_col_text(st, 3);
    r->eager_ms = kf_store_col_double(st, 4);
    r->compile_ms = kf_store_col_double(st, 5);
    r->kforge_ms = kf_store_col_double(st, 6);
    r->speedup_eager = kf_store_col_double(st, 7);
    r->speedup_compile = kf_store_col_double(st, 8);
    r->agent = kf_store_col_text(st, 9);
    r->attempts = sqlite3_column_int(st, 10);
    r->degenerate = sqlite3_column_int(st, 11);
    r->winner_attempt = sqlite3_column_int64(st, 12);
    r->eager_default_ms = kf_store_col_double(st, 13);
    r->compile_default_ms = kf_store_col_double(st, 14);
}

void kf_problem_row_free(kf_problem_row *r) {
    if (!r) return;
    free((void *)r->path);
    free((void *)r->message);
    free((void *)r->agent);
    memset(r, 0, sizeof *r);
}

void kf_problem_rows_free(kf_problem_row *rows, int n) {
    if (!rows) return;
    for (int i = 0; i < n; i++) kf_problem_row_free(&rows[i]);
    free(rows);
}

int64_t kf_store_problem_id(kf_store *s, int64_t run_id, const char *path, int create,
                            kf_err *err) {
    sqlite3_stmt *st;
    int rc = kf_store_prepare(s, "SELECT id FROM problems WHERE run_id = ?1 AND path = ?2", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    kf_store_bind_text(st, 2, path);
    int step = sqlite3_step(st);
    int64_t id = 0;
    if (step == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE) id = kf_store_fail(s, err, "finding the problem");
    sqlite3_finalize(st);
    if (id != 0 || !create) return id;
    rc = kf_store_prepare(s, "INSERT INTO problems (run_id, path) VALUES (?1, ?2)", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    kf_store_bind_text(st, 2, path);
    if (sqlite3_step(st) == SQLITE_DONE) id = sqlite3_last_insert_rowid(s->db);
    else id = kf_store_fail(s, err, "adding the problem (is the run id right?)");
    sqlite3_finalize(st);
    return id;
}

/* Runs a statement with one int64 parameter. */
static int kf_store_exec_id(kf_store *s, const char *sql, int64_t id, kf_err *err) {
    sqlite3_stmt *st;
    int rc = kf_store_prepare(s, sql, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "updating");
    sqlite3_finalize(st);
    return rc;
}

int kf_store_begin_problem(kf_store *s, int64_t run_id, const char *path, kf_err *err) {
    if (!path) return kf_fail(err, KF_E_INVALID, "store: begin_problem without a path");
    int rc = kf_store_tx_begin(s, err);
    if (rc) return rc;
    int64_t pid = kf_store_problem_id(s, run_id, path, 1, err);
    if (pid < 0) {
        kf_store_tx_rollback(s);
        return (int)pid;
    }
    /* An unfinished problem left by an interrupted try: drop its attempts. */
    rc = kf_store_exec_id(s,
                          "DELETE FROM attempts WHERE problem_id = ?1 AND"
                          " (SELECT done FROM problems WHERE id = ?1) = 0",
                          pid, err);
    if (rc) {
        kf_store_tx_rollback(s);
        return rc;
    }
    return kf_store_tx_commit(s, err);
}

/* [{"file": ..., "text": ...}, ...] for the program's sources. */
static char *kf_store_sources_json(const kf_program *p) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (int i = 0; i < p->n_sources; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "file", p->sources[i].file ? p->sources[i].file : "");
        cJSON_AddStringToObject(o, "text", p->sources[i].text ? p->sources[i].text : "");
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return text;
}

static int kf_store_insert_attempt(kf_store *s, int64_t pid, const char *agent, int number,
                                   const char *plan, const char *sources, const kf_result *res,
                                   int64_t *attempt_id, kf_err *err) {
    sqlite3_stmt *st;
    int rc = kf_store_prepare(s, "DELETE FROM attempts WHERE problem_id = ?1 AND agent = ?2 AND number = ?3",
                              &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, pid);
    kf_store_bind_text(st, 2, agent);
    sqlite3_bind_int(st, 3, number);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "replacing the attempt");
    sqlite3_finalize(st);
    if (rc) return rc;
    rc = kf_store_prepare(
        s, "INSERT INTO attempts (problem_id, agent, number, status, message, trial, output, idx,"
           " got, expected, signal, ms, min_ms, max_ms, eager_ms, compile_ms, degenerate, build_s,"
           " plan_json, sources_json, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
           " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, pid);
    kf_store_bind_text(st, 2, agent);
    sqlite3_bind_int(st, 3, number);
    kf_store_bind_text(st, 4, kf_status_name(res->status));
    kf_store_bind_text(st, 5, res->message);
    sqlite3_bind_int(st, 6, res->trial);
    sqlite3_bind_int(st, 7, res->output);
    sqlite3_bind_int64(st, 8, res->index);
    sqlite3_bind_double(st, 9, res->got);
    sqlite3_bind_double(st, 10, res->expected);
    sqlite3_bind_int(st, 11, res->signal);
    kf_store_bind_pos(st, 12, res->ms);
    kf_store_bind_pos(st, 13, res->min_ms);
    kf_store_bind_pos(st, 14, res->max_ms);
    kf_store_bind_pos(st, 15, res->eager_ms);
    kf_store_bind_pos(st, 16, res->compile_ms);
    sqlite3_bind_int(st, 17, res->degenerate ? 1 : 0);
    kf_store_bind_pos(st, 18, res->build_s);
    kf_store_bind_text(st, 19, plan);
    kf_store_bind_text(st, 20, sources);
    sqlite3_bind_int64(st, 21, (int64_t)time(NULL));
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "recording the attempt");
    sqlite3_finalize(st);
    if (!rc && attempt_id) *attempt_id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

int kf_store_add_attempt(kf_store *s, int64_t run_id, const char *path, const char *agent,
                         int number, const kf_program *prog, const kf_result *res,
                         int64_t *attempt_id, kf_err *err) {
    if (!path || !agent || !res)
        return kf_fail(err, KF_E_INVALID, "store: add_attempt needs a path, an agent and a result");
    if ((unsigned)res->status >= KF_ST_COUNT)
        return kf_fail(err, KF_E_INVALID, "store: attempt with an unknown status %d", (int)res->status);
    char *plan = NULL, *sources = NULL;
    if (prog) {
        plan = kf_program_to_json(prog);
        sources = kf_store_sources_json(prog);
        if (!plan || !sources) {
            free(plan);
            free(sources);
            return kf_fail(err, KF_E_NOMEM, "store: could not serialize the program");
        }
    }
    int rc = kf_store_tx_begin(s, err);
    if (!rc) {
        int64_t pid = kf_store_problem_id(s, run_id, path, 1, err);
        rc = pid < 0 ? (int)pid
                     : kf_store_insert_attempt(s, pid, agent, number, plan, sources, res, attempt_id, err);
        if (rc) kf_store_tx_rollback(s);
        else rc = kf_store_tx_commit(s, err);
    }
    free(plan);
    free(sources);
    return rc;
}

static int kf_store_update_outcome(kf_store *s, int64_t pid, const kf_problem_row *row, kf_err *err) {
    sqlite3_stmt *st;
    int rc;
    if (row->winner_attempt) {
        rc = kf_store_prepare(s, "SELECT 1 FROM attempts WHERE id = ?1 AND problem_id = ?2", &st, err);
        if (rc) return rc;
        sqlite3_bind_int64(st, 1, row->winner_attempt);
        sqlite3_bind_int64(st, 2, pid);
        int found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!found)
            return kf_fail(err, KF_E_INVALID, "store: attempt %lld is not an attempt of %s",
                           (long long)row->winner_attempt, row->path);
    }
    rc = kf_store_prepare(
        s, "UPDATE problems SET level = ?2, done = 1, status = ?3, message = ?4, eager_ms = ?5,"
           " compile_ms = ?6, kforge_ms = ?7, speedup_eager = ?8, speedup_compile = ?9, agent = ?10,"
           " attempts = ?11, degenerate = ?12, winner_attempt = ?13, finished = ?14,"
           " eager_default_ms = ?15, compile_default_ms = ?16 WHERE id = ?1",
        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int(st, 2, row->level);
    kf_store_bind_text(st, 3, kf_status_name(row->status));
    kf_store_bind_text(st, 4, row->message);
    kf_store_bind_pos(st, 5, row->eager_ms);
    kf_store_bind_pos(st, 6, row->compile_ms);
    kf_store_bind_pos(st, 7, row->kforge_ms);
    kf_store_bind_pos(st, 8, row->speedup_eager);
    kf_store_bind_pos(st, 9, row->speedup_compile);
    kf_store_bind_text(st, 10, row->agent);
    sqlite3_bind_int(st, 11, row->attempts);
    sqlite3_bind_int(st, 12, row->degenerate ? 1 : 0);
    if (row->winner_attempt) sqlite3_bind_int64(st, 13, row->winner_attempt);
    else sqlite3_bind_null(st, 13);
    sqlite3_bind_int64(st, 14, (int64_t)time(NULL));
    kf_store_bind_pos(st, 15, row->eager_default_ms);
    kf_store_bind_pos(st, 16, row->compile_default_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : kf_store_fail(s, err, "finishing the problem");
    sqlite3_finalize(st);
    return rc;
}

int kf_store_finish_problem(kf_store *s, int64_t run_id, const kf_problem_row *row, kf_err *err) {
    if (!row || !row->path) return kf_fail(err, KF_E_INVALID, "store: finish_problem without a path");
    if ((unsigned)row->status >= KF_ST_COUNT)
        return kf_fail(err, KF_E_INVALID, "store: problem %s with an unknown status %d", row->path,
                       (int)row->status);
    int rc = kf_store_tx_begin(s, err);
    if (rc) return rc;
    int64_t pid = kf_store_problem_id(s, run_id, row->path, 1, err);
    rc = pid < 0 ? (int)pid : kf_store_update_outcome(s, pid, row, err);
    if (rc) {
        kf_store_tx_rollback(s);
        return rc;
    }
    return kf_store_tx_commit(s, err);
}

int kf_store_problem_done(kf_store *s, int64_t run_id, const char *path, kf_problem_row *row_out,
                          kf_err *err) {
    sqlite3_stmt *st;
    int rc = kf_store_prepare(s, "SELECT " KF_ROW_COLUMNS " FROM problems"
                                 " WHERE run_id = ?1 AND path = ?2 AND done = 1", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    kf_store_bind_text(st, 2, path);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (row_out) kf_store_read_row(st, row_out);
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = kf_store_fail(s, err, "checking the problem");
    }
    sqlite3_finalize(st);
    return rc;
}

int kf_store_list_problems(kf_store *s, int64_t run_id, kf_problem_row **rows, int *n, kf_err *err) {
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = kf_store_prepare(s, "SELECT " KF_ROW_COLUMNS " FROM problems"
                                 " WHERE run_id = ?1 AND done = 1 ORDER BY id", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    kf_problem_row *out = NULL;
    int count = 0, cap = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            int ncap = cap ? cap * 2 : 16;
            kf_problem_row *grown = realloc(out, (size_t)ncap * sizeof *out);
            if (!grown) {
                rc = kf_fail(err, KF_E_NOMEM, "store: out of memory listing problems");
                break;
            }
            out = grown;
            cap = ncap;
        }
        kf_store_read_row(st, &out[count++]);
    }
    if (!rc && step != SQLITE_DONE) rc = kf_store_fail(s, err, "listing problems");
    sqlite3_finalize(st);
    if (rc) {
        kf_problem_rows_free(out, count);
        return rc;
    }
    *rows = out;
    *n = count;
    return 0;
}
