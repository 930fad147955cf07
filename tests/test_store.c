/* test_store.c: the SQLite run store: a full round trip (run, attempts, finish, done check,
 * resume, winner lookup, agent stats), a process killed mid-problem, the schema version
 * check, and rejected inputs. */
#include "kf_test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "core/kf_str.h"
#include "store/kf_store.h"

static char kf_tmpdir[256];

static char *tmp_path(const char *name) {
    if (!kf_tmpdir[0]) {
        /* mkdtemp's template: the prefix, then six 'X' that it replaces. */
        int at = snprintf(kf_tmpdir, sizeof kf_tmpdir, "/tmp/kf_test_store_");
        memset(kf_tmpdir + at, 'X', 6);
        kf_tmpdir[at + 6] = '\0';
        if (!mkdtemp(kf_tmpdir)) return NULL;
    }
    return kf_asprintf("%s/%s", kf_tmpdir, name);
}

static kf_run_info run_info(const char *target, const char *agents) {
    kf_run_info ri;
    memset(&ri, 0, sizeof ri);
    ri.target = target;
    ri.agents = agents;
    ri.attempts = 5;
    ri.command = "kforge bench problems --agents naive,search";
    ri.torch_version = "2.4.0";
    ri.blas = "openblas";
    ri.threads = 2;
    ri.device = "cpu: test";
    ri.kforge_version = "0.1";
    return ri;
}

static kf_result result(kf_status st, double ms) {
    kf_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.ms = ms;
    r.eager_ms = ms > 0 ? 2.0 : 0;
    r.compile_ms = -1;
    r.message = st == KF_ST_VERIFIED ? NULL : "output 0 differs at index 7";
    return r;
}

/* A program with only sources: enough for the store, which keeps plan and sources. */
static void test_program(kf_program *p, kf_source *src) {
    memset(p, 0, sizeof *p);
    p->target = "cpu";
    p->agent = "naive";
    src[0].file = "kernels.c";
    src[0].text = "void k0(float *x) { x[0] = 1.0f; }\n";
    src[1].file = "extra.c";
    src[1].text = "int helper;\n";
    p->sources = src;
    p->n_sources = 2;
}

static kf_problem_row outcome(const char *path, int level, int64_t winner, const char *agent) {
    kf_problem_row row;
    memset(&row, 0, sizeof row);
    row.path = path;
    row.level = level;
    row.status = winner ? KF_ST_VERIFIED : KF_ST_MISMATCH;
    row.message = winner ? NULL : "output 0 differs";
    row.eager_ms = 2.0;
    row.kforge_ms = winner ? 1.0 : 0;
    row.speedup_eager = winner ? 2.0 : 0;
    row.agent = agent;
    row.attempts = 3;
    row.winner_attempt = winner;
    return row;
}

