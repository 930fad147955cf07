/* lower_norm.c: normalisation layers: native_layer_norm / layer_norm (outputs y, mean, rstd),
 * batch norm (native_batch_norm, batch_norm, _native_batch_norm_legit and its functional,
 * no_stats and no_training forms) in training mode (batch statistics, biased variance for the
 * normalisation, updated running stats when the op returns them) and eval mode (running
 * stats), and native_group_norm (instance norm decomposes to batch norm). Statistics are
 * two-pass in double (one pass of shifted sums where kf_lw.one_pass_stats asks); one kernel
 * per op, parallel over rows / channels / groups. */
#include <math.h>
#include <string.h>
#include "agents/lower.h"

#define KF_ONE_PASS_MIN (1 << 18) /* elements per reduction (1 MiB of float32) */

/* One pass: with K the first element, s1 = sum(x - K), s2 = sum((x - K)^2) in double; mean =
 * K + s1 / n, var = max(s2 / n - (s1 / n)^2, 0). The shift keeps the cancellation small when
 * the mean is large against the spread. */
static void stats_one_pass(kf_lw *w, kir_stmt *parent, int x, int base, const kf_red *r, int *mean, int *var) {
    kir_kernel *k = w->k;
    double n = (double)(r->count > 0 ? r->count : 1);
    kir_expr *i0 = kir_add(k, kir_var(k, base), kf_red_off(w, r, kf_lw_i(w, 0)));
    int sh = kf_lw_local(w, parent, "shift", KIR_T_F64, kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, x, i0)));
    int s1 = kf_lw_local(w, parent, "s1", KIR_T_F64, kir_flt(k, 0.0, KIR_T_F64));
    int s2 = kf_lw_local(w, parent, "s2", KIR_T_F64, kir_flt(k, 0.0, KIR_T_F64));
    int iv;
    kir_stmt *l = kf_lw_loop(w, parent, "r", r->count, KIR_LOOP_SERIAL, &iv);
    kir_expr *idx = kir_add(k, kir_var(k, base), kf_red_off(w, r, kir_var(k, iv)));
    int d = kf_lw_local(w, l, "d", KIR_T_F64,
                        kir_bin(k, KIR_SUB, kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, x, idx)), kir_var(k, sh)));
    kir_append(k, l, kir_assign(k, s1, kir_add(k, kir_var(k, s1), kir_var(k, d))));
    kir_append(k, l, kir_assign(k, s2, kir_add(k, kir_var(k, s2), kir_mul(k, kir_var(k, d), kir_var(k, d)))));
    int m1 = kf_lw_local(w, parent, "m1", KIR_T_F64, kir_bin(k, KIR_DIV, kir_var(k, s1), kir_flt(k, n, KIR_T_F64)));
    *mean = kf_lw_local(w, parent, "mean", KIR_T_F64, kir_add(k, kir_var(k, sh), kir_var(k, m1)));
    kir_expr *v = kir_bin(k, KIR_SUB, kir_bin(k, KIR_DIV, kir_var(k, s2), kir_flt(k, n, KIR_T_F64)),
                          kir_mul(k, kir_var(k, m1), kir_var(k, m1)));
    *var = kf_lw_local(w, parent, "var", KIR_T_F64, kir_bin(k, KIR_MAX, v, kir_flt(k, 0.0, KIR_T_F64)));
}

