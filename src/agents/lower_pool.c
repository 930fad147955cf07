/* lower_pool.c: pooling over the last 1 to 3 dims: max_pool{1,2,3}d (with indices: the flat
 * position in the input plane, as i64, NaN-propagating like torch), avg_pool{1,2,3}d
 * (padding, ceil_mode through the output shape, count_include_pad, divisor_override), and
 * adaptive average / max pooling. One kernel: parallel over output elements, serial over the
 * window. */
#include <math.h>
#include <string.h>
#include "agents/lower.h"

typedef struct pool_plan {
    int x, nsd;
    int64_t planes, in_plane, out_plane;
    int64_t I[3], O[3], Kd[3], stride[3], pad[3], dil[3];
} pool_plan;

static int spatial_dims(const char *op) {
    const char *p = strstr(op, "pool");
    if (!p || p[4] < '1' || p[4] > '3') return 0;
    return p[4] - '0';
}

static void fill3(int64_t *dst, const int64_t *src, int n, int nsd, int64_t dflt) {
    for (int j = 0; j < nsd; j++) dst[j] = n <= 0 ? dflt : (n == 1 ? src[0] : src[j < n ? j : n - 1]);
}

static int pool_plan_make(kf_lw *w, pool_plan *p, int windowed, kf_err *err) {
    memset(p, 0, sizeof *p);
    p->nsd = spatial_dims(w->op);
    p->x = kf_lw_arg_tensor(w->n, "self", 0);
    if (p->x < 0) p->x = kf_lw_arg_tensor(w->n, "input", 0);
    if (p->x < 0 || p->nsd == 0) return kf_lw_unsupported(err, w->n, "pool without input or dims");
    const kf_tdesc *xd = kf_lw_desc(w, p->x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    if (xd->ndim < p->nsd || od->ndim != xd->ndim) return kf_lw_unsupported(err, w->n, "input rank");
    p->planes = 1;
    for (int j = 0; j < xd->ndim - p->nsd; j++) p->planes *= xd->shape[j];
    p->in_plane = p->out_plane = 1;
    for (int j = 0; j < p->nsd; j++) {
        p->I[j] = xd->shape[xd->ndim - p->nsd + j];
        p->O[j] = od->shape[od->ndim - p->nsd + j];
        p->in_plane *= p->I[j];
        p->out_plane *= p->O[j];
    }
    if (!windowed) return 0;
    int64_t v[8];
    int c = kf_lw_arg_ints(w->n, "kernel_size", 1, v, 8);
    if (c < 1) return kf_lw_unsupported(err, w->n, "no kernel_size");
    fill3(p->Kd, v, c, p->nsd, 1);
    c = kf_lw_arg_ints(w->n, "stride", 2, v, 8);
    if (c <= 0) fill3(p->stride, p->Kd, p->nsd, p->nsd, 1);
    else fill3(p->stride, v, c, p->nsd, 1);
    c = kf_lw_arg_ints(w->n, "padding", 3, v, 8);
    fill3(p->pad, v, c, p->nsd, 0);
    if (strstr(w->op, "max")) {
        c = kf_lw_arg_ints(w->n, "dilation", 4, v, 8);
        fill3(p->dil, v, c, p->nsd, 1);
    } else {
        fill3(p->dil, v, 0, p->nsd, 1);
    }
    return 0;
}

/* The output loop: plane and spatial coordinate variables. */
static kir_stmt *pool_loop(kf_lw *w, const pool_plan *p, int *o, int *plane, int *os) {
    kir_kernel *k = w->k;
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", p->planes * p->out_plane, KIR_LOOP_PARALLEL, o);
    *plane = kf_lw_local(w, loop, "pl", KIR_T_I64, kir_bin(k, KIR_DIV, kir_var(k, *o), kf_lw_i(w, p->out_plane)));
    kir_expr *coords[3];
    kir_expr *r = kir_bin(k, KIR_MOD, kir_var(k, *o), kf_lw_i(w, p->out_plane));
    kf_lw_unravel(w, r, p->O, p->nsd, coords);
    for (int j = 0; j < p->nsd; j++) os[j] = kf_lw_local(w, loop, "os", KIR_T_I64, coords[j]);
    return loop;
}

/* Flat position in the input plane of spatial coordinate vars iv. */
static kir_expr *plane_index(kf_lw *w, const pool_plan *p, const int *iv) {
    kir_expr *c[3];
    int64_t s[3];
    kf_lw_strides(p->I, p->nsd, s);
    for (int j = 0; j < p->nsd; j++) c[j] = kir_var(w->k, iv[j]);
    return kf_lw_dot(w, c, s, p->nsd, 0);
}

typedef struct pool_acc {
    int is_max;
    int best, bidx, sum;      /* vars */
    int plane;
} pool_acc;

static void pool_body(kf_lw *w, const pool_plan *p, const pool_acc *a, kir_stmt *parent, const int *iv) {
    kir_kernel *k = w->k;
    int pos = kf_lw_local(w, parent, "pos", KIR_T_I64, plane_index(w, p, iv));
    kir_expr *src = kir_add(k, kir_mul(k, kir_var(k, a->plane), kf_lw_i(w, p->in_plane)), kir_var(k, pos));
    kir_expr *x = kf_lw_load(w, p->x, src);
    if (a->is_max) {
        int v = kf_lw_local(w, parent, "v", x ? x->type : KIR_T_F32, x);
        kir_expr *take = kir_bin(k, KIR_GT, kir_var(k, v), kir_var(k, a->best));
        if (x && (x->type == KIR_T_F32 || x->type == KIR_T_F64))
            take = kir_bin(k, KIR_OR, take, kir_un(k, KIR_ISNAN, kir_var(k, v)));
        take = kir_bin(k, KIR_OR, take, kir_bin(k, KIR_LT, kir_var(k, a->bidx), kf_lw_i(w, 0)));
        kir_stmt *iff = kir_if(k, take);
        kir_append(k, parent, iff);
        kir_append(k, iff, kir_assign(k, a->best, kir_var(k, v)));
        kir_append(k, iff, kir_assign(k, a->bidx, kir_var(k, pos)));
    } else {
        kir_type at = k->vars[a->sum].type;
        kir_append(k, parent, kir_assign(k, a->sum, kir_add(k, kir_var(k, a->sum), kf_lw_cvt(k, at, x))));
    }
}

static void pool_init(kf_lw *w, kir_stmt *loop, pool_acc *a) {
    kir_kernel *k = w->k;
    int out = kf_lw_out(w, 0);
    kir_type t = kf_lw_type(w, out);
    if (a->is_max) {
        kir_expr *lo = (t == KIR_T_F32 || t == KIR_T_F64) ? kir_flt(k, -INFINITY, t) : kir_int(k, INT64_MIN);
        a->best = kf_lw_local(w, loop, "best", t, lo);
        a->bidx = kf_lw_local(w, loop, "bidx", KIR_T_I64, kf_lw_i(w, -1));
    } else {
        kir_type at = kf_lw_acc_type(t);
        a->sum = kf_lw_local(w, loop, "sum", at, at == KIR_T_F64 ? kir_flt(k, 0.0, at) : kir_int(k, 0));
    }
}

static int build_max_pool(kf_lw *w, kf_err *err) {
    pool_plan p;
    int rc = pool_plan_make(w, &p, 1, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0) && !kf_lw_out_live(w, 1)) return 0;
    kir_kernel *k = w->k;
    int o, os[3], iv[3];
    pool_acc a = {1, -1, -1, -1, -1};
    kir_stmt *loop = pool_loop(w, &p, &o, &a.plane, os);
    pool_init(w, loop, &a);
    kir_stmt *parent = loop;
    for (int j = 0; j < p.nsd; j++) {
        int kk;
        kir_stmt *kl = kf_lw_loop(w, parent, "kk", p.Kd[j], KIR_LOOP_SERIAL, &kk);
        kir_expr *i = kir_add(k, kir_mul(k, kir_var(k, os[j]), kf_lw_i(w, p.stride[j])),
                              kir_mul(k, kir_var(k, kk), kf_lw_i(w, p.dil[j])));
        if (p.pad[j]) i = kir_bin(k, KIR_SUB, i, kf_lw_i(w, p.pad[j]));
        iv[j] = kf_lw_local(w, kl, "ii", KIR_T_I64, i);
        kir_expr *ok = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kir_var(k, iv[j]), kf_lw_i(w, 0)),
                               kir_bin(k, KIR_LT, kir_var(k, iv[j]), kf_lw_i(w, p.I[j])));
        kir_stmt *iff = kir_if(k, ok);
        kir_append(k, kl, iff);
        parent = iff;
    }
    pool_body(w, &p, &a, parent, iv);
    kf_lw_put(w, loop, 0, kir_var(k, o), kir_var(k, a.best));
    kf_lw_put(w, loop, 1, kir_var(k, o), kir_var(k, a.bidx));
    return 0;
}