static void test_round_trip(void) {
    char *path = tmp_path("round.db");
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("open failed: %s", err.msg);
    kf_run_info ri = run_info("cpu", "naive,search");
    int64_t run = 0;
    KF_CHECK_EQ_INT(kf_store_begin_run(s, &ri, &run, &err), 0);
    KF_CHECK(run > 0);

    kf_run_info back;
    KF_CHECK_EQ_INT(kf_store_get_run(s, run, &back, &err), 0);
    KF_CHECK_STR(back.target, "cpu");
    KF_CHECK_STR(back.agents, "naive,search");
    KF_CHECK_STR(back.torch_version, "2.4.0");
    KF_CHECK_STR(back.precision, "strict");
    KF_CHECK_EQ_INT(back.attempts, 5);
    KF_CHECK_EQ_INT(back.threads, 2);
    KF_CHECK(back.started > 0);
    KF_CHECK_EQ_INT(back.finished, 0);
    kf_run_info_free(&back);

    const char *p1 = "problems/level1/19_ReLU.py";
    kf_program prog;
    kf_source src[2];
    test_program(&prog, src);
    KF_CHECK_EQ_INT(kf_store_begin_problem(s, run, p1, &err), 0);
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p1, NULL, &err), 0);
    int64_t a1 = 0, a2 = 0, a3 = 0;
    kf_result r1 = result(KF_ST_MISMATCH, 0), r2 = result(KF_ST_VERIFIED, 1.0),
              r3 = result(KF_ST_VERIFIED, 1.5);
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p1, "naive", 1, &prog, &r1, &a1, &err), 0);
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p1, "naive", 2, &prog, &r2, &a2, &err), 0);
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p1, "search", 1, NULL, &r3, &a3, &err), 0);
    KF_CHECK(a1 > 0 && a2 > a1 && a3 > a2);
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p1, NULL, &err), 0);

    kf_problem_row row = outcome(p1, 1, a2, "naive");
    row.speedup_compile = 0;
    row.eager_default_ms = 1.5;   /* timed at PyTorch's default precision */
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, run, &row, &err), 0);

    /* A second problem that nobody solved. */
    const char *p2 = "problems/level2/5_Conv.py";
    int64_t b1 = 0;
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p2, "naive", 1, NULL, &r1, &b1, &err), 0);
    kf_problem_row row2 = outcome(p2, 2, 0, NULL);
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, run, &row2, &err), 0);
    KF_CHECK_EQ_INT(kf_store_end_run(s, run, &err), 0);
    kf_store_close(s);

    /* Reopen: everything is on disk. */
    s = NULL;
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("reopen failed: %s", err.msg);
    kf_problem_row got;
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p1, &got, &err), 1);
    KF_CHECK_STR(got.path, p1);
    KF_CHECK_EQ_INT(got.level, 1);
    KF_CHECK_EQ_INT(got.status, KF_ST_VERIFIED);
    KF_CHECK_NEAR(got.eager_ms, 2.0, 1e-12);
    KF_CHECK_NEAR(got.kforge_ms, 1.0, 1e-12);
    KF_CHECK_NEAR(got.speedup_eager, 2.0, 1e-12);
    KF_CHECK_EQ_INT(got.compile_ms, 0);
    KF_CHECK_EQ_INT(got.speedup_compile, 0);
    KF_CHECK_NEAR(got.eager_default_ms, 1.5, 1e-12);
    KF_CHECK_EQ_INT(got.compile_default_ms, 0);
    KF_CHECK_STR(got.agent, "naive");
    KF_CHECK_EQ_INT(got.attempts, 3);
    KF_CHECK_EQ_INT(got.winner_attempt, a2);
    KF_CHECK(got.message == NULL);
    kf_problem_row_free(&got);

    kf_problem_row *rows = NULL;
    int n = 0;
    KF_CHECK_EQ_INT(kf_store_list_problems(s, run, &rows, &n, &err), 0);
    KF_CHECK_EQ_INT(n, 2);
    if (n == 2) {
        KF_CHECK_STR(rows[0].path, p1);
        KF_CHECK_STR(rows[1].path, p2);
        KF_CHECK_EQ_INT(rows[1].status, KF_ST_MISMATCH);
        KF_CHECK_STR(rows[1].message, "output 0 differs");
        KF_CHECK(rows[1].agent == NULL);
        KF_CHECK_EQ_INT(rows[1].level, 2);
    }
    kf_problem_rows_free(rows, n);

    /* Resume finds this run for the same target and agents, and no run for others. */
    int64_t found = 0;
    KF_CHECK_EQ_INT(kf_store_last_run(s, "cpu", "naive,search", &found, &err), 1);
    KF_CHECK_EQ_INT(found, run);
    KF_CHECK_EQ_INT(kf_store_last_run(s, "cuda", "naive,search", &found, &err), 0);
    KF_CHECK_EQ_INT(kf_store_last_run(s, "cpu", "search", &found, &err), 0);
    KF_CHECK_EQ_INT(kf_store_last_run(s, NULL, NULL, &found, &err), 1);
    kf_store_get_run(s, run, &back, &err);
    KF_CHECK(back.finished > 0);
    kf_run_info_free(&back);

    /* Winner by full path, by file name, by stem. */
    const char *queries[] = {p1, "19_ReLU.py", "level1/19_ReLU.py", "19_ReLU", "/elsewhere/19_ReLU.py"};
    for (int q = 0; q < 5; q++) {
        kf_winner w;
        int rc = kf_store_winner(s, queries[q], NULL, &w, &err);
        KF_CHECK_MSG(rc == 0, "query %s: %s", queries[q], err.msg);
        if (rc) continue;
        KF_CHECK_STR(w.path, p1);
        KF_CHECK_STR(w.agent, "naive");
        KF_CHECK_STR(w.target, "cpu");
        KF_CHECK_EQ_INT(w.attempt_id, a2);
        KF_CHECK_EQ_INT(w.number, 2);
        KF_CHECK_EQ_INT(w.run_id, run);
        KF_CHECK(w.plan_json != NULL && w.plan_json[0] == '{');
        cJSON *srcs = w.sources_json ? cJSON_Parse(w.sources_json) : NULL;
        KF_CHECK(cJSON_IsArray(srcs) && cJSON_GetArraySize(srcs) == 2);
        if (cJSON_GetArraySize(srcs) == 2) {
            cJSON *s0 = cJSON_GetArrayItem(srcs, 0);
            KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "file")), "kernels.c");
            KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "text")), src[0].text);
        }
        cJSON_Delete(srcs);
        if (q == 0) {
            kf_program back_prog;
            int prc = kf_winner_program(&w, &back_prog, &err);
            KF_CHECK_MSG(prc == 0, "%s", err.msg);
            if (!prc) {
                KF_CHECK_EQ_INT(back_prog.n_sources, 2);
                KF_CHECK_STR(back_prog.target, "cpu");
                if (back_prog.n_sources == 2) {
                    KF_CHECK_STR(back_prog.sources[1].file, "extra.c");
                    KF_CHECK_STR(back_prog.sources[1].text, src[1].text);
                }
                kf_program_free(&back_prog);
            }
        }
        kf_winner_free(&w);
    }
    kf_winner w;
    KF_CHECK_EQ_INT(kf_store_winner(s, "19_ReLU", "cuda", &w, &err), KF_E_INVALID);
    KF_CHECK(strstr(err.msg, "no verified kernel") != NULL);
    KF_CHECK_EQ_INT(kf_store_winner(s, "5_Conv", NULL, &w, &err), KF_E_INVALID);
    KF_CHECK_EQ_INT(kf_store_winner(s, "9_ReLU", NULL, &w, &err), KF_E_INVALID);

    /* Agent statistics: naive verified on its 2nd attempt of p1, failed p2; search on its 1st. */
    kf_agent_stats *stats = NULL;
    int ns = 0;
    KF_CHECK_EQ_INT(kf_store_agent_stats(s, run, &stats, &ns, &err), 0);
    KF_CHECK_EQ_INT(ns, 2);
    if (ns == 2) {
        KF_CHECK_STR(stats[0].agent, "naive");
        KF_CHECK_EQ_INT(stats[0].problems, 2);
        KF_CHECK_EQ_INT(stats[0].wins, 1);
        KF_CHECK_EQ_INT(stats[0].attempts, 3);
        KF_CHECK_EQ_INT(stats[0].by_status[KF_ST_MISMATCH], 2);
        KF_CHECK_EQ_INT(stats[0].by_status[KF_ST_VERIFIED], 1);
        KF_CHECK_EQ_INT(stats[0].max_number, 2);
        if (stats[0].correct_within) {
            KF_CHECK_EQ_INT(stats[0].correct_within[0], 0);
            KF_CHECK_EQ_INT(stats[0].correct_within[1], 1);
        }
        KF_CHECK_STR(stats[1].agent, "search");
        KF_CHECK_EQ_INT(stats[1].problems, 1);
        KF_CHECK_EQ_INT(stats[1].wins, 0);
        KF_CHECK_EQ_INT(stats[1].max_number, 1);
        if (stats[1].correct_within) KF_CHECK_EQ_INT(stats[1].correct_within[0], 1);
    }
    kf_agent_stats_free(stats, ns);
    kf_store_close(s);
    free(path);
}

