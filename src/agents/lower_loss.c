/* lower_loss.c: losses that reach the graph as single ops: mse_loss, l1_loss, smooth_l1_loss,
 * huber_loss, binary_cross_entropy (log clamped at -100), binary_cross_entropy_with_logits,
 * kl_div, soft_margin_loss, and nll_loss_forward / nll_loss2d_forward (class weights,
 * ignore_index; outputs the loss and total_weight). Reduction none is elementwise (parallel);
 * mean and sum accumulate every term in double in one serial loop. */
#include <string.h>
#include "agents/lower.h"

enum { RED_NONE = 0, RED_MEAN = 1, RED_SUM = 2 };

typedef kir_expr *(*loss_term)(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw);

#define K (w->k)
#define D(e) kf_lw_dup(w, (e))
#define F(v) kir_flt(K, (v), KIR_T_F64)

static kir_expr *t_mse(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    kir_expr *d = kir_bin(K, KIR_SUB, x, y);
    return kir_mul(K, d, D(d));
}

static kir_expr *t_l1(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    return kir_un(K, KIR_ABS, kir_bin(K, KIR_SUB, x, y));
}

static kir_expr *t_smooth_l1(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    double beta = kf_lw_arg_num(w->n, "beta", 3, 1.0);
    kir_expr *d = kir_un(K, KIR_ABS, kir_bin(K, KIR_SUB, x, y));
    if (beta == 0.0) return d;
    kir_expr *quad = kir_bin(K, KIR_DIV, kir_mul(K, kir_mul(K, F(0.5), D(d)), D(d)), F(beta));
    return kir_select(K, kir_bin(K, KIR_LT, D(d), F(beta)), quad, kir_bin(K, KIR_SUB, D(d), F(0.5 * beta)));
}

static kir_expr *t_huber(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    double delta = kf_lw_arg_num(w->n, "delta", 3, 1.0);
    kir_expr *d = kir_un(K, KIR_ABS, kir_bin(K, KIR_SUB, x, y));
    kir_expr *quad = kir_mul(K, kir_mul(K, F(0.5), D(d)), D(d));
    kir_expr *lin = kir_mul(K, F(delta), kir_bin(K, KIR_SUB, D(d), F(0.5 * delta)));
    return kir_select(K, kir_bin(K, KIR_LT, d, F(delta)), quad, lin);
}

static kir_expr *t_bce(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    /* -(y * max(log x, -100) + (1 - y) * max(log(1 - x), -100)) */
    kir_expr *lx = kir_bin(K, KIR_MAX, kir_un(K, KIR_LOG, x), F(-100.0));
    kir_expr *l1x = kir_bin(K, KIR_MAX, kir_un(K, KIR_LOG, kir_bin(K, KIR_SUB, F(1.0), D(x))), F(-100.0));
    kir_expr *v = kir_add(K, kir_mul(K, y, lx), kir_mul(K, kir_bin(K, KIR_SUB, F(1.0), D(y)), l1x));
    v = kir_un(K, KIR_NEG, v);
    return wt ? kir_mul(K, v, wt) : v;
}

static kir_expr *t_bce_logits(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    /* (1 - y) x + lw (log1p(exp(-|x|)) + max(-x, 0)), lw = 1 + (pw - 1) y */
    kir_expr *sp = kir_add(K, kir_un(K, KIR_LOG1P, kir_un(K, KIR_EXP, kir_un(K, KIR_NEG, kir_un(K, KIR_ABS, D(x))))),
                           kir_bin(K, KIR_MAX, kir_un(K, KIR_NEG, D(x)), F(0.0)));
    if (pw) sp = kir_mul(K, sp, kir_add(K, F(1.0), kir_mul(K, kir_bin(K, KIR_SUB, pw, F(1.0)), D(y))));
    kir_expr *v = kir_add(K, kir_mul(K, kir_bin(K, KIR_SUB, F(1.0), y), x), sp);
    return wt ? kir_mul(K, v, wt) : v;
}

static kir_expr *t_kl_div(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    int log_target = (int)kf_lw_arg_int(w->n, "log_target", 3, 0);
    if (log_target) return kir_mul(K, kir_un(K, KIR_EXP, D(y)), kir_bin(K, KIR_SUB, y, x));
    /* xlogy(y, y) - y * x, with 0 * log 0 = 0 */
    kir_expr *ylogy = kir_select(K, kir_bin(K, KIR_EQ, D(y), F(0.0)), F(0.0), kir_mul(K, D(y), kir_un(K, KIR_LOG, D(y))));
    return kir_bin(K, KIR_SUB, ylogy, kir_mul(K, y, x));
}