/* mean and biased variance of elements base + off(i), i < count, into new double locals. */
static void stats(kf_lw *w, kir_stmt *parent, int x, int base, const kf_red *r, int *mean, int *var) {
    /* only for long reductions (a batch norm's channel over the whole batch): a shorter row
     * stays in cache between the two passes, and the second read is nearly free */
    if (w->one_pass_stats && r->count >= KF_ONE_PASS_MIN) {
        stats_one_pass(w, parent, x, base, r, mean, var);
        return;
    }
    kir_kernel *k = w->k;
    int sum = kf_lw_local(w, parent, "sum", KIR_T_F64, kir_flt(k, 0.0, KIR_T_F64));
    int iv;
    kir_stmt *l = kf_lw_loop(w, parent, "r", r->count, KIR_LOOP_SERIAL, &iv);
    kir_expr *idx = kir_add(k, kir_var(k, base), kf_red_off(w, r, kir_var(k, iv)));
    kir_append(k, l, kir_assign(k, sum, kir_add(k, kir_var(k, sum), kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, x, idx)))));
    *mean = kf_lw_local(w, parent, "mean", KIR_T_F64,
                        kir_bin(k, KIR_DIV, kir_var(k, sum), kir_flt(k, (double)r->count, KIR_T_F64)));
    int ss = kf_lw_local(w, parent, "ss", KIR_T_F64, kir_flt(k, 0.0, KIR_T_F64));
    l = kf_lw_loop(w, parent, "r", r->count, KIR_LOOP_SERIAL, &iv);
    idx = kir_add(k, kir_var(k, base), kf_red_off(w, r, kir_var(k, iv)));
    int d = kf_lw_local(w, l, "d", KIR_T_F64,
                        kir_bin(k, KIR_SUB, kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, x, idx)), kir_var(k, *mean)));
    kir_append(k, l, kir_assign(k, ss, kir_add(k, kir_var(k, ss), kir_mul(k, kir_var(k, d), kir_var(k, d)))));
    *var = kf_lw_local(w, parent, "var", KIR_T_F64,
                       kir_bin(k, KIR_DIV, kir_var(k, ss), kir_flt(k, (double)(r->count > 0 ? r->count : 1), KIR_T_F64)));
}

/* y[idx] = (x[idx] - mean) * rstd * w[c] + b[c] over the elements of one row / channel / group;
 * chan(i) gives the affine index of element i (NULL: no affine). */
typedef kir_expr *(*chan_fn)(kf_lw *w, const kir_expr *i, const void *ctx);

static void normalize(kf_lw *w, kir_stmt *parent, int x, int wt, int bs, int base, const kf_red *r,
                      int mean, int rstd, chan_fn chan, const void *ctx) {
    if (!kf_lw_out_live(w, 0)) return;
    kir_kernel *k = w->k;
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0));
    int iv;
    kir_stmt *l = kf_lw_loop(w, parent, "r", r->count, KIR_LOOP_SERIAL, &iv);
    int idx = kf_lw_local(w, l, "idx", KIR_T_I64, kir_add(k, kir_var(k, base), kf_red_off(w, r, kir_var(k, iv))));
    kir_expr *xv = kf_lw_cvt(k, t, kf_lw_load(w, x, kir_var(k, idx)));
    kir_expr *y = kir_mul(k, kir_bin(k, KIR_SUB, xv, kir_var(k, mean)), kir_var(k, rstd));
    if (wt >= 0 || bs >= 0) {
        int c = kf_lw_local(w, l, "c", KIR_T_I64, chan(w, kir_var(k, iv), ctx));
        if (wt >= 0) y = kir_mul(k, y, kf_lw_cvt(k, t, kf_lw_load(w, wt, kir_var(k, c))));
        if (bs >= 0) y = kir_add(k, y, kf_lw_cvt(k, t, kf_lw_load(w, bs, kir_var(k, c))));
    }
    kf_lw_put(w, l, 0, kir_var(k, idx), y);
}

/* ---- layer norm ---- */
static kir_expr *ln_chan(kf_lw *w, const kir_expr *i, const void *ctx) {
    (void)ctx;
    return kf_lw_dup(w, i);
}

static int build_layer_norm(kf_lw *w, kf_err *err) {
    kir_kernel *k = w->k;
    int x = kf_lw_arg_tensor(w->n, "input", 0);
    if (x < 0) return kf_lw_unsupported(err, w->n, "no input");
    int wt = kf_lw_arg_tensor(w->n, "weight", 2), bs = kf_lw_arg_tensor(w->n, "bias", 3);
    double eps = kf_lw_arg_num(w->n, "eps", 4, 1e-5);
    int64_t ns[KF_MAX_DIMS];
    int nn = kf_lw_arg_ints(w->n, "normalized_shape", 1, ns, KF_MAX_DIMS);
    const kf_tdesc *xd = kf_lw_desc(w, x);
    if (nn < 0 || nn > xd->ndim) return kf_lw_unsupported(err, w->n, "normalized_shape");
    int red[KF_MAX_DIMS] = {0};
    for (int j = xd->ndim - nn; j < xd->ndim; j++) red[j] = 1;
    kf_red r;
    kf_red_plan(&r, xd->shape, xd->ndim, red);
    int o;
    kir_stmt *outer = kf_lw_loop(w, NULL, "row", r.outer, KIR_LOOP_PARALLEL, &o);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kir_mul(k, kir_var(k, o), kf_lw_i(w, r.count)));
    int mean, var;
    stats(w, outer, x, base, &r, &mean, &var);
    int rstd = kf_lw_local(w, outer, "rstd", KIR_T_F64,
                           kir_un(k, KIR_RSQRT, kir_add(k, kir_var(k, var), kir_flt(k, eps, KIR_T_F64))));
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0) >= 0 ? kf_lw_out(w, 0) : x);
    int mf = kf_lw_local(w, outer, "meanf", t, kf_lw_cvt(k, t, kir_var(k, mean)));
    int rf = kf_lw_local(w, outer, "rstdf", t, kf_lw_cvt(k, t, kir_var(k, rstd)));
    normalize(w, outer, x, wt, bs, base, &r, mf, rf, ln_chan, NULL);
    kf_lw_put(w, outer, 1, kir_var(k, o), kir_var(k, mean));
    kf_lw_put(w, outer, 2, kir_var(k, o), kir_var(k, rstd));
    return 0;
}