static void test_latest_winner_and_ambiguity(void) {
    char *path = tmp_path("latest.db");
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("open failed: %s", err.msg);
    kf_result ok = result(KF_ST_VERIFIED, 1.0);
    const char *p = "suite/level1/1_Matmul.py", *q = "suite/level2/1_Matmul.py";
    int64_t runs[2], ids[2];
    const char *agents[2] = {"naive", "search"};
    for (int i = 0; i < 2; i++) {
        kf_run_info ri = run_info("cpu", agents[i]);
        KF_CHECK_EQ_INT(kf_store_begin_run(s, &ri, &runs[i], &err), 0);
        KF_CHECK_EQ_INT(kf_store_add_attempt(s, runs[i], p, agents[i], 1, NULL, &ok, &ids[i], &err), 0);
        kf_problem_row row = outcome(p, 1, ids[i], agents[i]);
        KF_CHECK_EQ_INT(kf_store_finish_problem(s, runs[i], &row, &err), 0);
    }
    kf_winner w;
    KF_CHECK_EQ_INT(kf_store_winner(s, "1_Matmul", NULL, &w, &err), 0);
    KF_CHECK_STR(w.agent, "search");
    KF_CHECK_EQ_INT(w.run_id, runs[1]);
    kf_winner_free(&w);
    int64_t last = 0;
    KF_CHECK_EQ_INT(kf_store_last_run(s, "cpu", "naive", &last, &err), 1);
    KF_CHECK_EQ_INT(last, runs[0]);

    /* A second problem with the same file name in another level: the name is ambiguous. */
    int64_t qa = 0;
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, runs[0], q, "naive", 1, NULL, &ok, &qa, &err), 0);
    kf_problem_row row = outcome(q, 2, qa, "naive");
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, runs[0], &row, &err), 0);
    KF_CHECK_EQ_INT(kf_store_winner(s, "1_Matmul.py", NULL, &w, &err), KF_E_INVALID);
    KF_CHECK(strstr(err.msg, "several") != NULL);
    KF_CHECK_EQ_INT(kf_store_winner(s, "level2/1_Matmul.py", NULL, &w, &err), 0);
    KF_CHECK_STR(w.path, q);
    kf_winner_free(&w);

    /* A winner attempt from another problem is refused, and nothing is written. */
    kf_problem_row bad = outcome(q, 2, ids[0], "naive");
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, runs[0], &bad, &err), KF_E_INVALID);
    kf_problem_row got;
    KF_CHECK_EQ_INT(kf_store_problem_done(s, runs[0], q, &got, &err), 1);
    KF_CHECK_EQ_INT(got.winner_attempt, qa);
    kf_problem_row_free(&got);

    /* An attempt for a run that does not exist is refused (foreign keys are on). */
    KF_CHECK(kf_store_add_attempt(s, 9999, p, "naive", 1, NULL, &ok, NULL, &err) < 0);
    kf_store_close(s);
    free(path);
}