static kir_expr *t_soft_margin(kf_lw *w, kir_expr *x, kir_expr *y, kir_expr *wt, kir_expr *pw) {
    return kir_un(K, KIR_LOG1P, kir_un(K, KIR_EXP, kir_un(K, KIR_NEG, kir_mul(K, y, x))));
}

typedef struct loss_def { const char *name; loss_term term; const char *target; } loss_def;

static const loss_def loss_defs[] = {
    {"mse_loss", t_mse, "target"}, {"l1_loss", t_l1, "target"},
    {"smooth_l1_loss", t_smooth_l1, "target"}, {"huber_loss", t_huber, "target"},
    {"binary_cross_entropy", t_bce, "target"},
    {"binary_cross_entropy_with_logits", t_bce_logits, "target"},
    {"kl_div", t_kl_div, "target"}, {"soft_margin_loss", t_soft_margin, "target"},
    {NULL, NULL, NULL}
};

static int build_pointwise_loss(kf_lw *w, kf_err *err) {
    const loss_def *def = NULL;
    for (const loss_def *d = loss_defs; d->name; d++)
        if (strcmp(d->name, w->op) == 0) def = d;
    int x = kf_lw_arg_tensor(w->n, "self", 0), y = kf_lw_arg_tensor(w->n, def ? def->target : "target", 1);
    if (!def || x < 0 || y < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    int wt = kf_lw_arg_tensor(w->n, "weight", -1), pw = kf_lw_arg_tensor(w->n, "pos_weight", -1);
    int64_t red = kf_lw_arg_int(w->n, "reduction", -1, RED_MEAN);
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *xd = kf_lw_desc(w, x);
    int64_t n = kf_tdesc_numel(xd);
    int i;
    kir_stmt *loop;
    int acc = -1;
    if (red == RED_NONE) {
        loop = kf_lw_loop(w, NULL, "i", n, KIR_LOOP_PARALLEL, &i);
    } else {
        int one;
        kir_stmt *single = kf_lw_loop(w, NULL, "one", 1, KIR_LOOP_SERIAL, &one);
        acc = kf_lw_local(w, single, "acc", KIR_T_F64, F(0.0));
        loop = kf_lw_loop(w, single, "i", n, KIR_LOOP_SERIAL, &i);
        kir_expr *total = kir_var(K, acc);
        if (red == RED_MEAN) total = kir_bin(K, KIR_DIV, total, F((double)n));
        kf_lw_put(w, single, 0, kf_lw_i(w, 0), total);
    }
    const int64_t *shape = xd->shape;
    kir_expr *xv = kf_lw_cvt(K, KIR_T_F64, kf_lw_load(w, x, kir_var(K, i)));
    kir_expr *yv = kf_lw_cvt(K, KIR_T_F64,
                             kf_lw_load(w, y, kf_lw_bcast_index(w, kir_var(K, i), shape, xd->ndim, kf_lw_desc(w, y))));
    int xl = kf_lw_local(w, loop, "x", KIR_T_F64, xv), yl = kf_lw_local(w, loop, "y", KIR_T_F64, yv);
    kir_expr *wv = NULL, *pv = NULL;
    if (wt >= 0)
        wv = kf_lw_cvt(K, KIR_T_F64, kf_lw_load(w, wt, kf_lw_bcast_index(w, kir_var(K, i), shape, xd->ndim, kf_lw_desc(w, wt))));
    if (pw >= 0)
        pv = kf_lw_cvt(K, KIR_T_F64, kf_lw_load(w, pw, kf_lw_bcast_index(w, kir_var(K, i), shape, xd->ndim, kf_lw_desc(w, pw))));
    kir_expr *term = def->term(w, kir_var(K, xl), kir_var(K, yl), wv, pv);
    if (red == RED_NONE) {
        kf_lw_put(w, loop, 0, kir_var(K, i), term);
    } else {
        kir_append(K, loop, kir_assign(K, acc, kir_add(K, kir_var(K, acc), term)));
    }
    return 0;
}

static int build_nll(kf_lw *w, kf_err *err) {
    int x = kf_lw_arg_tensor(w->n, "self", 0), tg = kf_lw_arg_tensor(w->n, "target", 1);
    int wt = kf_lw_arg_tensor(w->n, "weight", 2);
    int64_t red = kf_lw_arg_int(w->n, "reduction", 3, RED_MEAN);
    int64_t ignore = kf_lw_arg_int(w->n, "ignore_index", 4, -100);
    if (x < 0 || tg < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    const kf_tdesc *xd = kf_lw_desc(w, x);
    int64_t N = xd->ndim >= 2 ? xd->shape[0] : 1, C = xd->ndim >= 2 ? xd->shape[1] : (xd->ndim == 1 ? xd->shape[0] : 1);
    int64_t S = 1;
    for (int j = 2; j < xd->ndim; j++) S *= xd->shape[j];
    int64_t n = N * S;
    int i, acc = -1, tw = -1;
    kir_stmt *loop, *single = NULL;
    if (red == RED_NONE) {
        loop = kf_lw_loop(w, NULL, "i", n, KIR_LOOP_PARALLEL, &i);
    } else {
        int one;
        single = kf_lw_loop(w, NULL, "one", 1, KIR_LOOP_SERIAL, &one);
        acc = kf_lw_local(w, single, "acc", KIR_T_F64, F(0.0));
        tw = kf_lw_local(w, single, "tw", KIR_T_F64, F(0.0));
        loop = kf_lw_loop(w, single, "i", n, KIR_LOOP_SERIAL, &i);
    }
    int t = kf_lw_local(w, loop, "t", KIR_T_I64, kf_lw_cvt(K, KIR_T_I64, kf_lw_load(w, tg, kir_var(K, i))));
    kir_expr *keep = kir_bin(K, KIR_NE, kir_var(K, t), kf_lw_i(w, ignore));
    /* the class index used for loads: 0 when ignored, so every load stays in range */
    int tc = kf_lw_local(w, loop, "tc", KIR_T_I64, kir_select(K, keep, kir_var(K, t), kf_lw_i(w, 0)));
    kir_expr *wv = wt >= 0 ? kf_lw_cvt(K, KIR_T_F64, kf_lw_load(w, wt, kir_var(K, tc))) : F(1.0);
    int wl = kf_lw_local(w, loop, "w", KIR_T_F64, kir_select(K, kf_lw_dup(w, keep), wv, F(0.0)));
    /* x index: (n * C + t) * S + s with n = i / S, s = i % S */
    kir_expr *nn = S == 1 ? kir_var(K, i) : kir_bin(K, KIR_DIV, kir_var(K, i), kf_lw_i(w, S));
    kir_expr *ss = S == 1 ? kf_lw_i(w, 0) : kir_bin(K, KIR_MOD, kir_var(K, i), kf_lw_i(w, S));
    kir_expr *xi = kir_add(K, kir_mul(K, kir_add(K, kir_mul(K, nn, kf_lw_i(w, C)), kir_var(K, tc)), kf_lw_i(w, S)), ss);
    kir_expr *xv = kf_lw_cvt(K, KIR_T_F64, kf_lw_load(w, x, xi));
    kir_expr *loss = kir_select(K, kf_lw_dup(w, keep), kir_un(K, KIR_NEG, kir_mul(K, kir_var(K, wl), xv)), F(0.0));
    if (red == RED_NONE) {
        kf_lw_put(w, loop, 0, kir_var(K, i), loss);
        return 0;
    }
    kir_append(K, loop, kir_assign(K, acc, kir_add(K, kir_var(K, acc), loss)));
    kir_append(K, loop, kir_assign(K, tw, kir_add(K, kir_var(K, tw), kir_var(K, wl))));
    kir_expr *total = kir_var(K, acc);
    if (red == RED_MEAN) total = kir_bin(K, KIR_DIV, total, kir_var(K, tw));
    kf_lw_put(w, single, 0, kf_lw_i(w, 0), total);
    kf_lw_put(w, single, 1, kf_lw_i(w, 0), kir_var(K, tw));
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_loss[] = {
    KERN("mse_loss", build_pointwise_loss), KERN("l1_loss", build_pointwise_loss),
    KERN("smooth_l1_loss", build_pointwise_loss), KERN("huber_loss", build_pointwise_loss),
    KERN("binary_cross_entropy", build_pointwise_loss),
    KERN("binary_cross_entropy_with_logits", build_pointwise_loss),
    KERN("kl_div", build_pointwise_loss), KERN("soft_margin_loss", build_pointwise_loss),
    KERN("nll_loss_forward", build_nll), KERN("nll_loss2d_forward", build_nll), KERN("nll_loss", build_nll),
    KERN("nll_loss_nd", build_nll), KERN("nll_loss2d", build_nll),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
