/* test_report.c: reports over hand-made problem rows: the JSON report parsed back (order,
 * nulls, geomeans per level), level_from_path, the terminal table's summaries and ratios,
 * the progress display on a terminal and in a log, and `kforge show` from a store. */
#include "kf_test.h"

#include <stdlib.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "core/kf_str.h"
#include "report/kf_report.h"

static kf_problem_row mk(const char *path, kf_status st, double eager, double compile, double kforge,
                         double sp_eager, const char *agent, int attempts, int degenerate) {
    kf_problem_row r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.level = kf_level_from_path(path);
    r.status = st;
    r.eager_ms = eager;
    r.compile_ms = compile;
    r.kforge_ms = kforge;
    r.speedup_eager = sp_eager;
    r.agent = agent;
    r.attempts = attempts;
    r.degenerate = degenerate;
    return r;
}

/* Eight rows: level1 (a, b, c, d), level2 (e, f), two outside any level (g, h). Given in a
 * scrambled order to check the report's order. */
static int sample_rows(kf_problem_row *rows) {
    int n = 0;
    rows[n++] = mk("suite/level1/10_D.py", KF_ST_VERIFIED, 8, 0, 1, 8, "naive", 1, 1); /* degenerate */
    rows[n++] = mk("suite/level1/2_B.py", KF_ST_VERIFIED, 3, 0, 1, 0, "search", 2, 0); /* 3x from times */
    rows[n++] = mk("suite/level1/1_A.py", KF_ST_VERIFIED, 2, 4, 1, 2, "naive", 1, 0);  /* 2x, 4x */
    rows[n++] = mk("suite/level1/3_C.py", KF_ST_MISMATCH, 1, 0, 0, 0, NULL, 5, 0);
    rows[n++] = mk("suite/level2/1_E.py", KF_ST_VERIFIED, 1, 1, 2, 0.5, "naive", 3, 0); /* 0.5x, 0.5x */
    rows[n++] = mk("suite/level2/2_F.py", KF_ST_COMPILE_ERROR, 0, 0, 0, 0, NULL, 5, 0);
    rows[n++] = mk("custom/my.py", KF_ST_VERIFIED, 1, 0, 0.25, 4, "search", 1, 0);      /* 4x */
    rows[n++] = mk("other/h.py", KF_ST_VERIFIED, 2, 0, 0, 0, "naive", 1, 0);            /* no time */
    rows[1].speedup_compile = 0;
    rows[2].speedup_compile = 4;
    rows[4].speedup_compile = 0.5;
    return n;
}

static kf_run_info sample_meta(void) {
    kf_run_info m;
    memset(&m, 0, sizeof m);
    m.target = "cpu";
    m.agents = "naive,search";
    m.attempts = 5;
    m.torch_version = "1.13.1";
    m.blas = "openblas";
    m.threads = 2;
    m.device = "cpu: test machine";
    return m;
}

