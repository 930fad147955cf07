/* kf_program_json.c: plan.json text <-> kf_program. Parsing is strict (unknown fields, ops
 * and formats are errors, so a typo in a hand- or LLM-written plan is reported, not ignored)
 * and resolves every buffer and kernel name to an index. */
#include "ir/kf_program.h"
#include "ir/kf_json_num.h"

#include "core/kf_str.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_PROGRAM_FORMAT "kforge-program/1"

typedef struct {
    kf_program *p;
    const char *dir;
    kf_err *err;
} kf_pparse;

/* ---- JSON value helpers ---- */

/* Rejects any field of obj not in allowed (NULL-terminated); "comment" is always allowed. */
static int kf_pj_fields(kf_pparse *ps, const cJSON *obj, const char *const *allowed,
                        const char *where) {
    for (const cJSON *e = obj->child; e; e = e->next) {
        int ok = strcmp(e->string, "comment") == 0;
        for (int i = 0; !ok && allowed[i]; i++) ok = strcmp(e->string, allowed[i]) == 0;
        if (!ok) return kf_fail(ps->err, KF_E_FORMAT, "%s: unknown field '%s'", where, e->string);
    }
    return 0;
}

static int kf_pj_req_str(kf_pparse *ps, const cJSON *obj, const char *key, const char *where,
                         const char **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(j) || !j->valuestring[0])
        return kf_fail(ps->err, KF_E_FORMAT, "%s: missing string field '%s'", where, key);
    *out = j->valuestring;
    return 0;
}

/* An optional integer field (default def); required when req. */
static int kf_pj_int(kf_pparse *ps, const cJSON *obj, const char *key, int req, int64_t def,
                     const char *where, int64_t *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) {
        if (req) return kf_fail(ps->err, KF_E_FORMAT, "%s: missing integer field '%s'", where, key);
        *out = def;
        return 0;
    }
    if (kf_json_i64(j, out) != 0)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: field '%s' is not an integer", where, key);
    return 0;
}

static int kf_pj_num(kf_pparse *ps, const cJSON *obj, const char *key, int req, double def,
                     const char *where, double *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) {
        if (req) return kf_fail(ps->err, KF_E_FORMAT, "%s: missing number field '%s'", where, key);
        *out = def;
        return 0;
    }
    if (kf_json_f64(j, out) != 0)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: field '%s' is not a number", where, key);
    return 0;
}

static int kf_pj_bool(kf_pparse *ps, const cJSON *obj, const char *key, const char *where,
                      int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!j) return 0;
    if (!cJSON_IsBool(j))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: field '%s' is not true/false", where, key);
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return 0;
}

/* A field naming a buffer, resolved to its index. */
static int kf_pj_buf(kf_pparse *ps, const cJSON *obj, const char *key, const char *where,
                     int *out) {
    const char *name = "";
    int rc = kf_pj_req_str(ps, obj, key, where, &name);
    if (rc != 0) return rc;
    *out = kf_program_find_buf(ps->p, name);
    if (*out < 0)
        return kf_fail(ps->err, KF_E_INVALID, "%s: '%s' names unknown buffer '%s'", where, key,
                       name);
    return 0;
}

/* "grid"/"block": 1 to 3 positive integers, missing ones are 1. */
static int kf_pj_dim3(kf_pparse *ps, const cJSON *obj, const char *key, const char *where,
                      int64_t out[3]) {
    out[0] = out[1] = out[2] = 1;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) return 0;
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
    if (n < 1 || n > 3)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: '%s' must be an array of 1 to 3 integers",
                       where, key);
    for (int i = 0; i < n; i++)
        if (kf_json_i64(cJSON_GetArrayItem(j, i), &out[i]) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: '%s'[%d] is not an integer", where, key, i);
    return 0;
}

static int kf_kparam_kind_parse(const char *s, kf_kparam_kind *out) {
    static const kf_kparam_kind kinds[] = {KF_KP_PTR, KF_KP_I32, KF_KP_I64, KF_KP_F32};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, kf_kparam_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return 0;
        }
    return -1;
}

/* ---- sections ---- */

