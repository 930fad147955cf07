/* lower_reduce.c: reductions over a set of dims with keepdim: sum, mean, prod, amax, amin,
 * max/min (global, or per dim with values and indices), argmax, argmin, var/std (correction
 * or unbiased), var_mean/std_mean, logsumexp, norms (p = 0, 1, 2, inf, -inf, any p), any, all.
 * One kernel: parallel over output elements, serial over the reduced elements, accumulating
 * floats in double (max/min stay in the input's type and propagate NaN like torch). */
#include <math.h>
#include <string.h>
#include "agents/lower.h"

void kf_red_plan(kf_red *r, const int64_t *shape, int nd, const int *red) {
    memset(r, 0, sizeof *r);
    int64_t gs[KF_MAX_DIMS], gstr[KF_MAX_DIMS];
    int gr[KF_MAX_DIMS], ng = 0;
    for (int j = 0; j < nd; j++) {
        if (shape[j] == 1) continue;
        if (ng > 0 && gr[ng - 1] == (red[j] != 0)) {
            gs[ng - 1] *= shape[j];
        } else {
            gs[ng] = shape[j];
            gr[ng] = red[j] != 0;
            ng++;
        }
    }
    int64_t s = 1;
    for (int g = ng - 1; g >= 0; g--) {
        gstr[g] = s;
        s *= gs[g];
    }
    r->outer = r->count = 1;
    for (int g = 0; g < ng; g++) {
        if (gr[g]) {
            r->red_shape[r->n_red] = gs[g];
            r->red_stride[r->n_red++] = gstr[g];
            r->count *= gs[g];
        } else {
            r->kept_shape[r->n_kept] = gs[g];
            r->kept_stride[r->n_kept++] = gstr[g];
            r->outer *= gs[g];
        }
    }
}

int kf_red_plan_node(kf_red *r, const kf_lw *w, int in, const char *dim_arg, int pos) {
    const kf_tdesc *d = kf_lw_desc(w, in);
    int64_t dims[KF_MAX_DIMS];
    int red[KF_MAX_DIMS] = {0};
    int c = dim_arg ? kf_lw_arg_ints(w->n, dim_arg, pos, dims, KF_MAX_DIMS) : -1;
    if (c <= 0) {
        for (int j = 0; j < d->ndim; j++) red[j] = 1;
    } else {
        for (int j = 0; j < c; j++) red[kf_lw_wrap_dim(dims[j], d->ndim)] = 1;
    }
    kf_red_plan(r, d->shape, d->ndim, red);
    return 0;
}

kir_expr *kf_red_base(kf_lw *w, const kf_red *r, const kir_expr *o) {
    kir_expr *c[KF_MAX_DIMS];
    kf_lw_unravel(w, o, r->kept_shape, r->n_kept, c);
    return kf_lw_dot(w, c, r->kept_stride, r->n_kept, 0);
}

kir_expr *kf_red_off(kf_lw *w, const kf_red *r, const kir_expr *i) {
    kir_expr *c[KF_MAX_DIMS];
    kf_lw_unravel(w, i, r->red_shape, r->n_red, c);
    return kf_lw_dot(w, c, r->red_stride, r->n_red, 0);
}

typedef enum {
    R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_VAR, R_STD, R_LSE, R_NORM,
    R_ANY, R_ALL
} red_kind;

typedef struct red_loop {
    kir_stmt *outer;     /* parallel loop over outputs */
    int o, base;         /* vars */
} red_loop;

static kir_stmt *red_open(kf_lw *w, const kf_red *r, red_loop *L) {
    L->outer = kf_lw_loop(w, NULL, "o", r->outer, KIR_LOOP_PARALLEL, &L->o);
    kir_expr *ov = kir_var(w->k, L->o);
    L->base = kf_lw_local(w, L->outer, "base", KIR_T_I64, kf_red_base(w, r, ov));
    return L->outer;
}

/* A serial loop over the reduced elements; *x gets a local holding the element. */
static kir_stmt *red_inner(kf_lw *w, const kf_red *r, const red_loop *L, int in, kir_type t, int *iv, int *x) {
    kir_kernel *k = w->k;
    kir_stmt *loop = kf_lw_loop(w, L->outer, "r", r->count, KIR_LOOP_SERIAL, iv);
    kir_expr *iexp = kir_var(k, *iv);
    kir_expr *idx = kir_add(k, kir_var(k, L->base), kf_red_off(w, r, iexp));
    *x = kf_lw_local(w, loop, "x", t, kf_lw_cvt(k, t, kf_lw_load(w, in, idx)));
    return loop;
}

