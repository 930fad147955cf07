/* kf_oracle_verbs.c: the typed oracle requests (hello, load, graph, case, time) built on
 * kf_oracle_request, and the timing summary helpers. Seeds travel as raw JSON integers so
 * that all 64 bits survive (cJSON numbers are doubles). */
#include "oracle/kf_oracle_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/kf_str.h"

static int kf_add_seed(cJSON *req, const char *key, unsigned long long seed) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", seed);
    return cJSON_AddRawToObject(req, key, buf) ? 0 : -1;
}

static void kf_copy_str(char *dst, size_t n, const cJSON *obj, const char *key) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    snprintf(dst, n, "%s", s ? s : "");
}

static int kf_get_int(const cJSON *obj, const char *key, int dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(j) ? (int)j->valuedouble : dflt;
}

static void kf_info_env(kf_oracle_info *info, const cJSON *r) {
    kf_copy_str(info->torch_version, sizeof info->torch_version, r, "torch");
    kf_copy_str(info->blas, sizeof info->blas, r, "blas");
    info->threads = kf_get_int(r, "threads", 0);
    info->compile_available = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "compile"));
}

/* Sends req (consumed) and returns the ok reply in *out. */
static int kf_send(kf_oracle *o, cJSON *req, cJSON **out, kf_err *err) {
    *out = NULL;
    if (!req) return kf_fail(err, KF_E_NOMEM, "out of memory");
    void *r = NULL;
    int rc = kf_oracle_request(o, req, &r, err);
    cJSON_Delete(req);
    *out = r;
    return rc;
}

int kf_oracle_hello(kf_oracle *o, kf_oracle_info *info, kf_err *err) {
    cJSON *req = cJSON_CreateObject();
    if (req) cJSON_AddStringToObject(req, "cmd", "hello");
    cJSON *r;
    int rc = kf_send(o, req, &r, err);
    if (rc != 0) return rc;
    memset(info, 0, sizeof *info);
    kf_info_env(info, r);
    snprintf(info->device, sizeof info->device, "%s", o->device);
    cJSON_Delete(r);
    return 0;
}

/* [{"dtype":"f32","shape":[..]}..] into descs (contiguous strides). */
static int kf_parse_descs(const cJSON *arr, kf_tdesc *descs, int cap, int *n, const char *what,
                          kf_err *err) {
    *n = 0;
    if (!cJSON_IsArray(arr)) return kf_fail(err, KF_E_FORMAT, "oracle load reply: no %s list", what);
    int count = cJSON_GetArraySize(arr);
    if (count > cap)
        return kf_fail(err, KF_E_UNSUPPORTED, "the problem has %d %s; kforge takes at most %d",
                       count, what, cap);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        kf_tdesc *d = &descs[i];
        memset(d, 0, sizeof *d);
        const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "dtype"));
        if (!dt || kf_dtype_parse(dt, &d->dtype) != 0)
            return kf_fail(err, KF_E_FORMAT, "oracle load reply: %s %d has dtype %s", what, i,
                           dt ? dt : "(none)");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        if (!cJSON_IsArray(sh)) return kf_fail(err, KF_E_FORMAT, "oracle load reply: %s %d has no shape", what, i);
        int nd = cJSON_GetArraySize(sh);
        if (nd > KF_MAX_DIMS)
            return kf_fail(err, KF_E_UNSUPPORTED, "%s %d has %d dimensions; kforge takes at most %d",
                           what, i, nd, KF_MAX_DIMS);
        d->ndim = nd;
        int k = 0;
        for (const cJSON *s = sh->child; s; s = s->next, k++) {
            if (!cJSON_IsNumber(s) || s->valuedouble < 0)
                return kf_fail(err, KF_E_FORMAT, "oracle load reply: %s %d has a bad shape", what, i);
            d->shape[k] = (int64_t)s->valuedouble;
        }
        kf_tdesc_set_contiguous(d);
    }
    *n = count;
    return 0;
}

int kf_oracle_load(kf_oracle *o, const char *problem_path, unsigned long long seed,
                   kf_oracle_info *info, kf_err *err) {
    cJSON *req = cJSON_CreateObject();
    if (req && (!cJSON_AddStringToObject(req, "cmd", "load") ||
                !cJSON_AddStringToObject(req, "path", problem_path) || kf_add_seed(req, "seed", seed) ||
                !cJSON_AddStringToObject(req, "device", o->device) ||
                !cJSON_AddNumberToObject(req, "threads", o->threads) ||
                !cJSON_AddStringToObject(req, "workdir", o->workdir))) {
        cJSON_Delete(req);
        req = NULL;
    }
    cJSON *r;
    int rc = kf_send(o, req, &r, err);
    if (rc != 0) return rc;
    memset(info, 0, sizeof *info);
    kf_info_env(info, r);
    kf_copy_str(info->device, sizeof info->device, r, "device");
    info->n_params = kf_get_int(r, "n_params", 0);
    rc = kf_parse_descs(cJSON_GetObjectItemCaseSensitive(r, "inputs"), info->inputs, 64,
                        &info->n_inputs, "inputs", err);
    if (rc == 0)
        rc = kf_parse_descs(cJSON_GetObjectItemCaseSensitive(r, "outputs"), info->outputs, 64,
                            &info->n_outputs, "outputs", err);
    cJSON_Delete(r);
    return rc;
}