/* ---- batch norm ---- */
typedef struct bn_args {
    int x, wt, bs, rm, rv;
    int training;
    double momentum, eps;
} bn_args;

static int bn_read(kf_lw *w, bn_args *a, kf_err *err) {
    const kf_node *n = w->n;
    const char *op = w->op;
    memset(a, 0, sizeof *a);
    a->x = kf_lw_arg_tensor(n, "input", 0);
    a->wt = kf_lw_arg_tensor(n, "weight", 1);
    a->bs = kf_lw_arg_tensor(n, "bias", 2);
    a->rm = kf_lw_arg_tensor(n, "running_mean", 3);
    a->rv = kf_lw_arg_tensor(n, "running_var", 4);
    const kf_arg *tr = kf_lw_arg(n, "training", 5);
    a->training = tr ? (int)tr->i : 1;
    if (strcmp(op, "_native_batch_norm_legit_no_training") == 0) a->training = 0;
    a->momentum = kf_lw_arg_num(n, "momentum", 6, 0.1);
    a->eps = kf_lw_arg_num(n, "eps", 7, 1e-5);
    if (a->x < 0) return kf_lw_unsupported(err, n, "no input");
    if (!a->training && (a->rm < 0 || a->rv < 0))
        return kf_lw_unsupported(err, n, "eval mode without running stats");
    return 0;
}

typedef struct bn_ctx { int c; } bn_ctx;

static kir_expr *bn_chan(kf_lw *w, const kir_expr *i, const void *ctx) {
    const bn_ctx *c = ctx;
    return kir_var(w->k, c->c);
}