static int count_attempts(const char *path) {
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM attempts", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void test_killed_mid_problem(void) {
    char *path = tmp_path("crash.db");
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("open failed: %s", err.msg);
    kf_run_info ri = run_info("cpu", "naive");
    int64_t run = 0;
    KF_CHECK_EQ_INT(kf_store_begin_run(s, &ri, &run, &err), 0);
    kf_store_close(s);
    const char *p = "problems/level1/3_Add.py";

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child records two attempts, then dies without finishing or closing. */
        kf_store *c = NULL;
        kf_err cerr = {0};
        if (kf_store_open(path, &c, &cerr)) _exit(2);
        kf_result r = result(KF_ST_MISMATCH, 0);
        kf_store_begin_problem(c, run, p, &cerr);
        kf_store_add_attempt(c, run, p, "naive", 1, NULL, &r, NULL, &cerr);
        kf_store_add_attempt(c, run, p, "naive", 2, NULL, &r, NULL, &cerr);
        kill(getpid(), SIGKILL);
        _exit(3);
    }
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    KF_CHECK(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);

    s = NULL;
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("reopen failed: %s", err.msg);
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p, NULL, &err), 0);
    kf_problem_row *rows = NULL;
    int n = -1;
    KF_CHECK_EQ_INT(kf_store_list_problems(s, run, &rows, &n, &err), 0);
    KF_CHECK_EQ_INT(n, 0);
    kf_problem_rows_free(rows, n);
    KF_CHECK_EQ_INT(count_attempts(path), 2);   /* committed attempts survived */

    /* Resuming the problem discards the interrupted try, then finishing it marks it done. */
    KF_CHECK_EQ_INT(kf_store_begin_problem(s, run, p, &err), 0);
    KF_CHECK_EQ_INT(count_attempts(path), 0);
    kf_result ok = result(KF_ST_VERIFIED, 0.5);
    int64_t a = 0;
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p, "naive", 1, NULL, &ok, &a, &err), 0);
    kf_problem_row row = outcome(p, 1, a, "naive");
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, run, &row, &err), 0);
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p, NULL, &err), 1);
    /* begin_problem on a finished problem keeps it. */
    KF_CHECK_EQ_INT(kf_store_begin_problem(s, run, p, &err), 0);
    KF_CHECK_EQ_INT(kf_store_problem_done(s, run, p, NULL, &err), 1);
    KF_CHECK_EQ_INT(count_attempts(path), 1);
    /* Re-adding the same attempt number replaces it rather than duplicating it. */
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, p, "naive", 1, NULL, &ok, &a, &err), 0);
    KF_CHECK_EQ_INT(count_attempts(path), 1);
    kf_store_close(s);
    free(path);
}