static void test_level_from_path(void) {
    KF_CHECK_EQ_INT(kf_level_from_path("problems/level1/19_ReLU.py"), 1);
    KF_CHECK_EQ_INT(kf_level_from_path("/abs/KernelBench/level12/x.py"), 12);
    KF_CHECK_EQ_INT(kf_level_from_path("a/level2/level3/b.py"), 3);
    KF_CHECK_EQ_INT(kf_level_from_path("level3"), 3);
    KF_CHECK_EQ_INT(kf_level_from_path("x/levelx/y.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path("level/a.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path("mylevel1/a.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path("level1x/a.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path("dir/level1.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path("a.py"), -1);
    KF_CHECK_EQ_INT(kf_level_from_path(""), -1);
    KF_CHECK_EQ_INT(kf_level_from_path(NULL), -1);
}

static void test_summary(void) {
    kf_problem_row rows[8];
    int n = sample_rows(rows);
    kf_level_summary s;
    kf_report_summarize(rows, n, 1, &s);
    KF_CHECK_EQ_INT(s.count, 4);
    KF_CHECK_EQ_INT(s.by_status[KF_ST_VERIFIED], 3);
    KF_CHECK_EQ_INT(s.by_status[KF_ST_MISMATCH], 1);
    KF_CHECK_EQ_INT(s.degenerate, 1);
    KF_CHECK_EQ_INT(s.n_eager, 2);
    KF_CHECK_NEAR(s.geomean_eager, sqrt(6.0), 1e-12);
    KF_CHECK_EQ_INT(s.n_compile, 1);
    KF_CHECK_NEAR(s.geomean_compile, 4.0, 1e-12);
    kf_report_summarize(rows, n, KF_LEVEL_ALL, &s);
    KF_CHECK_EQ_INT(s.count, 8);
    KF_CHECK_EQ_INT(s.n_eager, 4);
    KF_CHECK_NEAR(s.geomean_eager, pow(2.0 * 3.0 * 0.5 * 4.0, 0.25), 1e-12);
    KF_CHECK_NEAR(s.geomean_compile, sqrt(4.0 * 0.5), 1e-12);
    int levels[4];
    KF_CHECK_EQ_INT(kf_report_levels(rows, n, levels, 4), 2);
    KF_CHECK(levels[0] == 1 && levels[1] == 2);
    KF_CHECK_NEAR(kf_row_speedup_eager(&rows[1]), 3.0, 1e-12);
    KF_CHECK_EQ_INT(kf_row_speedup_eager(&rows[3]), 0);   /* mismatch: no speedup */
}

static double num(cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static int is_null(cJSON *o, const char *key) {
    return cJSON_IsNull(cJSON_GetObjectItem(o, key));
}

static void test_json(void) {
    kf_problem_row rows[8];
    int n = sample_rows(rows);
    kf_run_info meta = sample_meta();
    char dir[64];
    int at = snprintf(dir, sizeof dir, "/tmp/kf_test_report_");
    memset(dir + at, 'X', 6);   /* mkdtemp replaces these six characters */
    dir[at + 6] = '\0';
    KF_CHECK(mkdtemp(dir) != NULL);
    char *path = kf_asprintf("%s/report.json", dir);
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_report_json(rows, n, &meta, path, &err), 0);
    char *text = NULL;
    size_t len = 0;
    KF_CHECK_EQ_INT(kf_read_file(path, &text, &len), 0);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    KF_CHECK(root != NULL);
    if (!root) KF_SKIP("report did not parse");

    cJSON *problems = cJSON_GetObjectItem(root, "problems");
    KF_CHECK_EQ_INT(cJSON_GetArraySize(problems), 8);
    const char *order[] = {"suite/level1/1_A.py", "suite/level1/2_B.py", "suite/level1/3_C.py",
                           "suite/level1/10_D.py", "suite/level2/1_E.py", "suite/level2/2_F.py",
                           "other/h.py", "custom/my.py"};
    for (int i = 0; i < 8 && i < cJSON_GetArraySize(problems); i++)
        KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(problems, i), "path")),
                     order[i]);
    cJSON *a = cJSON_GetArrayItem(problems, 0);
    KF_CHECK_EQ_INT(num(a, "level"), 1);
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "verified");
    KF_CHECK_NEAR(num(a, "eager_ms"), 2, 1e-12);
    KF_CHECK_NEAR(num(a, "compile_ms"), 4, 1e-12);
    KF_CHECK_NEAR(num(a, "kforge_ms"), 1, 1e-12);
    KF_CHECK_NEAR(num(a, "speedup_eager"), 2, 1e-12);
    KF_CHECK_NEAR(num(a, "speedup_compile"), 4, 1e-12);
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "agent")), "naive");
    KF_CHECK_EQ_INT(num(a, "attempts"), 1);
    KF_CHECK(cJSON_IsFalse(cJSON_GetObjectItem(a, "degenerate")));
    cJSON *b = cJSON_GetArrayItem(problems, 1);
    KF_CHECK_NEAR(num(b, "speedup_eager"), 3, 1e-12);
    KF_CHECK(is_null(b, "compile_ms") && is_null(b, "speedup_compile"));
    cJSON *c = cJSON_GetArrayItem(problems, 2);
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "status")), "mismatch");
    KF_CHECK(is_null(c, "kforge_ms") && is_null(c, "speedup_eager") && is_null(c, "agent"));
    KF_CHECK_EQ_INT(num(c, "attempts"), 5);
    KF_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(problems, 3), "degenerate")));
    cJSON *h = cJSON_GetArrayItem(problems, 6);
    KF_CHECK(is_null(h, "level") && is_null(h, "kforge_ms") && is_null(h, "speedup_eager"));

    cJSON *by_level = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "summary"), "by_level");
    KF_CHECK_EQ_INT(cJSON_GetArraySize(by_level), 4);   /* "1", "2", "3", "all" */
    cJSON *l1 = cJSON_GetObjectItem(by_level, "1");
    KF_CHECK_EQ_INT(num(l1, "count"), 4);
    KF_CHECK_NEAR(num(l1, "geomean_speedup_eager"), sqrt(6.0), 1e-9);
    KF_CHECK_NEAR(num(l1, "geomean_speedup_compile"), 4.0, 1e-9);
    KF_CHECK_EQ_INT(num(l1, "degenerate"), 1);
    cJSON *st1 = cJSON_GetObjectItem(l1, "by_status");
    KF_CHECK_EQ_INT(num(st1, "verified"), 3);
    KF_CHECK_EQ_INT(num(st1, "mismatch"), 1);
    KF_CHECK_EQ_INT(num(st1, "compile_error"), 0);
    cJSON *l2 = cJSON_GetObjectItem(by_level, "2");
    KF_CHECK_NEAR(num(l2, "geomean_speedup_eager"), 0.5, 1e-9);
    KF_CHECK_EQ_INT(num(cJSON_GetObjectItem(l2, "by_status"), "compile_error"), 1);
    cJSON *l3 = cJSON_GetObjectItem(by_level, "3");
    KF_CHECK_EQ_INT(num(l3, "count"), 0);
    KF_CHECK(is_null(l3, "geomean_speedup_eager") && is_null(l3, "geomean_speedup_compile"));
    cJSON *all = cJSON_GetObjectItem(by_level, "all");
    KF_CHECK_EQ_INT(num(all, "count"), 8);
    KF_CHECK_NEAR(num(all, "geomean_speedup_eager"), pow(12.0, 0.25), 1e-9);
    KF_CHECK_NEAR(num(all, "geomean_speedup_compile"), sqrt(2.0), 1e-9);
    KF_CHECK_EQ_INT(num(cJSON_GetObjectItem(all, "by_status"), "verified"), 6);

    cJSON *m = cJSON_GetObjectItem(root, "meta");
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "torch_version")), "1.13.1");
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "precision")), "strict");
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "target")), "cpu");
    KF_CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "agents")), "naive,search");
    KF_CHECK_EQ_INT(num(m, "threads"), 2);
    KF_CHECK_EQ_INT(num(m, "attempts"), 5);
    cJSON *tol = cJSON_GetObjectItem(m, "tolerances");
    KF_CHECK_NEAR(num(cJSON_GetObjectItem(tol, "float32"), "atol"), 1e-4, 1e-15);
    KF_CHECK_NEAR(num(cJSON_GetObjectItem(tol, "float16"), "rtol"), 1e-2, 1e-15);
    cJSON_Delete(root);
    free(text);

    /* Another level present beyond 3 gets its own key; an empty report still parses. */
    kf_problem_row four = mk("x/level4/1_Z.py", KF_ST_VERIFIED, 1, 0, 1, 1, "naive", 1, 0);
    char *t4 = kf_report_json_text(&four, 1, NULL);
    cJSON *r4 = t4 ? cJSON_Parse(t4) : NULL;
    cJSON *bl4 = cJSON_GetObjectItem(cJSON_GetObjectItem(r4, "summary"), "by_level");
    KF_CHECK(cJSON_GetObjectItem(bl4, "4") != NULL);
    KF_CHECK_EQ_INT(cJSON_GetArraySize(bl4), 5);
    KF_CHECK(is_null(cJSON_GetObjectItem(r4, "meta"), "torch_version"));
    cJSON_Delete(r4);
    free(t4);
    char *t0 = kf_report_json_text(NULL, 0, NULL);
    cJSON *r0 = t0 ? cJSON_Parse(t0) : NULL;
    KF_CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(r0, "problems")), 0);
    cJSON_Delete(r0);
    free(t0);

    char *bad = kf_asprintf("%s/no/such/dir/r.json", dir);
    KF_CHECK_EQ_INT(kf_report_json(rows, n, &meta, bad, &err), KF_E_IO);
    free(bad);
    unlink(path);
    rmdir(dir);
    free(path);
}

