/* kf_report_json.c: the machine-readable report: every problem's outcome, summaries per level
 * (counts by status, geomean speedups over verified non-degenerate problems) and the run's
 * settings. Unknown numbers are written as null. */
#include "report/kf_report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

/* Adds number v, or null when v <= 0 (unknown). */
static void kf_add_pos(cJSON *o, const char *key, double v) {
    if (v > 0) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static void kf_add_str(cJSON *o, const char *key, const char *v) {
    if (v) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static cJSON *kf_json_problem(const kf_problem_row *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    kf_add_str(o, "path", r->path);
    if (r->level >= 0) cJSON_AddNumberToObject(o, "level", r->level);
    else cJSON_AddNullToObject(o, "level");
    cJSON_AddStringToObject(o, "status", kf_status_name(r->status));
    kf_add_pos(o, "eager_ms", r->eager_ms);
    kf_add_pos(o, "compile_ms", r->compile_ms);
    kf_add_pos(o, "kforge_ms", r->kforge_ms);
    kf_add_pos(o, "speedup_eager", kf_row_speedup_eager(r));
    kf_add_pos(o, "speedup_compile", kf_row_speedup_compile(r));
    if (r->eager_default_ms > 0 || r->compile_default_ms > 0) { /* timed at torch's defaults */
        kf_add_pos(o, "eager_default_ms", r->eager_default_ms);
        kf_add_pos(o, "compile_default_ms", r->compile_default_ms);
        kf_add_pos(o, "speedup_eager_default", kf_row_speedup_eager_default(r));
        kf_add_pos(o, "speedup_compile_default", kf_row_speedup_compile_default(r));
    }
    kf_add_str(o, "agent", r->agent);
    cJSON_AddNumberToObject(o, "attempts", r->attempts);
    cJSON_AddBoolToObject(o, "degenerate", r->degenerate != 0);
    return o;
}

static cJSON *kf_json_summary(const kf_problem_row *rows, int n, int level) {
    kf_level_summary sm;
    kf_report_summarize(rows, n, level, &sm);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "count", sm.count);
    if (sm.n_eager) cJSON_AddNumberToObject(o, "geomean_speedup_eager", sm.geomean_eager);
    else cJSON_AddNullToObject(o, "geomean_speedup_eager");
    if (sm.n_compile) cJSON_AddNumberToObject(o, "geomean_speedup_compile", sm.geomean_compile);
    else cJSON_AddNullToObject(o, "geomean_speedup_compile");
    if (sm.n_eager_default)
        cJSON_AddNumberToObject(o, "geomean_speedup_eager_default", sm.geomean_eager_default);
    if (sm.n_compile_default)
        cJSON_AddNumberToObject(o, "geomean_speedup_compile_default", sm.geomean_compile_default);
    cJSON *st = cJSON_AddObjectToObject(o, "by_status");
    for (int s = 0; st && s < KF_ST_COUNT; s++)
        cJSON_AddNumberToObject(st, kf_status_name((kf_status)s), sm.by_status[s]);
    cJSON_AddNumberToObject(o, "degenerate", sm.degenerate);
    return o;
}

static void kf_json_tolerance(cJSON *tol, const char *dtype, double atol, double rtol) {
    cJSON *o = cJSON_AddObjectToObject(tol, dtype);
    if (!o) return;
    cJSON_AddNumberToObject(o, "atol", atol);
    cJSON_AddNumberToObject(o, "rtol", rtol);
}

static cJSON *kf_json_meta(const kf_run_info *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    kf_run_info empty;
    memset(&empty, 0, sizeof empty);
    if (!m) m = &empty;
    kf_add_str(o, "torch_version", m->torch_version);
    kf_add_str(o, "blas", m->blas);
    if (m->threads > 0) cJSON_AddNumberToObject(o, "threads", m->threads);
    else cJSON_AddNullToObject(o, "threads");
    kf_add_str(o, "device", m->device);
    kf_add_str(o, "target", m->target);
    kf_add_str(o, "agents", m->agents);
    if (m->attempts > 0) cJSON_AddNumberToObject(o, "attempts", m->attempts);
    else cJSON_AddNullToObject(o, "attempts");
    cJSON_AddStringToObject(o, "precision", m->precision ? m->precision : "strict");
    kf_add_str(o, "kforge_version", m->kforge_version);
    if (m->started > 0) cJSON_AddNumberToObject(o, "started", (double)m->started);
    else cJSON_AddNullToObject(o, "started");
    /* DESIGN.md's defaults unless the run overrode them (then for every dtype). */
    cJSON *tol = cJSON_AddObjectToObject(o, "tolerances");
    if (tol) {
        int custom = m->atol > 0 || m->rtol > 0;
        double a32 = m->atol > 0 ? m->atol : 1e-4, r32 = m->rtol > 0 ? m->rtol : 1e-4;
        double a16 = m->atol > 0 ? m->atol : 1e-2, r16 = m->rtol > 0 ? m->rtol : 1e-2;
        kf_json_tolerance(tol, "float32", a32, r32);
        kf_json_tolerance(tol, "float16", a16, r16);
        kf_json_tolerance(tol, "bfloat16", a16, r16);
        cJSON_AddBoolToObject(o, "custom_tolerances", custom);
    }
    return o;
}

char *kf_report_json_text(const kf_problem_row *rows, int n, const kf_run_info *meta) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *problems = cJSON_AddArrayToObject(root, "problems");
    int *order = kf_report_order(rows, n);
    for (int i = 0; problems && i < n; i++) {
        cJSON *p = kf_json_problem(&rows[order ? order[i] : i]);
        if (p) cJSON_AddItemToArray(problems, p);
    }
    free(order);

    cJSON *summary = cJSON_AddObjectToObject(root, "summary");
    cJSON *by_level = summary ? cJSON_AddObjectToObject(summary, "by_level") : NULL;
    if (by_level) {
        /* Levels 1-3 always (KernelBench's), then any other level present, then "all". */
        int present[64];
        int n_present = kf_report_levels(rows, n, present, 64);
        int levels[67], n_levels = 0;
        for (int lv = 1; lv <= 3; lv++) levels[n_levels++] = lv;
        for (int i = 0; i < n_present; i++)
            if (present[i] > 3) levels[n_levels++] = present[i];
        for (int i = 0; i < n_levels; i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", levels[i]);
            cJSON *s = kf_json_summary(rows, n, levels[i]);
            if (s) cJSON_AddItemToObject(by_level, key, s);
        }
        cJSON *all = kf_json_summary(rows, n, KF_LEVEL_ALL);
        if (all) cJSON_AddItemToObject(by_level, "all", all);
    }
    cJSON *m = kf_json_meta(meta);
    if (m) cJSON_AddItemToObject(root, "meta", m);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int kf_report_json(const kf_problem_row *rows, int n, const kf_run_info *meta, const char *path,
                   kf_err *err) {
    char *text = kf_report_json_text(rows, n, meta);
    if (!text) return kf_fail(err, KF_E_NOMEM, "report: out of memory writing JSON");
    kf_str s;
    kf_str_init(&s);
    kf_str_append(&s, text);
    kf_str_append(&s, "\n");
    free(text);
    int rc = 0;
    if (!path || !strcmp(path, "-")) {
        if (fwrite(s.data, 1, s.len, stdout) != s.len || fflush(stdout))
            rc = kf_fail(err, KF_E_IO, "report: could not write JSON to stdout");
    } else {
        int w = kf_write_file(path, s.data, s.len);
        if (w) rc = kf_fail(err, KF_E_IO, "report %s: %s", path, strerror(-w));
    }
    kf_str_free(&s);
    return rc;
}
