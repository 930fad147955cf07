/* lower_misc.c: ops that make tensors from constants (full, zeros, ones, *_like, new_*,
 * scalar_tensor, arange, iota, zero), ops whose output needs storage but no kernel (empty and
 * friends), and native_dropout when it is the identity (p = 0 or not training). */
#include <string.h>
#include "agents/lower.h"

static kir_expr *const_of(kf_lw *w, kir_type t, double v) {
    if (t == KIR_T_F32 || t == KIR_T_F64) return kir_flt(w->k, v, t);
    if (t == KIR_T_BOOL) return kf_lw_cvt(w->k, KIR_T_BOOL, kir_int(w->k, v != 0.0));
    return kir_int(w->k, (int64_t)v);
}

static int fill_value(const kf_lw *w, double *v) {
    const char *op = w->op;
    if (strstr(op, "zero")) { *v = 0.0; return 0; }
    if (strstr(op, "ones")) { *v = 1.0; return 0; }
    const kf_arg *a = kf_lw_arg(w->n, "fill_value", -1);
    if (!a) a = kf_lw_arg(w->n, "s", 0);
    if (!a || (a->kind != KF_ARG_INT && a->kind != KF_ARG_FLOAT && a->kind != KF_ARG_BOOL)) return -1;
    *v = a->kind == KF_ARG_FLOAT ? a->f : (double)a->i;
    return 0;
}

static int build_const(kf_lw *w, kf_err *err) {
    double v;
    if (fill_value(w, &v)) return kf_lw_unsupported(err, w->n, "no fill value");
    if (!kf_lw_out_live(w, 0)) return 0;
    int out = kf_lw_out(w, 0);
    int i;
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_lw_numel(w, out), KIR_LOOP_PARALLEL, &i);
    kf_lw_put(w, loop, 0, kir_var(w->k, i), const_of(w, kf_lw_type(w, out), v));
    return 0;
}

static int build_arange(kf_lw *w, kf_err *err) {
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_arg *s = kf_lw_arg(w->n, "start", -1), *e = kf_lw_arg(w->n, "end", -1);
    double start = s ? kf_lw_arg_num(w->n, "start", -1, 0.0) : 0.0;
    double step = kf_lw_arg_num(w->n, "step", -1, 1.0);
    if (!e && strcmp(w->op, "iota") != 0) return kf_lw_unsupported(err, w->n, "no end");
    int out = kf_lw_out(w, 0);
    kir_type t = kf_lw_type(w, out);
    int i;
    kir_kernel *k = w->k;
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_lw_numel(w, out), KIR_LOOP_PARALLEL, &i);
    kir_expr *v;
    if (t == KIR_T_F32 || t == KIR_T_F64)
        v = kir_add(k, kir_flt(k, start, KIR_T_F64), kir_mul(k, kir_cast(k, KIR_T_F64, kir_var(k, i)), kir_flt(k, step, KIR_T_F64)));
    else
        v = kir_add(k, kir_int(k, (int64_t)start), kir_mul(k, kir_var(k, i), kir_int(k, (int64_t)step)));
    kf_lw_put(w, loop, 0, kir_var(k, i), v);
    return 0;
}

static int build_native_dropout(kf_lw *w, kf_err *err) {
    double p = kf_lw_arg_num(w->n, "p", 1, 0.0);
    const kf_arg *t = kf_lw_arg(w->n, "train", 2);
    int train = (t && (t->kind == KF_ARG_BOOL || t->kind == KF_ARG_INT)) ? (int)t->i : 1;
    if (p != 0.0 && train) return kf_lw_unsupported(err, w->n, "random dropout in training mode cannot be verified");
    int x = kf_lw_arg_tensor(w->n, "input", 0);
    if (x < 0) return kf_lw_unsupported(err, w->n, "no input");
    int i;
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_lw_numel(w, x), KIR_LOOP_PARALLEL, &i);
    kf_lw_put(w, loop, 0, kir_var(w->k, i), kf_lw_load(w, x, kir_var(w->k, i)));
    if (kf_lw_out_live(w, 1)) kf_lw_put(w, loop, 1, kir_var(w->k, i), kf_lw_cvt(w->k, KIR_T_BOOL, kir_int(w->k, 1)));
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}
#define NONE(nm) {nm, KF_LOP_NONE, NULL, {NULL}, 0, 0, NULL, NULL}

const kf_lop kf_lops_misc[] = {
    KERN("full", build_const), KERN("zeros", build_const), KERN("ones", build_const),
    KERN("full_like", build_const), KERN("zeros_like", build_const), KERN("ones_like", build_const),
    KERN("new_full", build_const), KERN("new_zeros", build_const), KERN("new_ones", build_const),
    KERN("scalar_tensor", build_const), KERN("zero", build_const), KERN("arange", build_arange),
    KERN("iota", build_arange),
    NONE("empty"), NONE("empty_like"), NONE("new_empty"), NONE("empty_strided"),
    NONE("new_empty_strided"),
    {"native_dropout", KF_LOP_KERNEL, NULL, {NULL}, 0, 0, build_native_dropout, NULL},
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