static int kf_pj_sources(kf_pparse *ps, const cJSON *js) {
    if (!js) return 0;
    if (!cJSON_IsArray(js))
        return kf_fail(ps->err, KF_E_FORMAT, "'sources' is not an array of file names");
    int i = 0;
    for (const cJSON *e = js->child; e; e = e->next, i++) {
        const char *file = NULL, *text = NULL;
        if (cJSON_IsString(e)) {
            file = e->valuestring;
        } else if (cJSON_IsObject(e)) {
            static const char *const f[] = {"file", "text", NULL};
            char where[64];
            snprintf(where, sizeof where, "source %d", i);
            int rc = kf_pj_fields(ps, e, f, where);
            if (rc == 0) rc = kf_pj_req_str(ps, e, "file", where, &file);
            if (rc != 0) return rc;
            const cJSON *jt = cJSON_GetObjectItemCaseSensitive(e, "text");
            if (!cJSON_IsString(jt))
                return kf_fail(ps->err, KF_E_FORMAT, "source '%s': 'text' is not a string", file);
            text = jt->valuestring;
        } else {
            return kf_fail(ps->err, KF_E_FORMAT, "sources[%d] is not a file name", i);
        }
        if (!kf_program_source_name_ok(file))
            return kf_fail(ps->err, KF_E_FORMAT, "source '%s': file names must be relative, "
                           "without '..' or '.' parts", file);
        for (int k = 0; k < ps->p->n_sources; k++)
            if (strcmp(ps->p->sources[k].file, file) == 0)
                return kf_fail(ps->err, KF_E_FORMAT, "source '%s' is listed twice", file);
        if (kf_program_add_source(ps->p, file, text) < 0)
            return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        if (!text && ps->dir) {
            char *path = kf_asprintf("%s/%s", ps->dir, file);
            char *data = NULL;
            int e2 = path ? kf_read_file(path, &data, NULL) : -ENOMEM;
            if (e2 != 0) {
                int rc = kf_fail(ps->err, KF_E_IO, "source '%s': cannot read %s: %s", file,
                                 path ? path : file, strerror(-e2));
                free(path);
                return rc;
            }
            free(path);
            ps->p->sources[ps->p->n_sources - 1].text = data;
        }
    }
    return 0;
}