static int build_batch_norm(kf_lw *w, kf_err *err) {
    bn_args a;
    int rc = bn_read(w, &a, err);
    if (rc) return rc;
    kir_kernel *k = w->k;
    const kf_tdesc *xd = kf_lw_desc(w, a.x);
    if (xd->ndim < 2) return kf_lw_unsupported(err, w->n, "input needs a channel dim");
    int64_t C = xd->shape[1], N = xd->shape[0], S = 1;
    for (int j = 2; j < xd->ndim; j++) S *= xd->shape[j];
    /* per channel: elements n * C * S + c * S + s; reduced (n, s) with strides (C*S, 1) */
    int64_t shape3[3] = {N, C, S};
    int red3[3] = {1, 0, 1};
    kf_red r;
    kf_red_plan(&r, shape3, 3, red3);
    int cv;
    kir_stmt *outer = kf_lw_loop(w, NULL, "c", C, KIR_LOOP_PARALLEL, &cv);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kir_mul(k, kir_var(k, cv), kf_lw_i(w, S)));
    int mean, var;
    if (a.training) {
        stats(w, outer, a.x, base, &r, &mean, &var);
    } else {
        mean = kf_lw_local(w, outer, "mean", KIR_T_F64, kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, a.rm, kir_var(k, cv))));
        var = kf_lw_local(w, outer, "var", KIR_T_F64, kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, a.rv, kir_var(k, cv))));
    }
    int rstd = kf_lw_local(w, outer, "rstd", KIR_T_F64,
                           kir_un(k, KIR_RSQRT, kir_add(k, kir_var(k, var), kir_flt(k, a.eps, KIR_T_F64))));
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0) >= 0 ? kf_lw_out(w, 0) : a.x);
    int mf = kf_lw_local(w, outer, "meanf", t, kf_lw_cvt(k, t, kir_var(k, mean)));
    int rf = kf_lw_local(w, outer, "rstdf", t, kf_lw_cvt(k, t, kir_var(k, rstd)));
    bn_ctx c = {cv};
    normalize(w, outer, a.x, a.wt, a.bs, base, &r, mf, rf, bn_chan, &c);
    if (w->stats_out) {
        kir_append(k, outer, kir_store(k, w->stats_kbuf[0], kir_var(k, cv), kir_var(k, mf)));
        kir_append(k, outer, kir_store(k, w->stats_kbuf[1], kir_var(k, cv), kir_var(k, rf)));
    }
    /* save_mean / save_invstd exist (non-empty) in training mode */
    if (kf_lw_out_live(w, 1) && kf_lw_numel(w, kf_lw_out(w, 1)) == C)
        kf_lw_put(w, outer, 1, kir_var(k, cv), kir_var(k, mean));
    if (kf_lw_out_live(w, 2) && kf_lw_numel(w, kf_lw_out(w, 2)) == C)
        kf_lw_put(w, outer, 2, kir_var(k, cv), kir_var(k, rstd));
    /* functional form: updated running stats (unbiased batch variance) */
    if (a.training && a.rm >= 0 && a.rv >= 0) {
        double m = a.momentum, cnt = (double)(N * S);
        kir_expr *rm = kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, a.rm, kir_var(k, cv)));
        kir_expr *nm = kir_add(k, kir_mul(k, rm, kir_flt(k, 1.0 - m, KIR_T_F64)),
                               kir_mul(k, kir_var(k, mean), kir_flt(k, m, KIR_T_F64)));
        kf_lw_put(w, outer, 3, kir_var(k, cv), nm);
        kir_expr *rv = kf_lw_cvt(k, KIR_T_F64, kf_lw_load(w, a.rv, kir_var(k, cv)));
        kir_expr *ub = kir_mul(k, kir_var(k, var), kir_flt(k, cnt > 1 ? cnt / (cnt - 1) : 1.0, KIR_T_F64));
        kir_expr *nv = kir_add(k, kir_mul(k, rv, kir_flt(k, 1.0 - m, KIR_T_F64)),
                               kir_mul(k, ub, kir_flt(k, m, KIR_T_F64)));
        kf_lw_put(w, outer, 4, kir_var(k, cv), nv);
    }
    return 0;
}

static int build_bn_no_stats(kf_lw *w, kf_err *err) {
    /* _native_batch_norm_legit.no_stats(input, weight, bias, training, momentum, eps) */
    const kf_arg *rm = kf_lw_arg(w->n, "running_mean", -1);
    if (rm) return build_batch_norm(w, err);
    kir_kernel *k = w->k;
    int x = kf_lw_arg_tensor(w->n, "input", 0);
    int wt = kf_lw_arg_tensor(w->n, "weight", 1), bs = kf_lw_arg_tensor(w->n, "bias", 2);
    double eps = kf_lw_arg_num(w->n, "eps", 5, 1e-5);
    if (x < 0) return kf_lw_unsupported(err, w->n, "no input");
    const kf_tdesc *xd = kf_lw_desc(w, x);
    if (xd->ndim < 2) return kf_lw_unsupported(err, w->n, "input needs a channel dim");
    int64_t C = xd->shape[1], N = xd->shape[0], S = 1;
    for (int j = 2; j < xd->ndim; j++) S *= xd->shape[j];
    int64_t shape3[3] = {N, C, S};
    int red3[3] = {1, 0, 1};
    kf_red r;
    kf_red_plan(&r, shape3, 3, red3);
    int cv;
    kir_stmt *outer = kf_lw_loop(w, NULL, "c", C, KIR_LOOP_PARALLEL, &cv);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kir_mul(k, kir_var(k, cv), kf_lw_i(w, S)));
    int mean, var;
    stats(w, outer, x, base, &r, &mean, &var);
    int rstd = kf_lw_local(w, outer, "rstd", KIR_T_F64,
                           kir_un(k, KIR_RSQRT, kir_add(k, kir_var(k, var), kir_flt(k, eps, KIR_T_F64))));
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0) >= 0 ? kf_lw_out(w, 0) : x);
    int mf = kf_lw_local(w, outer, "meanf", t, kf_lw_cvt(k, t, kir_var(k, mean)));
    int rf = kf_lw_local(w, outer, "rstdf", t, kf_lw_cvt(k, t, kir_var(k, rstd)));
    bn_ctx c = {cv};
    normalize(w, outer, x, wt, bs, base, &r, mf, rf, bn_chan, &c);
    kf_lw_put(w, outer, 1, kir_var(k, cv), kir_var(k, mean));
    kf_lw_put(w, outer, 2, kir_var(k, cv), kir_var(k, rstd));
    return 0;
}