/* Several processes writing one store at once (one per device, DESIGN.md "Scale"). */
static void test_concurrent_writers(void) {
    char *path = tmp_path("shared.db");
    enum { WORKERS = 3, PROBLEMS = 20 };
    fflush(NULL);
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] != 0) continue;
        kf_store *c = NULL;
        kf_err cerr = {0};
        if (kf_store_open(path, &c, &cerr)) {
            fprintf(stderr, "worker open: %s\n", cerr.msg);
            _exit(10);
        }
        kf_run_info ri = run_info("cpu", "naive");
        int64_t run = 0;
        if (kf_store_begin_run(c, &ri, &run, &cerr)) _exit(11);
        kf_result ok = result(KF_ST_VERIFIED, 1.0);
        for (int i = 0; i < PROBLEMS; i++) {
            char p[64];
            snprintf(p, sizeof p, "level1/%d_P.py", i);
            int64_t a = 0;
            if (kf_store_begin_problem(c, run, p, &cerr)) _exit(12);
            if (kf_store_add_attempt(c, run, p, "naive", 1, NULL, &ok, &a, &cerr)) _exit(13);
            kf_problem_row row = outcome(p, 1, a, "naive");
            if (kf_store_finish_problem(c, run, &row, &cerr)) _exit(14);
        }
        kf_store_close(c);
        _exit(0);
    }
    for (int w = 0; w < WORKERS; w++) {
        int st = 0;
        waitpid(pids[w], &st, 0);
        KF_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d status %d", w, st);
    }
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    if (!s) KF_SKIP("open failed: %s", err.msg);
    int total = 0;
    for (int64_t run = 1; run <= WORKERS; run++) {
        kf_problem_row *rows = NULL;
        int n = 0;
        KF_CHECK_EQ_INT(kf_store_list_problems(s, run, &rows, &n, &err), 0);
        KF_CHECK_EQ_INT(n, PROBLEMS);
        total += n;
        kf_problem_rows_free(rows, n);
    }
    KF_CHECK_EQ_INT(total, WORKERS * PROBLEMS);
    KF_CHECK_EQ_INT(count_attempts(path), WORKERS * PROBLEMS);
    kf_store_close(s);
    free(path);
}

