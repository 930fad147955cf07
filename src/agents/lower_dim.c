/* lower_dim.c: ops along one dim: softmax / _softmax and log_softmax / _log_softmax (stable:
 * the max is subtracted, the sum accumulated in double), cumsum and cumprod (a serial scan
 * accumulated in double, like torch's CPU kernels). One kernel: parallel over the positions
 * outside the dim, serial along it. */
#include <math.h>
#include <string.h>
#include "agents/lower.h"

static int dim_plan(kf_lw *w, int in, int pos, kf_red *r) {
    const kf_tdesc *d = kf_lw_desc(w, in);
    int red[KF_MAX_DIMS] = {0};
    if (d->ndim > 0) red[kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", pos, -1), d->ndim)] = 1;
    kf_red_plan(r, d->shape, d->ndim, red);
    return 0;
}

static int input_of(const kf_lw *w) {
    int in = kf_lw_arg_tensor(w->n, "self", 0);
    return in >= 0 ? in : kf_lw_arg_tensor(w->n, "input", 0);
}

/* A serial loop along the dim; *idx gets a local with the element's flat index. */
static kir_stmt *along(kf_lw *w, kir_stmt *parent, const kf_red *r, int base, int *idx) {
    int iv;
    kir_stmt *loop = kf_lw_loop(w, parent, "r", r->count, KIR_LOOP_SERIAL, &iv);
    kir_expr *ie = kir_var(w->k, iv);
    *idx = kf_lw_local(w, loop, "idx", KIR_T_I64, kir_add(w->k, kir_var(w->k, base), kf_red_off(w, r, ie)));
    return loop;
}

static int build_softmax(kf_lw *w, kf_err *err) {
    int in = input_of(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    int log_form = strstr(w->op, "log_softmax") != NULL;
    kir_kernel *k = w->k;
    kf_red r;
    dim_plan(w, in, 1, &r);
    kir_type t = kf_lw_type(w, kf_lw_out(w, 0));
    if (t != KIR_T_F32 && t != KIR_T_F64) t = KIR_T_F32;
    int o;
    kir_stmt *outer = kf_lw_loop(w, NULL, "o", r.outer, KIR_LOOP_PARALLEL, &o);
    kir_expr *ov = kir_var(k, o);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kf_red_base(w, &r, ov));
    int m = kf_lw_local(w, outer, "m", t, kir_flt(k, -INFINITY, t));
    int idx;
    kir_stmt *l1 = along(w, outer, &r, base, &idx);
    kir_expr *x1 = kf_lw_cvt(k, t, kf_lw_load(w, in, kir_var(k, idx)));
    kir_append(k, l1, kir_assign(k, m, kir_bin(k, KIR_MAX, kir_var(k, m), x1)));
    int s = kf_lw_local(w, outer, "s", KIR_T_F64, kir_flt(k, 0.0, KIR_T_F64));
    kir_stmt *l2 = along(w, outer, &r, base, &idx);
    kir_expr *x2 = kf_lw_cvt(k, t, kf_lw_load(w, in, kir_var(k, idx)));
    kir_expr *e2 = kir_un(k, KIR_EXP, kir_bin(k, KIR_SUB, x2, kir_var(k, m)));
    kir_append(k, l2, kir_assign(k, s, kir_add(k, kir_var(k, s), kf_lw_cvt(k, KIR_T_F64, e2))));
    int ls = -1;
    if (log_form) ls = kf_lw_local(w, outer, "ls", t, kf_lw_cvt(k, t, kir_un(k, KIR_LOG, kir_var(k, s))));
    kir_stmt *l3 = along(w, outer, &r, base, &idx);
    kir_expr *x3 = kf_lw_cvt(k, t, kf_lw_load(w, in, kir_var(k, idx)));
    kir_expr *d3 = kir_bin(k, KIR_SUB, x3, kir_var(k, m));
    kir_expr *y;
    if (log_form)
        y = kir_bin(k, KIR_SUB, d3, kir_var(k, ls));
    else
        y = kf_lw_cvt(k, t, kir_bin(k, KIR_DIV, kf_lw_cvt(k, KIR_T_F64, kir_un(k, KIR_EXP, d3)), kir_var(k, s)));
    kf_lw_put(w, l3, 0, kir_var(k, idx), y);
    return 0;
}

static int build_cum(kf_lw *w, kf_err *err) {
    int in = input_of(w);
    if (in < 0) return kf_lw_unsupported(err, w->n, "no input");
    if (!kf_lw_out_live(w, 0)) return 0;
    int prod = strcmp(w->op, "cumprod") == 0;
    kir_kernel *k = w->k;
    kf_red r;
    dim_plan(w, in, 1, &r);
    kir_type at = kf_lw_acc_type(kf_lw_type(w, kf_lw_out(w, 0)));
    int o;
    kir_stmt *outer = kf_lw_loop(w, NULL, "o", r.outer, KIR_LOOP_PARALLEL, &o);
    int base = kf_lw_local(w, outer, "base", KIR_T_I64, kf_red_base(w, &r, kir_var(k, o)));
    kir_expr *init = at == KIR_T_F64 ? kir_flt(k, prod ? 1.0 : 0.0, at) : kir_int(k, prod ? 1 : 0);
    int acc = kf_lw_local(w, outer, "acc", at, init);
    int idx;
    kir_stmt *l = along(w, outer, &r, base, &idx);
    kir_expr *x = kf_lw_cvt(k, at, kf_lw_load(w, in, kir_var(k, idx)));
    kir_append(k, l, kir_assign(k, acc, kir_bin(k, prod ? KIR_MUL : KIR_ADD, kir_var(k, acc), x)));
    kf_lw_put(w, l, 0, kir_var(k, idx), kir_var(k, acc));
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_dim[] = {
    KERN("softmax", build_softmax), KERN("_softmax", build_softmax),
    KERN("log_softmax", build_softmax), KERN("_log_softmax", build_softmax),
    KERN("special_softmax", build_softmax), KERN("special_log_softmax", build_softmax),
    KERN("cumsum", build_cum), KERN("cumprod", build_cum),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