/* Window [lo, hi) of an adaptive pool for output coordinate var os along dim j. */
static void adaptive_window(kf_lw *w, const pool_plan *p, kir_stmt *loop, int j, int os, int *lo, int *hi) {
    kir_kernel *k = w->k;
    /* lo = floor(o * I / O), hi = ceil((o + 1) * I / O) */
    kir_expr *l = kir_bin(k, KIR_DIV, kir_mul(k, kir_var(k, os), kf_lw_i(w, p->I[j])), kf_lw_i(w, p->O[j]));
    kir_expr *h = kir_bin(k, KIR_DIV,
                          kir_add(k, kir_mul(k, kir_add(k, kir_var(k, os), kf_lw_i(w, 1)), kf_lw_i(w, p->I[j])),
                                  kf_lw_i(w, p->O[j] - 1)),
                          kf_lw_i(w, p->O[j]));
    *lo = kf_lw_local(w, loop, "lo", KIR_T_I64, l);
    *hi = kf_lw_local(w, loop, "hi", KIR_T_I64, h);
}

static int build_adaptive(kf_lw *w, kf_err *err) {
    pool_plan p;
    int rc = pool_plan_make(w, &p, 0, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0) && !kf_lw_out_live(w, 1)) return 0;
    kir_kernel *k = w->k;
    int o, os[3], iv[3], lo[3], hi[3];
    pool_acc a = {strstr(w->op, "max") != NULL, -1, -1, -1, -1};
    kir_stmt *loop = pool_loop(w, &p, &o, &a.plane, os);
    pool_init(w, loop, &a);
    for (int j = 0; j < p.nsd; j++) adaptive_window(w, &p, loop, j, os[j], &lo[j], &hi[j]);
    kir_stmt *parent = loop;
    for (int j = 0; j < p.nsd; j++) {
        iv[j] = kir_add_var(k, "ii", KIR_T_I64);
        kir_stmt *l = kir_for(k, iv[j], kir_var(k, lo[j]), kir_var(k, hi[j]), 1, KIR_LOOP_SERIAL);
        kir_append(k, parent, l);
        parent = l;
    }
    pool_body(w, &p, &a, parent, iv);
    if (a.is_max) {
        kf_lw_put(w, loop, 0, kir_var(k, o), kir_var(k, a.best));
        kf_lw_put(w, loop, 1, kir_var(k, o), kir_var(k, a.bidx));
    } else {
        kir_expr *cnt = NULL;
        for (int j = 0; j < p.nsd; j++) {
            kir_expr *d = kir_bin(k, KIR_SUB, kir_var(k, hi[j]), kir_var(k, lo[j]));
            cnt = cnt ? kir_mul(k, cnt, d) : d;
        }
        kir_type at = k->vars[a.sum].type;
        kf_lw_put(w, loop, 0, kir_var(k, o), kir_bin(k, KIR_DIV, kir_var(k, a.sum), kf_lw_cvt(k, at, cnt)));
    }
    return 0;
}