static int is_f(kir_type t) { return t == KIR_T_F32 || t == KIR_T_F64; }

static kir_expr *zero_of(kir_kernel *k, kir_type t) { return is_f(t) ? kir_flt(k, 0.0, t) : kir_int(k, 0); }

/* max/min with index: first occurrence wins, NaN counts as the extreme (first NaN kept). */
static void emit_extreme(kf_lw *w, const kf_red *r, red_loop *L, int in, int is_max, int val_slot,
                         int idx_slot) {
    kir_kernel *k = w->k;
    kir_type t = kf_lw_type(w, in);
    kir_expr *init = is_f(t) ? kir_flt(k, is_max ? -INFINITY : INFINITY, t)
                             : kir_int(k, is_max ? INT64_MIN : INT64_MAX);
    int best = kf_lw_local(w, L->outer, "best", t, init);
    int bidx = kf_lw_local(w, L->outer, "bidx", KIR_T_I64, kf_lw_i(w, -1));
    int iv, x;
    kir_stmt *loop = red_inner(w, r, L, in, t, &iv, &x);
    kir_expr *take = kir_bin(k, is_max ? KIR_GT : KIR_LT, kir_var(k, x), kir_var(k, best));
    if (is_f(t))
        take = kir_bin(k, KIR_OR, take, kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, kir_var(k, x)),
                                                kir_un(k, KIR_NOT, kir_un(k, KIR_ISNAN, kir_var(k, best)))));
    take = kir_bin(k, KIR_OR, take, kir_bin(k, KIR_LT, kir_var(k, bidx), kf_lw_i(w, 0)));
    kir_stmt *iff = kir_if(k, take);
    kir_append(k, loop, iff);
    kir_append(k, iff, kir_assign(k, best, kir_var(k, x)));
    kir_append(k, iff, kir_assign(k, bidx, kir_var(k, iv)));
    if (val_slot >= 0) kf_lw_put(w, L->outer, val_slot, kir_var(k, L->o), kir_var(k, best));
    if (idx_slot >= 0) kf_lw_put(w, L->outer, idx_slot, kir_var(k, L->o), kir_var(k, bidx));
}

static double var_correction(const kf_node *n) {
    const kf_arg *c = kf_lw_arg(n, "correction", -1);
    if (c && (c->kind == KF_ARG_INT || c->kind == KF_ARG_FLOAT)) return c->kind == KF_ARG_INT ? (double)c->i : c->f;
    if (c) return 1.0;   /* None: the default, 1 */
    const kf_arg *u = kf_lw_arg(n, "unbiased", -1);
    if (u && (u->kind == KF_ARG_BOOL || u->kind == KF_ARG_INT)) return u->i ? 1.0 : 0.0;
    return 1.0;
}

/* Norm order p of the node: 2 unless given. */
static double norm_order(const kf_node *n) {
    const kf_arg *a = kf_lw_arg(n, "p", 1);
    if (!a) a = kf_lw_arg(n, "ord", 1);
    if (!a || a->kind == KF_ARG_NONE) return 2.0;
    if (a->kind == KF_ARG_INT) return (double)a->i;
    if (a->kind == KF_ARG_FLOAT) return a->f;
    if (a->kind == KF_ARG_STR && a->s && strcmp(a->s, "fro") == 0) return 2.0;
    return NAN;
}