static int kf_pj_kernels(kf_pparse *ps, const cJSON *jk) {
    if (!jk) return 0;
    if (!cJSON_IsArray(jk)) return kf_fail(ps->err, KF_E_FORMAT, "'kernels' is not an array");
    int i = 0;
    for (const cJSON *e = jk->child; e; e = e->next, i++) {
        char where[160];
        snprintf(where, sizeof where, "kernel %d", i);
        if (!cJSON_IsObject(e)) return kf_fail(ps->err, KF_E_FORMAT, "%s: not an object", where);
        static const char *const f[] = {"name", "params", NULL};
        const char *name = "";
        int rc = kf_pj_fields(ps, e, f, where);
        if (rc == 0) rc = kf_pj_req_str(ps, e, "name", where, &name);
        if (rc != 0) return rc;
        snprintf(where, sizeof where, "kernel '%s'", name);
        if (kf_program_find_kernel(ps->p, name) >= 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: name used twice", where);
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(e, "params");
        if (jp && !cJSON_IsArray(jp))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'params' is not an array", where);
        int np = jp ? cJSON_GetArraySize(jp) : 0;
        kf_kparam *params = calloc(np ? (size_t)np : 1, sizeof *params);
        if (!params) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        int k = 0;
        for (const cJSON *q = jp ? jp->child : NULL; q && rc == 0; q = q->next, k++) {
            char pw[240];
            snprintf(pw, sizeof pw, "%s param %d", where, k);
            static const char *const pf[] = {"name", "kind", NULL};
            const char *kind = NULL;
            if (!cJSON_IsObject(q)) {
                rc = kf_fail(ps->err, KF_E_FORMAT, "%s: not an object", pw);
                break;
            }
            rc = kf_pj_fields(ps, q, pf, pw);
            if (rc == 0) rc = kf_pj_req_str(ps, q, "name", pw, (const char **)&params[k].name);
            if (rc == 0) rc = kf_pj_req_str(ps, q, "kind", pw, &kind);
            if (rc == 0 && kf_kparam_kind_parse(kind, &params[k].kind) != 0)
                rc = kf_fail(ps->err, KF_E_FORMAT, "%s: unknown kind '%s' (expected ptr, i32, "
                             "i64 or f32)", pw, kind);
        }
        if (rc == 0 && kf_program_add_kernel(ps->p, name, params, np) < 0)
            rc = kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        free(params); /* names point into the JSON tree; add_kernel copied them */
        if (rc != 0) return rc;
    }
    return 0;
}

static int kf_pj_buffers(kf_pparse *ps, const cJSON *jb) {
    if (!jb) return 0;
    if (!cJSON_IsArray(jb)) return kf_fail(ps->err, KF_E_FORMAT, "'buffers' is not an array");
    int i = 0;
    for (const cJSON *e = jb->child; e; e = e->next, i++) {
        char where[160];
        snprintf(where, sizeof where, "buffer %d", i);
        if (!cJSON_IsObject(e)) return kf_fail(ps->err, KF_E_FORMAT, "%s: not an object", where);
        const char *name = "", *role_s = "", *dtype_s = "", *param = NULL;
        int rc = kf_pj_req_str(ps, e, "name", where, &name);
        if (rc != 0) return rc;
        snprintf(where, sizeof where, "buffer '%s'", name);
        if (kf_program_find_buf(ps->p, name) >= 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: name used twice", where);
        rc = kf_pj_req_str(ps, e, "role", where, &role_s);
        if (rc != 0) return rc;
        kf_buf_role role;
        if (!strcmp(role_s, "input")) role = KF_BUF_INPUT;
        else if (!strcmp(role_s, "param")) role = KF_BUF_PARAM;
        else if (!strcmp(role_s, "output")) role = KF_BUF_OUTPUT;
        else if (!strcmp(role_s, "scratch")) role = KF_BUF_SCRATCH;
        else
            return kf_fail(ps->err, KF_E_FORMAT, "%s: unknown role '%s' (expected input, param, "
                           "output or scratch)", where, role_s);
        static const char *const f_io[] = {"name", "role", "index", "dtype", "shape", NULL};
        static const char *const f_param[] = {"name", "role", "param", "dtype", "shape", NULL};
        static const char *const f_scratch[] = {"name", "role", "dtype", "shape", NULL};
        rc = kf_pj_fields(ps, e, role == KF_BUF_PARAM ? f_param
                                 : role == KF_BUF_SCRATCH ? f_scratch : f_io, where);
        if (rc != 0) return rc;
        int64_t index = -1;
        if (role == KF_BUF_INPUT || role == KF_BUF_OUTPUT) {
            rc = kf_pj_int(ps, e, "index", 1, 0, where, &index);
            if (rc != 0) return rc;
            if (index < 0 || index > INT32_MAX)
                return kf_fail(ps->err, KF_E_FORMAT, "%s: index %lld out of range", where,
                               (long long)index);
        }
        if (role == KF_BUF_PARAM && (rc = kf_pj_req_str(ps, e, "param", where, &param)) != 0)
            return rc;
        rc = kf_pj_req_str(ps, e, "dtype", where, &dtype_s);
        if (rc != 0) return rc;
        kf_tdesc d = {0};
        if (kf_dtype_parse(dtype_s, &d.dtype) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: unknown dtype '%s'", where, dtype_s);
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        if (!cJSON_IsArray(js))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: missing array field 'shape' ([] for a "
                           "scalar)", where);
        d.ndim = cJSON_GetArraySize(js);
        if (d.ndim > KF_MAX_DIMS)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: %d dimensions (at most %d)", where, d.ndim,
                           KF_MAX_DIMS);
        for (int k = 0; k < d.ndim; k++)
            if (kf_json_i64(cJSON_GetArrayItem(js, k), &d.shape[k]) != 0 || d.shape[k] < 0)
                return kf_fail(ps->err, KF_E_FORMAT, "%s: shape[%d] is not a non-negative "
                               "integer", where, k);
        if (kf_program_add_buf(ps->p, name, role, (int)index, param, &d) < 0)
            return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    }
    return 0;
}

static int kf_pj_karg(kf_pparse *ps, const cJSON *a, kf_karg *out, const char *where, int i) {
    memset(out, 0, sizeof *out);
    out->buf = -1;
    if (cJSON_IsString(a)) {
        out->kind = KF_KP_PTR;
        out->buf = kf_program_find_buf(ps->p, a->valuestring);
        if (out->buf < 0)
            return kf_fail(ps->err, KF_E_INVALID, "%s: argument %d names unknown buffer '%s'",
                           where, i, a->valuestring);
        return 0;
    }
    if (!cJSON_IsObject(a) || cJSON_GetArraySize(a) != 1)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: argument %d must be a buffer name or one of "
                       "{\"i32\":n}, {\"i64\":n}, {\"f32\":x}", where, i);
    const char *key = a->child->string;
    if (kf_kparam_kind_parse(key, &out->kind) != 0 || out->kind == KF_KP_PTR)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: argument %d has unknown kind '%s' (expected "
                       "i32, i64 or f32)", where, i, key);
    if (out->kind == KF_KP_F32) {
        if (kf_json_f64(a->child, &out->f) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: argument %d: f32 value is not a number",
                           where, i);
    } else if (kf_json_i64(a->child, &out->i) != 0) {
        return kf_fail(ps->err, KF_E_FORMAT, "%s: argument %d: %s value is not an integer", where,
                       i, key);
    }
    return 0;
}

static int kf_pj_launch(kf_pparse *ps, const cJSON *e, kf_step *s, char *where, size_t wn,
                        int si) {
    static const char *const f[] = {"op", "kernel", "args", "grid", "block", "shared_bytes", NULL};
    const char *kname = "";
    int rc = kf_pj_fields(ps, e, f, where);
    if (rc == 0) rc = kf_pj_req_str(ps, e, "kernel", where, &kname);
    if (rc != 0) return rc;
    snprintf(where, wn, "step %d (launch %s)", si, kname);
    s->kernel = kf_program_find_kernel(ps->p, kname);
    if (s->kernel < 0)
        return kf_fail(ps->err, KF_E_INVALID, "%s: unknown kernel '%s'", where, kname);
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(e, "args");
    if (ja && !cJSON_IsArray(ja))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: 'args' is not an array", where);
    int na = ja ? cJSON_GetArraySize(ja) : 0;
    if (na > 0) {
        s->args = calloc((size_t)na, sizeof *s->args);
        if (!s->args) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    }
    int i = 0;
    for (const cJSON *a = ja ? ja->child : NULL; a; a = a->next, i++) {
        s->n_args = i + 1;
        rc = kf_pj_karg(ps, a, &s->args[i], where, i);
        if (rc != 0) return rc;
    }
    rc = kf_pj_dim3(ps, e, "grid", where, s->grid);
    if (rc == 0) rc = kf_pj_dim3(ps, e, "block", where, s->block);
    if (rc == 0) rc = kf_pj_int(ps, e, "shared_bytes", 0, 0, where, &s->shared_bytes);
    return rc;
}

static int kf_pj_gemm(kf_pparse *ps, const cJSON *e, kf_step *s, const char *where) {
    static const char *const f[] = {"op", "a", "b", "c", "m", "n", "k", "trans_a", "trans_b",
                                    "lda", "ldb", "ldc", "alpha", "beta", "batch", "stride_a",
                                    "stride_b", "stride_c", NULL};
    int rc = kf_pj_fields(ps, e, f, where);
    if (rc == 0) rc = kf_pj_buf(ps, e, "a", where, &s->a);
    if (rc == 0) rc = kf_pj_buf(ps, e, "b", where, &s->b);
    if (rc == 0) rc = kf_pj_buf(ps, e, "c", where, &s->c);
    if (rc == 0) rc = kf_pj_int(ps, e, "m", 1, 0, where, &s->m);
    if (rc == 0) rc = kf_pj_int(ps, e, "n", 1, 0, where, &s->n);
    if (rc == 0) rc = kf_pj_int(ps, e, "k", 1, 0, where, &s->k);
    if (rc == 0) rc = kf_pj_bool(ps, e, "trans_a", where, &s->trans_a);
    if (rc == 0) rc = kf_pj_bool(ps, e, "trans_b", where, &s->trans_b);
    if (rc != 0) return rc;
    /* Leading dimensions default to the tight row-major layout of each stored matrix. */
    rc = kf_pj_int(ps, e, "lda", 0, s->trans_a ? s->m : s->k, where, &s->lda);
    if (rc == 0) rc = kf_pj_int(ps, e, "ldb", 0, s->trans_b ? s->k : s->n, where, &s->ldb);
    if (rc == 0) rc = kf_pj_int(ps, e, "ldc", 0, s->n, where, &s->ldc);
    if (rc == 0) rc = kf_pj_num(ps, e, "alpha", 0, 1.0, where, &s->alpha);
    if (rc == 0) rc = kf_pj_num(ps, e, "beta", 0, 0.0, where, &s->beta);
    if (rc == 0) rc = kf_pj_int(ps, e, "batch", 0, 1, where, &s->batch);
    if (rc == 0) rc = kf_pj_int(ps, e, "stride_a", 0, 0, where, &s->stride_a);
    if (rc == 0) rc = kf_pj_int(ps, e, "stride_b", 0, 0, where, &s->stride_b);
    if (rc == 0) rc = kf_pj_int(ps, e, "stride_c", 0, 0, where, &s->stride_c);
    return rc;
}

static int kf_pj_copy(kf_pparse *ps, const cJSON *e, kf_step *s, const char *where) {
    static const char *const f[] = {"op", "src", "dst", "bytes", "src_offset", "dst_offset", NULL};
    int rc = kf_pj_fields(ps, e, f, where);
    if (rc == 0) rc = kf_pj_buf(ps, e, "src", where, &s->src);
    if (rc == 0) rc = kf_pj_buf(ps, e, "dst", where, &s->dst);
    if (rc == 0) rc = kf_pj_int(ps, e, "src_offset", 0, 0, where, &s->src_offset);
    if (rc == 0) rc = kf_pj_int(ps, e, "dst_offset", 0, 0, where, &s->dst_offset);
    if (rc != 0) return rc;
    /* Default: the rest of src from src_offset. */
    int64_t rest = (int64_t)ps->p->bufs[s->src].nbytes - s->src_offset;
    return kf_pj_int(ps, e, "bytes", 0, rest, where, &s->bytes);
}

static int kf_pj_fill(kf_pparse *ps, const cJSON *e, kf_step *s, const char *where) {
    static const char *const f[] = {"op", "dst", "value", NULL};
    int rc = kf_pj_fields(ps, e, f, where);
    if (rc == 0) rc = kf_pj_buf(ps, e, "dst", where, &s->dst);
    if (rc == 0) rc = kf_pj_num(ps, e, "value", 1, 0.0, where, &s->value);
    return rc;
}

/* A per-spatial-dim field of a conv step: an array of nsd integers or one integer for every
 * dim; def when absent. nsd < 0: the field fixes nsd (1 to 3 entries, required). */
static int kf_pj_dims(kf_pparse *ps, const cJSON *obj, const char *key, int *nsd, int64_t def,
                      const char *where, int64_t out[3]) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    for (int i = 0; i < 3; i++) out[i] = def;
    if (!j) {
        if (*nsd < 0) return kf_fail(ps->err, KF_E_FORMAT, "%s: missing array field '%s'", where, key);
        return 0;
    }
    if (cJSON_IsNumber(j) && *nsd > 0) {
        int64_t v;
        if (kf_json_i64(j, &v) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: field '%s' is not an integer", where, key);
        for (int i = 0; i < *nsd; i++) out[i] = v;
        return 0;
    }
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    if (*nsd < 0 && (n < 1 || n > 3))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: '%s' must be an array of 1 to 3 integers (one per "
                       "spatial dim)", where, key);
    if (*nsd > 0 && n != *nsd)
        return kf_fail(ps->err, KF_E_FORMAT, "%s: '%s' must be an integer or an array of %d integers "
                       "(one per spatial dim, as 'in')", where, key, *nsd);
    for (int i = 0; i < n; i++)
        if (kf_json_i64(cJSON_GetArrayItem(j, i), &out[i]) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: '%s'[%d] is not an integer", where, key, i);
    if (*nsd < 0) *nsd = n;
    return 0;
}

static int kf_pj_conv(kf_pparse *ps, const cJSON *e, kf_step *s, const char *where) {
    static const char *const f[] = {"op", "x", "w", "y", "bias", "x_offset", "w_offset", "y_offset",
                                    "bias_offset", "n", "c_in", "c_out", "in", "kernel", "stride",
                                    "padding", "dilation", "output_padding", "groups", "transposed",
                                    NULL};
    kf_conv_step *c = &s->conv;
    int rc = kf_pj_fields(ps, e, f, where);
    if (rc == 0) rc = kf_pj_buf(ps, e, "x", where, &c->x);
    if (rc == 0) rc = kf_pj_buf(ps, e, "w", where, &c->w);
    if (rc == 0) rc = kf_pj_buf(ps, e, "y", where, &c->y);
    if (rc == 0 && cJSON_GetObjectItemCaseSensitive(e, "bias"))
        rc = kf_pj_buf(ps, e, "bias", where, &c->bias);
    if (rc == 0) rc = kf_pj_int(ps, e, "x_offset", 0, 0, where, &c->x_offset);
    if (rc == 0) rc = kf_pj_int(ps, e, "w_offset", 0, 0, where, &c->w_offset);
    if (rc == 0) rc = kf_pj_int(ps, e, "y_offset", 0, 0, where, &c->y_offset);
    if (rc == 0) rc = kf_pj_int(ps, e, "bias_offset", 0, 0, where, &c->bias_offset);
    if (rc == 0) rc = kf_pj_int(ps, e, "n", 1, 0, where, &c->n);
    if (rc == 0) rc = kf_pj_int(ps, e, "c_in", 1, 0, where, &c->c_in);
    if (rc == 0) rc = kf_pj_int(ps, e, "c_out", 1, 0, where, &c->c_out);
    if (rc == 0) rc = kf_pj_int(ps, e, "groups", 0, 1, where, &c->groups);
    if (rc == 0) rc = kf_pj_bool(ps, e, "transposed", where, &c->transposed);
    int nsd = -1;
    if (rc == 0) rc = kf_pj_dims(ps, e, "in", &nsd, 0, where, c->in);
    if (rc == 0) rc = kf_pj_dims(ps, e, "kernel", &nsd, 1, where, c->kernel);
    if (rc == 0) rc = kf_pj_dims(ps, e, "stride", &nsd, 1, where, c->stride);
    if (rc == 0) rc = kf_pj_dims(ps, e, "padding", &nsd, 0, where, c->padding);
    if (rc == 0) rc = kf_pj_dims(ps, e, "dilation", &nsd, 1, where, c->dilation);
    if (rc == 0) rc = kf_pj_dims(ps, e, "output_padding", &nsd, 0, where, c->output_padding);
    if (rc == 0 && !cJSON_GetObjectItemCaseSensitive(e, "kernel"))
        rc = kf_fail(ps->err, KF_E_FORMAT, "%s: missing array field 'kernel'", where);
    c->nsd = nsd;
    return rc;
}

static int kf_pj_steps(kf_pparse *ps, const cJSON *jsteps) {
    if (!cJSON_IsArray(jsteps))
        return kf_fail(ps->err, KF_E_FORMAT, "missing array field 'steps'");
    int i = 0;
    for (const cJSON *e = jsteps->child; e; e = e->next, i++) {
        char where[256];
        snprintf(where, sizeof where, "step %d", i);
        if (!cJSON_IsObject(e)) return kf_fail(ps->err, KF_E_FORMAT, "%s: not an object", where);
        const char *op = "";
        int rc = kf_pj_req_str(ps, e, "op", where, &op);
        if (rc != 0) return rc;
        kf_step_kind kind;
        if (!strcmp(op, "launch")) kind = KF_STEP_LAUNCH;
        else if (!strcmp(op, "gemm")) kind = KF_STEP_GEMM;
        else if (!strcmp(op, "copy")) kind = KF_STEP_COPY;
        else if (!strcmp(op, "fill")) kind = KF_STEP_FILL;
        else if (!strcmp(op, "conv")) kind = KF_STEP_CONV;
        else
            return kf_fail(ps->err, KF_E_FORMAT, "%s: unknown op '%s' (expected launch, gemm, "
                           "copy, fill or conv)", where, op);
        kf_step *s = kf_program_add_step(ps->p, kind);
        if (!s) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        s->kernel = s->a = s->b = s->c = s->src = s->dst = -1;
        snprintf(where, sizeof where, "step %d (%s)", i, op);
        switch (kind) {
        case KF_STEP_LAUNCH: rc = kf_pj_launch(ps, e, s, where, sizeof where, i); break;
        case KF_STEP_GEMM: rc = kf_pj_gemm(ps, e, s, where); break;
        case KF_STEP_COPY: rc = kf_pj_copy(ps, e, s, where); break;
        case KF_STEP_FILL: rc = kf_pj_fill(ps, e, s, where); break;
        case KF_STEP_CONV: rc = kf_pj_conv(ps, e, s, where); break;
        }
        if (rc != 0) return rc;
    }
    return 0;
}

static int kf_pj_program(kf_pparse *ps, const cJSON *root) {
    if (!cJSON_IsObject(root)) return kf_fail(ps->err, KF_E_FORMAT, "plan is not a JSON object");
    static const char *const f[] = {"format", "target", "agent", "sources", "kernels", "buffers",
                                    "steps", "notes", NULL};
    int rc = kf_pj_fields(ps, root, f, "plan");
    if (rc != 0) return rc;
    const cJSON *jf = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (jf && (!cJSON_IsString(jf) || strcmp(jf->valuestring, KF_PROGRAM_FORMAT) != 0))
        return kf_fail(ps->err, KF_E_FORMAT, "unknown format '%s' (expected '%s')",
                       cJSON_IsString(jf) ? jf->valuestring : "(not a string)", KF_PROGRAM_FORMAT);
    const char *target = "";
    rc = kf_pj_req_str(ps, root, "target", "plan", &target);
    if (rc != 0) return rc;
    ps->p->target = kf_strdup(target);
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(root, "agent");
    if (ja && !cJSON_IsString(ja))
        return kf_fail(ps->err, KF_E_FORMAT, "plan: field 'agent' is not a string");
    if (ja) ps->p->agent = kf_strdup(ja->valuestring);
    rc = kf_pj_sources(ps, cJSON_GetObjectItemCaseSensitive(root, "sources"));
    if (rc == 0) rc = kf_pj_kernels(ps, cJSON_GetObjectItemCaseSensitive(root, "kernels"));
    if (rc == 0) rc = kf_pj_buffers(ps, cJSON_GetObjectItemCaseSensitive(root, "buffers"));
    if (rc == 0) rc = kf_pj_steps(ps, cJSON_GetObjectItemCaseSensitive(root, "steps"));
    return rc;
}

int kf_program_from_json(const char *plan_json, const char *dir, kf_program *p, kf_err *err) {
    memset(p, 0, sizeof *p);
    if (!plan_json) return kf_fail(err, KF_E_INVALID, "no plan text");
    cJSON *root = cJSON_Parse(plan_json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= plan_json) ? (long)(at - plan_json) : -1;
        int line = 1;
        for (const char *c = plan_json; at && c < at && *c; c++) line += *c == '\n';
        return kf_fail(err, KF_E_FORMAT, "plan is not valid JSON (error near line %d, byte %ld)",
                       line, off);
    }
    kf_pparse ps = {.p = p, .dir = dir, .err = err};
    int rc = kf_pj_program(&ps, root);
    cJSON_Delete(root);
    if (rc != 0) kf_program_free(p);
    return rc;
}

/* ---- writing ---- */

static void kf_pw_i64(cJSON *obj, const char *key, int64_t v) {
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    cJSON_AddRawToObject(obj, key, num);
}

static cJSON *kf_pw_f64_item(double v) {
    if (isnan(v)) return cJSON_CreateString("nan");
    if (isinf(v)) return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    char num[40];
    snprintf(num, sizeof num, "%.17g", v);
    /* Shortest text that reads back to the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        char t[40];
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) {
            memcpy(num, t, sizeof t);
            break;
        }
    }
    if (!strpbrk(num, ".eE") && strlen(num) < sizeof num - 2) strcat(num, ".0");
    return cJSON_CreateRaw(num);
}

static void kf_pw_f64(cJSON *obj, const char *key, double v) {
    cJSON_AddItemToObject(obj, key, kf_pw_f64_item(v));
}

static const char *kf_pw_bufname(const kf_program *p, int i) {
    return (i >= 0 && i < p->n_bufs && p->bufs[i].name) ? p->bufs[i].name : "";
}

static void kf_pw_dim3(cJSON *obj, const char *key, const int64_t v[3]) {
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    char num[32];
    for (int i = 0; i < 3; i++) {
        snprintf(num, sizeof num, "%lld", (long long)v[i]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
    }
}

static void kf_pw_dims(cJSON *obj, const char *key, const int64_t *v, int n) {
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    char num[32];
    for (int i = 0; i < n && i < 3; i++) {
        snprintf(num, sizeof num, "%lld", (long long)v[i]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(num));
    }
}

static void kf_pw_conv(const kf_program *p, const kf_conv_step *c, cJSON *js) {
    cJSON_AddStringToObject(js, "x", kf_pw_bufname(p, c->x));
    cJSON_AddStringToObject(js, "w", kf_pw_bufname(p, c->w));
    cJSON_AddStringToObject(js, "y", kf_pw_bufname(p, c->y));
    if (c->bias >= 0) cJSON_AddStringToObject(js, "bias", kf_pw_bufname(p, c->bias));
    kf_pw_i64(js, "x_offset", c->x_offset);
    kf_pw_i64(js, "w_offset", c->w_offset);
    kf_pw_i64(js, "y_offset", c->y_offset);
    if (c->bias >= 0) kf_pw_i64(js, "bias_offset", c->bias_offset);
    kf_pw_i64(js, "n", c->n);
    kf_pw_i64(js, "c_in", c->c_in);
    kf_pw_i64(js, "c_out", c->c_out);
    kf_pw_dims(js, "in", c->in, c->nsd);
    kf_pw_dims(js, "kernel", c->kernel, c->nsd);
    kf_pw_dims(js, "stride", c->stride, c->nsd);
    kf_pw_dims(js, "padding", c->padding, c->nsd);
    kf_pw_dims(js, "dilation", c->dilation, c->nsd);
    if (c->transposed) kf_pw_dims(js, "output_padding", c->output_padding, c->nsd);
    kf_pw_i64(js, "groups", c->groups);
    cJSON_AddBoolToObject(js, "transposed", c->transposed);
}

static void kf_pw_step(const kf_program *p, const kf_step *s, cJSON *js) {
    cJSON_AddStringToObject(js, "op", kf_step_kind_name(s->kind));
    switch (s->kind) {
    case KF_STEP_LAUNCH: {
        const char *kn = (s->kernel >= 0 && s->kernel < p->n_kernels) ? p->kernels[s->kernel].name
                                                                      : "";
        cJSON_AddStringToObject(js, "kernel", kn ? kn : "");
        cJSON *args = cJSON_AddArrayToObject(js, "args");
        for (int i = 0; i < s->n_args; i++) {
            const kf_karg *a = &s->args[i];
            if (a->kind == KF_KP_PTR) {
                cJSON_AddItemToArray(args, cJSON_CreateString(kf_pw_bufname(p, a->buf)));
                continue;
            }
            cJSON *o = cJSON_CreateObject();
            if (a->kind == KF_KP_F32) kf_pw_f64(o, "f32", a->f);
            else kf_pw_i64(o, kf_kparam_kind_name(a->kind), a->i);
            cJSON_AddItemToArray(args, o);
        }
        kf_pw_dim3(js, "grid", s->grid);
        kf_pw_dim3(js, "block", s->block);
        kf_pw_i64(js, "shared_bytes", s->shared_bytes);
        break;
    }
    case KF_STEP_GEMM:
        cJSON_AddStringToObject(js, "a", kf_pw_bufname(p, s->a));
        cJSON_AddStringToObject(js, "b", kf_pw_bufname(p, s->b));
        cJSON_AddStringToObject(js, "c", kf_pw_bufname(p, s->c));
        kf_pw_i64(js, "m", s->m);
        kf_pw_i64(js, "n", s->n);
        kf_pw_i64(js, "k", s->k);
        cJSON_AddBoolToObject(js, "trans_a", s->trans_a);
        cJSON_AddBoolToObject(js, "trans_b", s->trans_b);
        kf_pw_i64(js, "lda", s->lda);
        kf_pw_i64(js, "ldb", s->ldb);
        kf_pw_i64(js, "ldc", s->ldc);
        kf_pw_f64(js, "alpha", s->alpha);
        kf_pw_f64(js, "beta", s->beta);
        kf_pw_i64(js, "batch", s->batch);
        kf_pw_i64(js, "stride_a", s->stride_a);
        kf_pw_i64(js, "stride_b", s->stride_b);
        kf_pw_i64(js, "stride_c", s->stride_c);
        break;
    case KF_STEP_COPY:
        cJSON_AddStringToObject(js, "src", kf_pw_bufname(p, s->src));
        cJSON_AddStringToObject(js, "dst", kf_pw_bufname(p, s->dst));
        kf_pw_i64(js, "bytes", s->bytes);
        kf_pw_i64(js, "src_offset", s->src_offset);
        kf_pw_i64(js, "dst_offset", s->dst_offset);
        break;
    case KF_STEP_FILL:
        cJSON_AddStringToObject(js, "dst", kf_pw_bufname(p, s->dst));
        kf_pw_f64(js, "value", s->value);
        break;
    case KF_STEP_CONV:
        kf_pw_conv(p, &s->conv, js);
        break;
    }
}

char *kf_program_to_json(const kf_program *p) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "format", KF_PROGRAM_FORMAT);
    cJSON_AddStringToObject(root, "target", p->target ? p->target : "");
    if (p->agent) cJSON_AddStringToObject(root, "agent", p->agent);
    cJSON *src = cJSON_AddArrayToObject(root, "sources");
    for (int i = 0; i < p->n_sources; i++)
        cJSON_AddItemToArray(src, cJSON_CreateString(p->sources[i].file ? p->sources[i].file : ""));
    cJSON *ks = cJSON_AddArrayToObject(root, "kernels");
    for (int i = 0; i < p->n_kernels; i++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddStringToObject(k, "name", p->kernels[i].name ? p->kernels[i].name : "");
        cJSON *ps = cJSON_AddArrayToObject(k, "params");
        for (int j = 0; j < p->kernels[i].n_params; j++) {
            cJSON *q = cJSON_CreateObject();
            const kf_kparam *kp = &p->kernels[i].params[j];
            cJSON_AddStringToObject(q, "name", kp->name ? kp->name : "");
            cJSON_AddStringToObject(q, "kind", kf_kparam_kind_name(kp->kind));
            cJSON_AddItemToArray(ps, q);
        }
        cJSON_AddItemToArray(ks, k);
    }
    cJSON *bs = cJSON_AddArrayToObject(root, "buffers");
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        cJSON *jb = cJSON_CreateObject();
        cJSON_AddStringToObject(jb, "name", b->name ? b->name : "");
        cJSON_AddStringToObject(jb, "role", kf_buf_role_name(b->role));
        if (b->role == KF_BUF_INPUT || b->role == KF_BUF_OUTPUT) kf_pw_i64(jb, "index", b->index);
        if (b->role == KF_BUF_PARAM) cJSON_AddStringToObject(jb, "param", b->param ? b->param : "");
        cJSON_AddStringToObject(jb, "dtype", kf_dtype_name(b->desc.dtype));
        cJSON *sh = cJSON_AddArrayToObject(jb, "shape");
        char num[32];
        for (int d = 0; d < b->desc.ndim && d < KF_MAX_DIMS; d++) {
            snprintf(num, sizeof num, "%lld", (long long)b->desc.shape[d]);
            cJSON_AddItemToArray(sh, cJSON_CreateRaw(num));
        }
        cJSON_AddItemToArray(bs, jb);
    }
    cJSON *ss = cJSON_AddArrayToObject(root, "steps");
    for (int i = 0; i < p->n_steps; i++) {
        cJSON *js = cJSON_CreateObject();
        kf_pw_step(p, &p->steps[i], js);
        cJSON_AddItemToArray(ss, js);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return NULL;
    char *out = kf_asprintf("%s\n", text);
    free(text);
    return out;
}