static int build_avg_pool(kf_lw *w, kf_err *err) {
    pool_plan p;
    int rc = pool_plan_make(w, &p, 1, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    int include_pad = (int)kf_lw_arg_int(w->n, "count_include_pad", 5, 1);
    int64_t divisor = kf_lw_arg_is_none(w->n, "divisor_override", 6) ? 0
                    : kf_lw_arg_int(w->n, "divisor_override", 6, 0);
    kir_kernel *k = w->k;
    int o, os[3], iv[3], lo[3], hi[3];
    pool_acc a = {0, -1, -1, -1, -1};
    kir_stmt *loop = pool_loop(w, &p, &o, &a.plane, os);
    pool_init(w, loop, &a);
    kir_expr *pool_size = NULL, *cnt = NULL;
    for (int j = 0; j < p.nsd; j++) {
        /* lo = o*s - pad; hi = min(lo + K, I + pad); size = hi - lo; then clip to [0, I) */
        kir_expr *l = kir_bin(k, KIR_SUB, kir_mul(k, kir_var(k, os[j]), kf_lw_i(w, p.stride[j])), kf_lw_i(w, p.pad[j]));
        lo[j] = kf_lw_local(w, loop, "lo", KIR_T_I64, l);
        kir_expr *h = kir_bin(k, KIR_MIN, kir_add(k, kir_var(k, lo[j]), kf_lw_i(w, p.Kd[j])), kf_lw_i(w, p.I[j] + p.pad[j]));
        hi[j] = kf_lw_local(w, loop, "hi", KIR_T_I64, h);
        kir_expr *sz = kir_bin(k, KIR_SUB, kir_var(k, hi[j]), kir_var(k, lo[j]));
        pool_size = pool_size ? kir_mul(k, pool_size, sz) : sz;
    }
    /* the window size counting padding, taken before the window is clipped to the input */
    int ps = kf_lw_local(w, loop, "psize", KIR_T_I64, pool_size);
    for (int j = 0; j < p.nsd; j++) {
        kir_append(k, loop, kir_assign(k, lo[j], kir_bin(k, KIR_MAX, kir_var(k, lo[j]), kf_lw_i(w, 0))));
        kir_append(k, loop, kir_assign(k, hi[j], kir_bin(k, KIR_MIN, kir_var(k, hi[j]), kf_lw_i(w, p.I[j]))));
    }
    for (int j = 0; j < p.nsd; j++) {
        kir_expr *d = kir_bin(k, KIR_SUB, kir_var(k, hi[j]), kir_var(k, lo[j]));
        cnt = cnt ? kir_mul(k, cnt, d) : d;
    }
    int cn = kf_lw_local(w, loop, "cnt", KIR_T_I64, cnt);
    kir_stmt *parent = loop;
    for (int j = 0; j < p.nsd; j++) {
        iv[j] = kir_add_var(k, "ii", KIR_T_I64);
        kir_stmt *l = kir_for(k, iv[j], kir_var(k, lo[j]), kir_var(k, hi[j]), 1, KIR_LOOP_SERIAL);
        kir_append(k, parent, l);
        parent = l;
    }
    pool_body(w, &p, &a, parent, iv);
    kir_expr *div = divisor ? kf_lw_i(w, divisor) : include_pad ? kir_var(k, ps) : kir_var(k, cn);
    kir_type at = k->vars[a.sum].type;
    kir_expr *y = kir_bin(k, KIR_DIV, kir_var(k, a.sum), kf_lw_cvt(k, at, div));
    /* an empty window (possible with ceil_mode) gives 0 */
    y = kir_select(k, kir_bin(k, KIR_GT, kir_var(k, cn), kf_lw_i(w, 0)), y, kf_lw_const(k, 0, y));
    kf_lw_put(w, loop, 0, kir_var(k, o), y);
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_pool[] = {
    KERN("max_pool1d", build_max_pool), KERN("max_pool2d", build_max_pool), KERN("max_pool3d", build_max_pool),
    KERN("max_pool1d_with_indices", build_max_pool), KERN("max_pool2d_with_indices", build_max_pool),
    KERN("max_pool3d_with_indices", build_max_pool),
    KERN("avg_pool1d", build_avg_pool), KERN("avg_pool2d", build_avg_pool), KERN("avg_pool3d", build_avg_pool),
    KERN("adaptive_avg_pool1d", build_adaptive), KERN("adaptive_avg_pool2d", build_adaptive),
    KERN("adaptive_avg_pool3d", build_adaptive), KERN("_adaptive_avg_pool2d", build_adaptive),
    KERN("_adaptive_avg_pool3d", build_adaptive), KERN("adaptive_max_pool1d", build_adaptive),
    KERN("adaptive_max_pool2d", build_adaptive), KERN("adaptive_max_pool3d", build_adaptive),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