static int build_reduce_kind(kf_lw *w, red_kind kind, kf_err *err) {
    kir_kernel *k = w->k;
    int in = kf_lw_arg_tensor(w->n, "self", 0);
    if (in < 0) in = kf_lw_arg_tensor(w->n, "input", 0);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    const char *dim_arg = "dim";
    if (kind == R_NORM && !kf_lw_arg(w->n, "dim", -1) && kf_lw_arg(w->n, "axis", -1)) dim_arg = "axis";
    kf_red r;
    kf_red_plan_node(&r, w, in, dim_arg, kind == R_NORM ? 2 : 1);
    if (!kf_lw_out_live(w, 0) && !kf_lw_out_live(w, 1)) return 0;
    int out = kf_lw_out(w, 0);
    kir_type ot = kf_lw_type(w, out >= 0 ? out : in), it = kf_lw_type(w, in);
    red_loop L;
    red_open(w, &r, &L);
    kir_expr *ov = kir_var(k, L.o);
    switch (kind) {
    case R_MAX: case R_MIN:
        emit_extreme(w, &r, &L, in, kind == R_MAX, 0, w->n->n_outs > 1 ? 1 : -1);
        return 0;
    case R_ARGMAX: case R_ARGMIN:
        emit_extreme(w, &r, &L, in, kind == R_ARGMAX, -1, 0);
        return 0;
    case R_ANY: case R_ALL: {
        int acc = kf_lw_local(w, L.outer, "acc", KIR_T_BOOL, kf_lw_cvt(k, KIR_T_BOOL, kir_int(k, kind == R_ALL)));
        int iv, x;
        kir_stmt *loop = red_inner(w, &r, &L, in, it, &iv, &x);
        kir_expr *b = kf_lw_cvt(k, KIR_T_BOOL, kir_var(k, x));
        kir_append(k, loop, kir_assign(k, acc, kir_bin(k, kind == R_ALL ? KIR_AND : KIR_OR, kir_var(k, acc), b)));
        kf_lw_put(w, L.outer, 0, ov, kir_var(k, acc));
        return 0;
    }
    default: break;
    }
    kir_type at = kf_lw_acc_type(is_f(ot) ? ot : it);
    if (kind == R_MEAN || kind == R_VAR || kind == R_STD || kind == R_LSE || kind == R_NORM) at = KIR_T_F64;
    double cnt = (double)r.count;
    if (kind == R_SUM || kind == R_MEAN || kind == R_PROD) {
        int acc = kf_lw_local(w, L.outer, "acc", at, kind == R_PROD ? kf_lw_const(k, 1, zero_of(k, at)) : zero_of(k, at));
        int iv, x;
        kir_stmt *loop = red_inner(w, &r, &L, in, at, &iv, &x);
        kir_binop op = kind == R_PROD ? KIR_MUL : KIR_ADD;
        kir_append(k, loop, kir_assign(k, acc, kir_bin(k, op, kir_var(k, acc), kir_var(k, x))));
        kir_expr *y = kir_var(k, acc);
        if (kind == R_MEAN) y = kir_bin(k, KIR_DIV, y, kir_flt(k, cnt, KIR_T_F64));
        kf_lw_put(w, L.outer, 0, ov, y);
        return 0;
    }
    if (kind == R_VAR || kind == R_STD) {
        /* var_mean / std_mean: slot 0 var or std, slot 1 mean */
        int sum = kf_lw_local(w, L.outer, "sum", at, zero_of(k, at));
        int iv, x;
        kir_stmt *loop = red_inner(w, &r, &L, in, at, &iv, &x);
        kir_append(k, loop, kir_assign(k, sum, kir_add(k, kir_var(k, sum), kir_var(k, x))));
        int mean = kf_lw_local(w, L.outer, "mean", at, kir_bin(k, KIR_DIV, kir_var(k, sum), kir_flt(k, cnt, at)));
        int ss = kf_lw_local(w, L.outer, "ss", at, zero_of(k, at));
        loop = red_inner(w, &r, &L, in, at, &iv, &x);
        int dv = kf_lw_local(w, loop, "d", at, kir_bin(k, KIR_SUB, kir_var(k, x), kir_var(k, mean)));
        kir_append(k, loop, kir_assign(k, ss, kir_add(k, kir_var(k, ss), kir_mul(k, kir_var(k, dv), kir_var(k, dv)))));
        double denom = cnt - var_correction(w->n);
        if (denom < 0) denom = 0;
        kir_expr *v = kir_bin(k, KIR_DIV, kir_var(k, ss), kir_flt(k, denom, at));
        if (kind == R_STD) v = kir_un(k, KIR_SQRT, v);
        kf_lw_put(w, L.outer, 0, ov, v);
        kf_lw_put(w, L.outer, 1, kir_var(k, L.o), kir_var(k, mean));
        return 0;
    }
    if (kind == R_LSE) {
        /* shift = max, or 0 when the max is infinite; log(sum(exp(x - shift))) + shift */
        int m = kf_lw_local(w, L.outer, "m", at, kir_flt(k, -INFINITY, at));
        int iv, x;
        kir_stmt *loop = red_inner(w, &r, &L, in, at, &iv, &x);
        kir_append(k, loop, kir_assign(k, m, kir_bin(k, KIR_MAX, kir_var(k, m), kir_var(k, x))));
        kir_expr *isinf_m = kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, kir_bin(k, KIR_SUB, kir_var(k, m), kir_var(k, m))),
                                    kir_un(k, KIR_NOT, kir_un(k, KIR_ISNAN, kir_var(k, m))));
        int sh = kf_lw_local(w, L.outer, "shift", at, kir_select(k, isinf_m, zero_of(k, at), kir_var(k, m)));
        int s = kf_lw_local(w, L.outer, "s", at, zero_of(k, at));
        loop = red_inner(w, &r, &L, in, at, &iv, &x);
        kir_append(k, loop, kir_assign(k, s, kir_add(k, kir_var(k, s),
                                                    kir_un(k, KIR_EXP, kir_bin(k, KIR_SUB, kir_var(k, x), kir_var(k, sh))))));
        kf_lw_put(w, L.outer, 0, ov, kir_add(k, kir_un(k, KIR_LOG, kir_var(k, s)), kir_var(k, sh)));
        return 0;
    }
    /* R_NORM */
    double p = norm_order(w->n);
    if (isnan(p)) return kf_lw_unsupported(err, w->n, "norm order");
    int acc;
    int iv, x;
    if (isinf(p)) {
        acc = kf_lw_local(w, L.outer, "acc", at, kir_flt(k, p > 0 ? 0.0 : INFINITY, at));
        kir_stmt *loop = red_inner(w, &r, &L, in, at, &iv, &x);
        kir_append(k, loop, kir_assign(k, acc, kir_bin(k, p > 0 ? KIR_MAX : KIR_MIN, kir_var(k, acc),
                                                      kir_un(k, KIR_ABS, kir_var(k, x)))));
        kf_lw_put(w, L.outer, 0, ov, kir_var(k, acc));
        return 0;
    }
    acc = kf_lw_local(w, L.outer, "acc", at, zero_of(k, at));
    kir_stmt *loop = red_inner(w, &r, &L, in, at, &iv, &x);
    kir_expr *term;
    if (p == 0.0) term = kf_lw_cvt(k, at, kir_bin(k, KIR_NE, kir_var(k, x), zero_of(k, at)));
    else if (p == 1.0) term = kir_un(k, KIR_ABS, kir_var(k, x));
    else if (p == 2.0) term = kir_mul(k, kir_var(k, x), kir_var(k, x));
    else term = kir_bin(k, KIR_POW, kir_un(k, KIR_ABS, kir_var(k, x)), kir_flt(k, p, at));
    kir_append(k, loop, kir_assign(k, acc, kir_add(k, kir_var(k, acc), term)));
    kir_expr *y = kir_var(k, acc);
    if (p == 2.0) y = kir_un(k, KIR_SQRT, y);
    else if (p != 0.0 && p != 1.0) y = kir_bin(k, KIR_POW, y, kir_flt(k, 1.0 / p, at));
    kf_lw_put(w, L.outer, 0, ov, y);
    return 0;
}