/* ---- group norm ---- */
typedef struct gn_ctx { int64_t hw; int c0; } gn_ctx;

static kir_expr *gn_chan(kf_lw *w, const kir_expr *i, const void *ctx) {
    const gn_ctx *c = ctx;
    kir_kernel *k = w->k;
    /* channel = first channel of the group + i / hw */
    kir_expr *within = c->hw == 1 ? kf_lw_dup(w, i) : kir_bin(k, KIR_DIV, kf_lw_dup(w, i), kf_lw_i(w, c->hw));
    return kir_add(k, kir_var(k, c->c0), within);
}

static int build_group_norm(kf_lw *w, kf_err *err) {
    kir_kernel *k = w->k;
    int x = kf_lw_arg_tensor(w->n, "input", 0);
    if (x < 0) return kf_lw_unsupported(err, w->n, "no input");
    int wt = kf_lw_arg_tensor(w->n, "weight", 1), bs = kf_lw_arg_tensor(w->n, "bias", 2);
    const kf_tdesc *xd = kf_lw_desc(w, x);
    int64_t N = kf_lw_arg_int(w->n, "N", 3, xd->ndim > 0 ? xd->shape[0] : 1);
    int64_t C = kf_lw_arg_int(w->n, "C", 4, xd->ndim > 1 ? xd->shape[1] : 1);
    int64_t G = kf_lw_arg_int(w->n, "group", 6, kf_lw_arg_int(w->n, "num_groups", 1, 1));
    double eps = kf_lw_arg_num(w->n, "eps", 7, 1e-5);
    if (G < 1 || C % G) return kf_lw_unsupported(err, w->n, "channels not divisible by groups");
    int64_t numel = kf_tdesc_numel(xd);
    int64_t hw = (N > 0 && C > 0) ? numel / (N * C) : 1;
    int64_t cpg = C / G, count = cpg * hw;
    int64_t shape2[2] = {N * G, count};
    int red2[2] = {0, 1};
    kf_red r;
    kf_red_plan(&r, shape2, 2, red2);
    r.count = count;
    int gv;
    kir_stmt *outer = kf_lw_loop(w, NULL, "ng", N * G, KIR_LOOP_PARALLEL, &gv);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kir_mul(k, kir_var(k, gv), kf_lw_i(w, count)));
    int mean, var;
    stats(w, outer, x, base, &r, &mean, &var);
    int rstd = kf_lw_local(w, outer, "rstd", KIR_T_F64,
                           kir_un(k, KIR_RSQRT, kir_add(k, kir_var(k, var), kir_flt(k, eps, KIR_T_F64))));
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0) >= 0 ? kf_lw_out(w, 0) : x);
    int mf = kf_lw_local(w, outer, "meanf", t, kf_lw_cvt(k, t, kir_var(k, mean)));
    int rf = kf_lw_local(w, outer, "rstdf", t, kf_lw_cvt(k, t, kir_var(k, rstd)));
    /* first channel of this group: (ng % G) * cpg */
    int c0 = kf_lw_local(w, outer, "c0", KIR_T_I64,
                         kir_mul(k, kir_bin(k, KIR_MOD, kir_var(k, gv), kf_lw_i(w, G)), kf_lw_i(w, cpg)));
    gn_ctx c = {hw, c0};
    normalize(w, outer, x, wt, bs, base, &r, mf, rf, gn_chan, &c);
    kf_lw_put(w, outer, 1, kir_var(k, gv), kir_var(k, mean));
    kf_lw_put(w, outer, 2, kir_var(k, gv), kir_var(k, rstd));
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_norm[] = {
    KERN("native_layer_norm", build_layer_norm), KERN("layer_norm", build_layer_norm),
    KERN("native_batch_norm", build_batch_norm), KERN("batch_norm", build_batch_norm),
    KERN("_native_batch_norm_legit", build_bn_no_stats),
    KERN("_native_batch_norm_legit_functional", build_batch_norm),
    KERN("_native_batch_norm_legit_no_training", build_batch_norm),
    KERN("native_group_norm", build_group_norm), KERN("group_norm", build_group_norm),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