static int exec_sql(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void test_schema_version(void) {
    char *path = tmp_path("version.db");
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), 0);
    kf_store_close(s);
    KF_CHECK_EQ_INT(exec_sql(path, "UPDATE kf_schema SET version = 99"), SQLITE_OK);
    s = NULL;
    KF_CHECK_EQ_INT(kf_store_open(path, &s, &err), KF_E_FORMAT);
    KF_CHECK(s == NULL);
    KF_CHECK_MSG(strstr(err.msg, "schema version 99") != NULL, "%s", err.msg);

    /* A version-1 store (no default-precision baseline columns) is upgraded in place. */
    char *v1 = tmp_path("v1.db");
    s = NULL;
    KF_CHECK_EQ_INT(kf_store_open(v1, &s, &err), 0);
    kf_store_close(s);
    KF_CHECK_EQ_INT(exec_sql(v1, "ALTER TABLE problems DROP COLUMN eager_default_ms;"
                                 "ALTER TABLE problems DROP COLUMN compile_default_ms;"
                                 "UPDATE kf_schema SET version = 1"), SQLITE_OK);
    s = NULL;
    KF_CHECK_MSG(kf_store_open(v1, &s, &err) == 0, "%s", err.msg);
    if (s) {
        kf_store_close(s);
        KF_CHECK_EQ_INT(exec_sql(v1, "SELECT eager_default_ms, compile_default_ms FROM problems"), SQLITE_OK);
    }
    free(v1);

    char *other = tmp_path("other.db");
    KF_CHECK_EQ_INT(exec_sql(other, "CREATE TABLE t (x INTEGER)"), SQLITE_OK);
    KF_CHECK_EQ_INT(kf_store_open(other, &s, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "not a kforge store") != NULL);

    char *text = tmp_path("text.db");
    const char junk[] = "this is not a database, just text that is long enough to have a header\n";
    KF_CHECK_EQ_INT(kf_write_file(text, junk, sizeof junk - 1), 0);
    KF_CHECK(kf_store_open(text, &s, &err) < 0);
    KF_CHECK(s == NULL);

    char *missing = tmp_path("no/such/dir/x.db");
    KF_CHECK_EQ_INT(kf_store_open(missing, &s, &err), KF_E_IO);

    /* The in-memory store works (tests, dry runs). */
    KF_CHECK_EQ_INT(kf_store_open(":memory:", &s, &err), 0);
    kf_store_close(s);
    free(path);
    free(other);
    free(text);
    free(missing);
}

static void test_status_names(void) {
    for (int i = 0; i < KF_ST_COUNT; i++)
        KF_CHECK_EQ_INT(kf_status_from_name(kf_status_name((kf_status)i)), i);
    KF_CHECK_EQ_INT(kf_status_from_name("bogus"), -1);
    KF_CHECK_EQ_INT(kf_status_from_name(NULL), -1);

    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(":memory:", &s, &err), 0);
    if (!s) return;
    kf_run_info ri = run_info("cpu", "naive");
    int64_t run = 0;
    kf_store_begin_run(s, &ri, &run, &err);
    kf_result r = result(KF_ST_VERIFIED, 1);
    r.status = (kf_status)77;
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, "x.py", "naive", 1, NULL, &r, NULL, &err), KF_E_INVALID);
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, NULL, "naive", 1, NULL, &r, NULL, &err), KF_E_INVALID);
    kf_store_close(s);
}

static void cleanup(void) {
    if (!kf_tmpdir[0]) return;
    char *cmd = kf_asprintf("rm -rf '%s'", kf_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", kf_tmpdir);
    free(cmd);
}

int main(void) {
    KF_RUN(test_round_trip);
    KF_RUN(test_latest_winner_and_ambiguity);
    KF_RUN(test_killed_mid_problem);
    KF_RUN(test_concurrent_writers);
    KF_RUN(test_schema_version);
    KF_RUN(test_status_names);
    cleanup();
    return kf_test_report();
}