static int build_sum(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_SUM, err); }
static int build_mean(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_MEAN, err); }
static int build_prod(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_PROD, err); }
static int build_amax(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_MAX, err); }
static int build_amin(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_MIN, err); }
/* max.other / min.other are the elementwise maximum / minimum */
static int build_max(kf_lw *w, kf_err *err) {
    if (kf_lw_arg_tensor(w->n, "other", 1) >= 0) return kf_lw_build_ew(w, kf_lop_find("maximum"), err);
    return build_reduce_kind(w, R_MAX, err);
}
static int build_min(kf_lw *w, kf_err *err) {
    if (kf_lw_arg_tensor(w->n, "other", 1) >= 0) return kf_lw_build_ew(w, kf_lop_find("minimum"), err);
    return build_reduce_kind(w, R_MIN, err);
}
static int build_argmax(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_ARGMAX, err); }
static int build_argmin(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_ARGMIN, err); }
static int build_var(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_VAR, err); }
static int build_std(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_STD, err); }
static int build_lse(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_LSE, err); }
static int build_norm(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_NORM, err); }
static int build_any(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_ANY, err); }
static int build_all(kf_lw *w, kf_err *err) { return build_reduce_kind(w, R_ALL, err); }

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_reduce[] = {
    KERN("sum", build_sum), KERN("mean", build_mean), KERN("prod", build_prod),
    KERN("amax", build_amax), KERN("amin", build_amin), KERN("max", build_max), KERN("min", build_min),
    KERN("argmax", build_argmax), KERN("argmin", build_argmin),
    KERN("var", build_var), KERN("std", build_std), KERN("var_mean", build_var), KERN("std_mean", build_std),
    KERN("logsumexp", build_lse), KERN("norm", build_norm), KERN("linalg_vector_norm", build_norm),
    KERN("frobenius_norm", build_norm), KERN("any", build_any), KERN("all", build_all),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