int kf_oracle_graph(kf_oracle *o, kf_graph *g, char **params_file, kf_err *err) {
    if (params_file) *params_file = NULL;
    cJSON *req = cJSON_CreateObject();
    if (req) cJSON_AddStringToObject(req, "cmd", "graph");
    cJSON *r;
    int rc = kf_send(o, req, &r, err);
    if (rc != 0) return rc;
    const cJSON *jg = cJSON_GetObjectItemCaseSensitive(r, "graph");
    const char *pf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "params_file"));
    if (!cJSON_IsObject(jg) || !pf) {
        cJSON_Delete(r);
        return kf_fail(err, KF_E_FORMAT, "oracle graph reply without graph or params_file");
    }
    rc = kf_graph_from_cjson(jg, g, err);
    if (rc != 0) {
        kf_err_prefix(err, "oracle graph");
    } else if (params_file) {
        *params_file = kf_strdup(pf);
        if (!*params_file) {
            kf_graph_free(g);
            rc = kf_fail(err, KF_E_NOMEM, "out of memory");
        }
    }
    cJSON_Delete(r);
    return rc;
}

int kf_oracle_case_ref(kf_oracle *o, unsigned long long seed, const char *dist,
                       const char *reference, const char *file, kf_err *err) {
    cJSON *req = cJSON_CreateObject();
    if (req && (!cJSON_AddStringToObject(req, "cmd", "case") || kf_add_seed(req, "seed", seed) ||
                !cJSON_AddStringToObject(req, "dist", dist ? dist : "default") ||
                !cJSON_AddStringToObject(req, "reference", reference ? reference : "f32") ||
                !cJSON_AddStringToObject(req, "file", file))) {
        cJSON_Delete(req);
        req = NULL;
    }
    cJSON *r;
    int rc = kf_send(o, req, &r, err);
    cJSON_Delete(r);
    if (rc == KF_E_ORACLE && err && !strncmp(err->msg, "f64_unavailable:", 16))
        err->code = rc = KF_E_UNAVAILABLE;
    return rc;
}

int kf_oracle_case(kf_oracle *o, unsigned long long seed, const char *dist, const char *file,
                   kf_err *err) {
    return kf_oracle_case_ref(o, seed, dist, "f32", file, err);
}

int kf_oracle_time_precision(kf_oracle *o, const char *mode, const char *precision,
                             unsigned long long seed, int runs, int warmup,
                             long long flush_bytes, kf_timing *t, kf_err *err) {
    memset(t, 0, sizeof *t);
    cJSON *req = cJSON_CreateObject();
    char flush[32];
    snprintf(flush, sizeof flush, "%lld", flush_bytes > 0 ? flush_bytes : 0);
    if (req && (!cJSON_AddStringToObject(req, "cmd", "time") ||
                !cJSON_AddStringToObject(req, "mode", mode) || kf_add_seed(req, "seed", seed) ||
                !cJSON_AddNumberToObject(req, "runs", runs) ||
                !cJSON_AddNumberToObject(req, "warmup", warmup) ||
                !cJSON_AddRawToObject(req, "flush_bytes", flush) ||
                !cJSON_AddStringToObject(req, "precision", precision ? precision : "strict"))) {
        cJSON_Delete(req);
        req = NULL;
    }
    cJSON *r;
    int rc = kf_send(o, req, &r, err);
    if (rc != 0) {
        if (rc == KF_E_ORACLE && err && !strncmp(err->msg, "unavailable:", 12))
            err->code = rc = KF_E_UNAVAILABLE;
        return rc;
    }
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(r, "times_ms");
    int n = cJSON_IsArray(ms) ? cJSON_GetArraySize(ms) : 0;
    if (n <= 0) {
        cJSON_Delete(r);
        return kf_fail(err, KF_E_FORMAT, "oracle time reply without times_ms");
    }
    t->ms = malloc((size_t)n * sizeof *t->ms);
    if (!t->ms) {
        cJSON_Delete(r);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    for (const cJSON *it = ms->child; it; it = it->next) {
        if (!cJSON_IsNumber(it)) {
            cJSON_Delete(r);
            kf_timing_free(t);
            return kf_fail(err, KF_E_FORMAT, "oracle time reply: a time is not a number");
        }
        t->ms[t->n++] = it->valuedouble;
    }
    cJSON_Delete(r);
    kf_timing_summarize(t);
    return 0;
}

int kf_oracle_time(kf_oracle *o, const char *mode, unsigned long long seed, int runs, int warmup,
                   long long flush_bytes, kf_timing *t, kf_err *err) {
    return kf_oracle_time_precision(o, mode, "strict", seed, runs, warmup, flush_bytes, t, err);
}

void kf_timing_free(kf_timing *t) {
    if (!t) return;
    free(t->ms);
    memset(t, 0, sizeof *t);
}

static int kf_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void kf_timing_summarize(kf_timing *t) {
    t->median_ms = t->min_ms = t->max_ms = 0;
    if (!t->ms || t->n <= 0) return;
    double *s = malloc((size_t)t->n * sizeof *s);
    if (!s) return;
    memcpy(s, t->ms, (size_t)t->n * sizeof *s);
    qsort(s, (size_t)t->n, sizeof *s, kf_cmp_double);
    t->min_ms = s[0];
    t->max_ms = s[t->n - 1];
    t->median_ms = t->n % 2 ? s[t->n / 2] : 0.5 * (s[t->n / 2 - 1] + s[t->n / 2]);
    free(s);
}
