/* kf_program.c: kernel program lifetime, lookups, in-memory builders, and the folder form
 * (load plan.json + sources from a folder, save them back). JSON is in kf_program_json.c,
 * checks in kf_program_validate.c. */
#include "ir/kf_program.h"

#include "core/kf_str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *kf_buf_role_name(kf_buf_role r) {
    switch (r) {
    case KF_BUF_INPUT: return "input";
    case KF_BUF_PARAM: return "param";
    case KF_BUF_OUTPUT: return "output";
    case KF_BUF_SCRATCH: return "scratch";
    }
    return "?";
}

const char *kf_step_kind_name(kf_step_kind k) {
    switch (k) {
    case KF_STEP_LAUNCH: return "launch";
    case KF_STEP_GEMM: return "gemm";
    case KF_STEP_COPY: return "copy";
    case KF_STEP_FILL: return "fill";
    case KF_STEP_CONV: return "conv";
    }
    return "?";
}

const char *kf_kparam_kind_name(kf_kparam_kind k) {
    switch (k) {
    case KF_KP_PTR: return "ptr";
    case KF_KP_I32: return "i32";
    case KF_KP_I64: return "i64";
    case KF_KP_F32: return "f32";
    }
    return "?";
}

int kf_program_source_name_ok(const char *file) {
    if (!file || !*file || file[0] == '/') return 0;
    if (strstr(file, "//") || file[strlen(file) - 1] == '/') return 0;
    for (const char *c = file; *c; c++)
        if (*c == '\\' || (unsigned char)*c < 0x20) return 0;
    const char *seg = file;
    for (;;) {
        size_t n = strcspn(seg, "/");
        if ((n == 2 && seg[0] == '.' && seg[1] == '.') || (n == 1 && seg[0] == '.')) return 0;
        if (!seg[n]) break;
        seg += n + 1;
    }
    return 1;
}

int kf_program_find_buf(const kf_program *p, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < p->n_bufs; i++)
        if (p->bufs[i].name && strcmp(p->bufs[i].name, name) == 0) return i;
    return -1;
}

int kf_program_find_kernel(const kf_program *p, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < p->n_kernels; i++)
        if (p->kernels[i].name && strcmp(p->kernels[i].name, name) == 0) return i;
    return -1;
}

void kf_program_free(kf_program *p) {
    if (!p) return;
    free(p->target);
    free(p->agent);
    for (int i = 0; i < p->n_sources; i++) {
        free(p->sources[i].file);
        free(p->sources[i].text);
    }
    free(p->sources);
    for (int i = 0; i < p->n_kernels; i++) {
        free(p->kernels[i].name);
        for (int k = 0; k < p->kernels[i].n_params; k++) free(p->kernels[i].params[k].name);
        free(p->kernels[i].params);
    }
    free(p->kernels);
    for (int i = 0; i < p->n_bufs; i++) {
        free(p->bufs[i].name);
        free(p->bufs[i].param);
    }
    free(p->bufs);
    for (int i = 0; i < p->n_steps; i++) free(p->steps[i].args);
    free(p->steps);
    memset(p, 0, sizeof *p);
}

/* ---- builders ---- */

/* Grows *arr (n elements of size sz) by one zeroed element; returns it or NULL. */
static void *kf_grow(void **arr, int *n, size_t sz) {
    void *q = realloc(*arr, ((size_t)*n + 1) * sz);
    if (!q) return NULL;
    *arr = q;
    void *e = (char *)q + (size_t)*n * sz;
    memset(e, 0, sz);
    (*n)++;
    return e;
}

int kf_program_add_buf(kf_program *p, const char *name, kf_buf_role role, int index,
                       const char *param, const kf_tdesc *desc) {
    kf_pbuf *b = kf_grow((void **)&p->bufs, &p->n_bufs, sizeof *b);
    if (!b) return -1;
    b->name = kf_strdup(name);
    b->role = role;
    b->index = (role == KF_BUF_INPUT || role == KF_BUF_OUTPUT) ? index : -1;
    b->param = kf_strdup(param);
    if (desc) b->desc = *desc;
    if (b->desc.ndim < 0 || b->desc.ndim > KF_MAX_DIMS) b->desc.ndim = 0;
    kf_tdesc_set_contiguous(&b->desc);
    b->nbytes = kf_tdesc_nbytes(&b->desc);
    return p->n_bufs - 1;
}

int kf_program_add_kernel(kf_program *p, const char *name, const kf_kparam *params, int n) {
    kf_pkernel *k = kf_grow((void **)&p->kernels, &p->n_kernels, sizeof *k);
    if (!k) return -1;
    k->name = kf_strdup(name);
    if (n > 0) {
        k->params = calloc((size_t)n, sizeof *k->params);
        if (k->params) {
            k->n_params = n;
            for (int i = 0; i < n; i++) {
                k->params[i].name = kf_strdup(params[i].name);
                k->params[i].kind = params[i].kind;
            }
        }
    }
    return p->n_kernels - 1;
}