static char *capture_table(const kf_problem_row *rows, int n, const kf_run_info *meta) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    kf_report_table(f, rows, n, meta);
    fclose(f);
    return buf;
}

static void test_table(void) {
    kf_problem_row rows[8];
    int n = sample_rows(rows);
    kf_run_info meta = sample_meta();
    char *out = capture_table(rows, n, &meta);
    KF_CHECK(out != NULL);
    if (!out) return;
    KF_CHECK(strstr(out, "target cpu, agents naive,search") != NULL);
    KF_CHECK(strstr(out, "level 1: 4 problems; verified 3, mismatch 1; degenerate 1") != NULL);
    KF_CHECK(strstr(out, "geomean speedup 2.45x vs eager (2 problems), 4.00x vs torch.compile (1 problem)") != NULL);
    KF_CHECK(strstr(out, "level 2: 2 problems; verified 1, compile_error 1") != NULL);
    KF_CHECK(strstr(out, "all:     8 problems") != NULL);
    KF_CHECK(strstr(out, "1.86x vs eager (4 problems)") != NULL);
    /* Rows in report order (3_C before 10_D), with "-" for unknowns and the degenerate mark. */
    const char *c3 = strstr(out, "3_C"), *d10 = strstr(out, "10_D");
    KF_CHECK(c3 && d10 && c3 < d10);
    KF_CHECK(strstr(out, "8.00x*") != NULL);
    KF_CHECK(strstr(out, "3.00x") != NULL);
    /* The closing ratios table comes last. */
    const char *ratios = strstr(out, "ratios (geomean)");
    KF_CHECK(ratios != NULL && ratios > strstr(out, "all:     "));
    if (ratios) {
        KF_CHECK(strstr(ratios, "level1") && strstr(ratios, "level2") && strstr(ratios, "all"));
        KF_CHECK(strstr(ratios, "2.45x") && strstr(ratios, "0.50x") && strstr(ratios, "1.86x"));
        KF_CHECK(strstr(ratios, "6/8") != NULL);
        KF_CHECK(strstr(ratios, "3/4") != NULL);
    }
    /* Baselines timed at PyTorch's default precision get their own lines and JSON fields;
     * without them (the rows above) neither appears. */
    KF_CHECK(strstr(out, "defaults") == NULL);
    free(out);
    kf_problem_row d[2] = {mk("level2/1_P.py", KF_ST_VERIFIED, 4, 6, 2, 2, "search", 1, 0),
                           mk("level2/2_Q.py", KF_ST_VERIFIED, 4, 4, 1, 4, "search", 1, 0)};
    d[0].eager_default_ms = 3;    /* 1.5x */
    d[0].compile_default_ms = 4;  /* 2x */
    d[1].eager_default_ms = 6;    /* 6x */
    out = capture_table(d, 2, NULL);
    KF_CHECK(out && strstr(out, "against PyTorch at its default precision (TF32 where allowed): "
                                "3.00x vs eager, 2.00x vs torch.compile"));
    KF_CHECK(out && strstr(out, "vs eager (defaults)") && strstr(out, "vs compile (defaults)"));
    free(out);
    char *js = kf_report_json_text(d, 2, NULL);
    cJSON *jr = js ? cJSON_Parse(js) : NULL;
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(jr, "problems"), 0);
    KF_CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(p0, "speedup_eager_default")), 1.5, 1e-9);
    KF_CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(p0, "speedup_compile_default")), 2.0, 1e-9);
    cJSON *l2 = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(jr, "summary"), "by_level"), "2");
    KF_CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(l2, "geomean_speedup_eager_default")), 3.0, 1e-9);
    cJSON_Delete(jr);
    free(js);

    /* A result over 10x is marked for review; an empty table still has its summary. */
    kf_problem_row fast = mk("level1/1_X.py", KF_ST_VERIFIED, 100, 0, 1, 100, "naive", 1, 0);
    out = capture_table(&fast, 1, NULL);
    KF_CHECK(out && strstr(out, "100.00x!") && strstr(out, "1 over 10x to review"));
    free(out);
    out = capture_table(NULL, 0, NULL);
    KF_CHECK(out && strstr(out, "all:     0 problems") && strstr(out, "ratios (geomean)"));
    free(out);
}

static void test_progress(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) KF_SKIP("no memstream");
    kf_progress p;
    kf_progress_begin(&p, f, 3, 0);
    kf_progress_update(&p, 1, 0, "suite/level1/1_A.py", "naive", 1, 0.5);
    kf_progress_update(&p, 1, 0, "suite/level1/1_A.py", "naive", 2, 1.0);   /* same: silent */
    kf_progress_update(&p, 1, 0, "suite/level1/1_A.py", "search", 1, 2.0);
    kf_progress_update(&p, 2, 0, "suite/level1/2_B.py", "search", 1, 75.0);
    kf_progress_print(&p, "done 1_A");
    kf_progress_end(&p);
    fclose(f);
    KF_CHECK(buf && strchr(buf, '\r') == NULL && strchr(buf, '\033') == NULL);
    int lines = 0;
    for (char *c = buf; c && *c; c++) lines += *c == '\n';
    KF_CHECK_EQ_INT(lines, 4);
    KF_CHECK(buf && strstr(buf, "[1/3] level1/1_A: naive (attempt 1, 0.5s)\n"));
    KF_CHECK(buf && strstr(buf, "[2/3] level1/2_B: search (attempt 1, 1m15s)\n"));
    free(buf);

    /* Terminal: lines rewritten in place, cut to the width (COLUMNS when not a real tty). */
    setenv("COLUMNS", "30", 1);
    buf = NULL;
    f = open_memstream(&buf, &len);
    kf_progress_begin(&p, f, 215, 1);
    KF_CHECK_EQ_INT(p.width, 30);
    kf_progress_update(&p, 12, 0, "suite/level1/19_ReLU_with_a_very_long_name.py", "llm:openai:gpt-5", 3, 4000);
    kf_progress_print(&p, "note");
    kf_progress_end(&p);
    fclose(f);
    unsetenv("COLUMNS");
    KF_CHECK(buf && strstr(buf, "\r\033[K[12/215] level1/19_ReLU") != NULL);
    KF_CHECK(buf && strstr(buf, "\r\033[Knote\n") != NULL);
    KF_CHECK(buf && strchr(buf, '\n') && strchr(buf, '\n') == strstr(buf, "note\n") + 4);
    /* Every drawn segment (after a clear) is at most width - 1 characters. */
    for (char *c = buf; c && (c = strstr(c, "\033[K")); c += 3) {
        size_t seg = strcspn(c + 3, "\r\n");
        KF_CHECK_MSG(seg <= 29, "segment of %zu chars", seg);
    }
    KF_CHECK(len >= 4 && !strcmp(buf + len - 4, "\r\033[K"));   /* end clears the line */
    free(buf);
}