int kf_program_add_source(kf_program *p, const char *file, const char *text) {
    kf_source *s = kf_grow((void **)&p->sources, &p->n_sources, sizeof *s);
    if (!s) return -1;
    s->file = kf_strdup(file);
    s->text = kf_strdup(text);
    return p->n_sources - 1;
}

kf_step *kf_program_add_step(kf_program *p, kf_step_kind kind) {
    kf_step *s = kf_grow((void **)&p->steps, &p->n_steps, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    for (int i = 0; i < 3; i++) s->grid[i] = s->block[i] = 1;
    if (kind == KF_STEP_GEMM) {
        s->alpha = 1.0;
        s->batch = 1;
    }
    if (kind == KF_STEP_CONV) {
        s->conv.x = s->conv.w = s->conv.y = s->conv.bias = -1;
        s->conv.groups = 1;
        for (int j = 0; j < 3; j++) s->conv.stride[j] = s->conv.dilation[j] = 1;
    }
    return s;
}

int64_t kf_conv_step_out(const kf_conv_step *c, int j) {
    int64_t in = c->in[j], k = c->kernel[j], s = c->stride[j], p = c->padding[j], d = c->dilation[j];
    if (c->transposed) return (in - 1) * s - 2 * p + d * (k - 1) + c->output_padding[j] + 1;
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0 || s < 1) return 0;
    return span / s + 1;
}

void kf_step_set_args(kf_step *s, const kf_karg *args, int n) {
    free(s->args);
    s->args = NULL;
    s->n_args = 0;
    if (n <= 0) return;
    s->args = malloc((size_t)n * sizeof *s->args);
    if (!s->args) return;
    memcpy(s->args, args, (size_t)n * sizeof *s->args);
    s->n_args = n;
}

/* ---- folder form ---- */

int kf_program_load(const char *dir, kf_program *p, kf_err *err) {
    memset(p, 0, sizeof *p);
    char *path = kf_asprintf("%s/plan.json", dir);
    if (!path) return kf_fail(err, KF_E_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    int e = kf_read_file(path, &text, &len);
    if (e != 0) {
        int rc = kf_fail(err, KF_E_IO, "%s: cannot read: %s", path, strerror(-e));
        free(path);
        return rc;
    }
    int rc = kf_program_from_json(text, dir, p, err);
    free(text);
    if (rc != 0) kf_err_prefix(err, "%s", path);
    free(path);
    return rc;
}

/* Creates the folders leading to dir/file. */
static int kf_make_parent(const char *dir, const char *file) {
    const char *slash = strrchr(file, '/');
    if (!slash) return 0;
    char *sub = kf_asprintf("%s/%.*s", dir, (int)(slash - file), file);
    if (!sub) return -ENOMEM;
    int e = kf_mkdirs(sub);
    free(sub);
    return e;
}

int kf_program_save(const kf_program *p, const char *dir, kf_err *err) {
    int e = kf_mkdirs(dir);
    if (e != 0) return kf_fail(err, KF_E_IO, "%s: cannot create folder: %s", dir, strerror(-e));
    for (int i = 0; i < p->n_sources; i++) {
        const kf_source *s = &p->sources[i];
        if (!kf_program_source_name_ok(s->file))
            return kf_fail(err, KF_E_INVALID, "source %d: unsafe file name '%s' (must be "
                           "relative, without '..')", i, s->file ? s->file : "");
        if (!s->text)
            return kf_fail(err, KF_E_INVALID, "source '%s' has no text to save", s->file);
        if (strcmp(s->file, "plan.json") == 0)
            return kf_fail(err, KF_E_INVALID, "a source may not be named plan.json");
        e = kf_make_parent(dir, s->file);
        char *path = kf_asprintf("%s/%s", dir, s->file);
        if (e == 0) e = path ? kf_write_file(path, s->text, strlen(s->text)) : -ENOMEM;
        if (e != 0) {
            int rc = kf_fail(err, KF_E_IO, "%s/%s: cannot write: %s", dir, s->file, strerror(-e));
            free(path);
            return rc;
        }
        free(path);
    }
    char *json = kf_program_to_json(p);
    if (!json) return kf_fail(err, KF_E_NOMEM, "out of memory rendering plan.json");
    char *path = kf_asprintf("%s/plan.json", dir);
    e = path ? kf_write_file(path, json, strlen(json)) : -ENOMEM;
    free(json);
    int rc = 0;
    if (e != 0) rc = kf_fail(err, KF_E_IO, "%s: cannot write: %s", path ? path : dir, strerror(-e));
    free(path);
    return rc;
}