static void test_show(void) {
    kf_store *s = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_store_open(":memory:", &s, &err), 0);
    if (!s) KF_SKIP("store: %s", err.msg);
    kf_run_info meta = sample_meta();
    int64_t run = 0, att = 0;
    KF_CHECK_EQ_INT(kf_store_begin_run(s, &meta, &run, &err), 0);
    kf_program prog;
    memset(&prog, 0, sizeof prog);
    kf_source src[1] = {{"kernels.c", "void k0(float *y) { y[0] = 0.0f; }"}};
    prog.target = "cpu";
    prog.agent = "naive";
    prog.sources = src;
    prog.n_sources = 1;
    kf_result res;
    memset(&res, 0, sizeof res);
    res.status = KF_ST_VERIFIED;
    res.ms = 1.0;
    KF_CHECK_EQ_INT(kf_store_add_attempt(s, run, "suite/level1/19_ReLU.py", "naive", 1, &prog, &res, &att, &err), 0);
    kf_problem_row row = mk("suite/level1/19_ReLU.py", KF_ST_VERIFIED, 2, 0, 1, 2, "naive", 1, 0);
    row.winner_attempt = att;
    KF_CHECK_EQ_INT(kf_store_finish_problem(s, run, &row, &err), 0);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = kf_report_show(f, s, "19_ReLU", NULL, &err);
    fclose(f);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(buf && strstr(buf, "== problem suite/level1/19_ReLU.py\n"));
    KF_CHECK(buf && strstr(buf, "agent naive (attempt 1)"));
    KF_CHECK(buf && strstr(buf, "2.00x vs eager"));
    const char *plan = buf ? strstr(buf, "== plan.json\n{") : NULL;
    const char *kern = buf ? strstr(buf, "== kernels.c\nvoid k0(float *y) { y[0] = 0.0f; }\n") : NULL;
    KF_CHECK(plan && kern && plan < kern);
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    KF_CHECK_EQ_INT(kf_report_show(f, s, "20_Missing", NULL, &err), KF_E_INVALID);
    fclose(f);
    KF_CHECK(buf && len == 0);   /* nothing printed on error */
    free(buf);
    kf_store_close(s);
}

int main(void) {
    KF_RUN(test_level_from_path);
    KF_RUN(test_summary);
    KF_RUN(test_json);
    KF_RUN(test_table);
    KF_RUN(test_progress);
    KF_RUN(test_show);
    return kf_test_report();
}
