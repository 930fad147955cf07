/* lower_elementwise.c: elementwise ATen ops (unary, binary, ternary, casts): one emitter per
 * op giving the output element from the operand elements, the operand typing rules (like
 * torch: comparisons yield bool, int stays int, f32 stays f32), and the generic kernel that
 * runs an emitter over the output with numpy broadcasting of the operands. */
#include <math.h>
#include <string.h>
#include "agents/lower.h"

#define X(i) kir_expr_clone(k, in[i])
#define C(v) kf_lw_const(k, (v), in[0])
#define UN(op, a) kir_un(k, (op), (a))
#define BIN(op, a, b) kir_bin(k, (op), (a), (b))

static double num(const kf_node *n, const char *name, double dflt) {
    return kf_lw_arg_num(n, name, -1, dflt);
}

static int is_flt(const kir_expr *e) { return e && (e->type == KIR_T_F32 || e->type == KIR_T_F64); }

/* ---- unary ---- */
static kir_expr *ew_relu(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MAX, X(0), C(0)); }
static kir_expr *ew_sigmoid(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_SIGMOID, X(0)); }
static kir_expr *ew_tanh(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_TANH, X(0)); }
static kir_expr *ew_exp(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_EXP, X(0)); }
static kir_expr *ew_expm1(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_EXPM1, X(0)); }
static kir_expr *ew_log(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_LOG, X(0)); }
static kir_expr *ew_log1p(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_LOG1P, X(0)); }
static kir_expr *ew_sqrt(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_SQRT, X(0)); }
static kir_expr *ew_rsqrt(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_RSQRT, X(0)); }
static kir_expr *ew_abs(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_ABS, X(0)); }
static kir_expr *ew_neg(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_NEG, X(0)); }
static kir_expr *ew_recip(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_RECIP, X(0)); }
static kir_expr *ew_erf(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_ERF, X(0)); }
static kir_expr *ew_sign(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_SIGN, X(0)); }
static kir_expr *ew_sin(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_SIN, X(0)); }
static kir_expr *ew_cos(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_COS, X(0)); }
static kir_expr *ew_tan(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_DIV, UN(KIR_SIN, X(0)), UN(KIR_COS, X(0)));
}
static kir_expr *ew_floor(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_FLOOR, X(0)); }
static kir_expr *ew_ceil(kir_kernel *k, const kf_node *n, kir_expr **in) { return UN(KIR_CEIL, X(0)); }
static kir_expr *ew_round(kir_kernel *k, const kf_node *n, kir_expr **in) {
    if (kf_lw_arg_int(n, "decimals", -1, 0) != 0) return NULL;
    return UN(KIR_ROUND, X(0));
}
static kir_expr *trunc_of(kir_kernel *k, kir_expr *a) {
    kir_expr *b = kir_expr_clone(k, a), *c = kir_expr_clone(k, a);
    return kir_select(k, BIN(KIR_GE, a, kf_lw_const(k, 0, b)), UN(KIR_FLOOR, b), UN(KIR_CEIL, c));
}
static kir_expr *ew_trunc(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return is_flt(in[0]) ? trunc_of(k, X(0)) : X(0);
}
static kir_expr *ew_frac(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_SUB, X(0), trunc_of(k, X(0)));
}
static kir_expr *ew_square(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MUL, X(0), X(0)); }
static kir_expr *ew_log2(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_MUL, UN(KIR_LOG, X(0)), C(1.0 / M_LN2));
}
static kir_expr *ew_log10(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_MUL, UN(KIR_LOG, X(0)), C(1.0 / M_LN10));
}
static kir_expr *ew_exp2(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_POW, C(2.0), X(0)); }
static kir_expr *ew_sinh(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_MUL, BIN(KIR_SUB, UN(KIR_EXP, X(0)), UN(KIR_EXP, UN(KIR_NEG, X(0)))), C(0.5));
}
static kir_expr *ew_cosh(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_MUL, BIN(KIR_ADD, UN(KIR_EXP, X(0)), UN(KIR_EXP, UN(KIR_NEG, X(0)))), C(0.5));
}

static kir_expr *ew_gelu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    const kf_arg *a = kf_lw_arg(n, "approximate", -1);
    int tanh_form = a && a->kind == KF_ARG_STR && a->s && strcmp(a->s, "tanh") == 0;
    if (a && a->kind == KF_ARG_STR && a->s && !tanh_form && strcmp(a->s, "none") != 0) return NULL;
    kir_expr *inner;
    if (tanh_form) {
        /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
        kir_expr *x3 = BIN(KIR_MUL, BIN(KIR_MUL, X(0), X(0)), X(0));
        kir_expr *t = BIN(KIR_MUL, C(0.7978845608028654),
                          BIN(KIR_ADD, X(0), BIN(KIR_MUL, C(0.044715), x3)));
        inner = UN(KIR_TANH, t);
    } else {
        inner = UN(KIR_ERF, BIN(KIR_MUL, X(0), C(M_SQRT1_2)));
    }
    return BIN(KIR_MUL, BIN(KIR_MUL, X(0), C(0.5)), BIN(KIR_ADD, C(1.0), inner));
}

static kir_expr *ew_silu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_DIV, X(0), BIN(KIR_ADD, C(1.0), UN(KIR_EXP, UN(KIR_NEG, X(0)))));
}

static kir_expr *ew_elu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double alpha = num(n, "alpha", 1.0), scale = num(n, "scale", 1.0), iscale = num(n, "input_scale", 1.0);
    kir_expr *neg = BIN(KIR_MUL, UN(KIR_EXPM1, BIN(KIR_MUL, X(0), C(iscale))), C(alpha * scale));
    kir_expr *pos = BIN(KIR_MUL, X(0), C(scale));
    return kir_select(k, BIN(KIR_LE, X(0), C(0)), neg, pos);
}

static kir_expr *ew_selu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
    kir_expr *neg = BIN(KIR_MUL, UN(KIR_EXPM1, X(0)), C(alpha * scale));
    return kir_select(k, BIN(KIR_LE, X(0), C(0)), neg, BIN(KIR_MUL, X(0), C(scale)));
}

static kir_expr *ew_celu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double alpha = num(n, "alpha", 1.0);
    kir_expr *neg = BIN(KIR_MUL, UN(KIR_EXPM1, BIN(KIR_DIV, X(0), C(alpha))), C(alpha));
    return kir_select(k, BIN(KIR_LE, X(0), C(0)), neg, X(0));
}

static kir_expr *ew_hardtanh(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double lo = num(n, "min_val", -1.0), hi = num(n, "max_val", 1.0);
    return BIN(KIR_MIN, BIN(KIR_MAX, X(0), C(lo)), C(hi));
}

static kir_expr *ew_softplus(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double beta = num(n, "beta", 1.0), th = num(n, "threshold", 20.0);
    kir_expr *bx = BIN(KIR_MUL, X(0), C(beta));
    kir_expr *soft = BIN(KIR_DIV, UN(KIR_LOG1P, UN(KIR_EXP, BIN(KIR_MUL, X(0), C(beta)))), C(beta));
    return kir_select(k, BIN(KIR_GT, bx, C(th)), X(0), soft);
}

static kir_expr *ew_leaky_relu(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double s = num(n, "negative_slope", 0.01);
    return kir_select(k, BIN(KIR_GT, X(0), C(0)), X(0), BIN(KIR_MUL, X(0), C(s)));
}

static kir_expr *ew_threshold(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double th = num(n, "threshold", 0.0), v = num(n, "value", 0.0);
    return kir_select(k, BIN(KIR_LE, X(0), C(th)), C(v), X(0));
}

static kir_expr *ew_hardshrink(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double l = num(n, "lambd", 0.5);
    kir_expr *inside = BIN(KIR_AND, BIN(KIR_GE, X(0), C(-l)), BIN(KIR_LE, X(0), C(l)));
    return kir_select(k, inside, C(0), X(0));
}

static kir_expr *ew_softshrink(kir_kernel *k, const kf_node *n, kir_expr **in) {
    double l = num(n, "lambd", 0.5);
    kir_expr *below = kir_select(k, BIN(KIR_LT, X(0), C(-l)), BIN(KIR_ADD, X(0), C(l)), C(0));
    return kir_select(k, BIN(KIR_GT, X(0), C(l)), BIN(KIR_SUB, X(0), C(l)), below);
}

static kir_expr *relu6_of(kir_kernel *k, kir_expr **in) {
    return BIN(KIR_MIN, BIN(KIR_MAX, BIN(KIR_ADD, X(0), C(3.0)), C(0)), C(6.0));
}
static kir_expr *ew_hardsigmoid(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_DIV, relu6_of(k, in), C(6.0));
}
static kir_expr *ew_hardswish(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_DIV, BIN(KIR_MUL, X(0), relu6_of(k, in)), C(6.0));
}

static kir_expr *ew_mish(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_MUL, X(0), UN(KIR_TANH, UN(KIR_LOG1P, UN(KIR_EXP, X(0)))));
}

static kir_expr *ew_log_sigmoid(kir_kernel *k, const kf_node *n, kir_expr **in) {
    /* min(x, 0) - log1p(exp(-|x|)) */
    return BIN(KIR_SUB, BIN(KIR_MIN, X(0), C(0)), UN(KIR_LOG1P, UN(KIR_EXP, UN(KIR_NEG, UN(KIR_ABS, X(0))))));
}

static kir_expr *ew_clamp(kir_kernel *k, const kf_node *n, kir_expr **in) {
    kir_expr *e = X(0);
    if (in[1]) e = BIN(KIR_MAX, e, X(1));
    if (in[2]) e = BIN(KIR_MIN, e, X(2));
    return e;
}
static kir_expr *ew_clamp_min(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MAX, X(0), X(1)); }
static kir_expr *ew_clamp_max(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MIN, X(0), X(1)); }

static kir_expr *ew_pow(kir_kernel *k, const kf_node *n, kir_expr **in) {
    const kir_expr *e = in[1];
    if (e && (e->kind == KIR_E_CONST_F || e->kind == KIR_E_CONST_I) && is_flt(in[0])) {
        double p = e->kind == KIR_E_CONST_F ? e->fval : (double)e->ival;
        /* torch's fast paths for common exponents */
        if (p == 1.0) return X(0);
        if (p == 2.0) return BIN(KIR_MUL, X(0), X(0));
        if (p == 3.0) return BIN(KIR_MUL, BIN(KIR_MUL, X(0), X(0)), X(0));
        if (p == 0.5) return UN(KIR_SQRT, X(0));
        if (p == -0.5) return UN(KIR_RSQRT, X(0));
        if (p == -1.0) return UN(KIR_RECIP, X(0));
        if (p == -2.0) return UN(KIR_RECIP, BIN(KIR_MUL, X(0), X(0)));
    }
    return BIN(KIR_POW, X(0), X(1));
}

static kir_expr *ew_identity(kir_kernel *k, const kf_node *n, kir_expr **in) { return X(0); }
static kir_expr *ew_not(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return UN(KIR_NOT, kf_lw_cvt(k, KIR_T_BOOL, X(0)));
}
static kir_expr *ew_isnan(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return is_flt(in[0]) ? UN(KIR_ISNAN, X(0)) : kir_int(k, 0);
}
/* inf - inf is NaN, finite - finite is 0 */
static kir_expr *ew_isinf(kir_kernel *k, const kf_node *n, kir_expr **in) {
    if (!is_flt(in[0])) return kir_int(k, 0);
    return BIN(KIR_AND, UN(KIR_ISNAN, BIN(KIR_SUB, X(0), X(0))), UN(KIR_NOT, UN(KIR_ISNAN, X(0))));
}
static kir_expr *ew_isfinite(kir_kernel *k, const kf_node *n, kir_expr **in) {
    if (!is_flt(in[0])) return kir_int(k, 1);
    return UN(KIR_NOT, UN(KIR_ISNAN, BIN(KIR_SUB, X(0), X(0))));
}

/* ---- binary ---- */
static kir_expr *scaled(kir_kernel *k, kir_expr *e, double alpha) {
    return alpha == 1.0 ? e : BIN(KIR_MUL, e, kf_lw_const(k, alpha, e));
}
static kir_expr *ew_add(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_ADD, X(0), scaled(k, X(1), num(n, "alpha", 1.0)));
}
static kir_expr *ew_sub(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_SUB, X(0), scaled(k, X(1), num(n, "alpha", 1.0)));
}
static kir_expr *ew_rsub(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_SUB, X(1), scaled(k, X(0), num(n, "alpha", 1.0)));
}
static kir_expr *ew_mul(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MUL, X(0), X(1)); }
static kir_expr *ew_div(kir_kernel *k, const kf_node *n, kir_expr **in) {
    const kf_arg *m = kf_lw_arg(n, "rounding_mode", -1);
    const char *mode = (m && m->kind == KF_ARG_STR) ? m->s : NULL;
    kir_expr *a = X(0), *b = X(1);
    if (!is_flt(a) && !is_flt(b) && mode) {
        /* integer division: compute in double, then round like torch */
        a = kir_cast(k, KIR_T_F64, a);
        b = kir_cast(k, KIR_T_F64, b);
    }
    kir_expr *q = BIN(KIR_DIV, a, b);
    if (!mode || strcmp(mode, "none") == 0 || strcmp(mode, "true") == 0) return q;
    if (strcmp(mode, "trunc") == 0) return trunc_of(k, q);
    if (strcmp(mode, "floor") == 0) return UN(KIR_FLOOR, q);
    return NULL;
}
static kir_expr *ew_floor_divide(kir_kernel *k, const kf_node *n, kir_expr **in) {
    kir_expr *a = X(0), *b = X(1);
    if (!is_flt(a) && !is_flt(b)) {
        a = kir_cast(k, KIR_T_F64, a);
        b = kir_cast(k, KIR_T_F64, b);
    }
    return UN(KIR_FLOOR, BIN(KIR_DIV, a, b));
}
static kir_expr *ew_fmod(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_FMOD, X(0), X(1)); }
static kir_expr *ew_remainder(kir_kernel *k, const kf_node *n, kir_expr **in) {
    /* m = fmod(a, b); m != 0 && (m < 0) != (b < 0) ? m + b : m */
    kir_expr *m = BIN(KIR_FMOD, X(0), X(1));
    kir_expr *fix = BIN(KIR_AND, BIN(KIR_NE, kir_expr_clone(k, m), C(0)),
                        BIN(KIR_NE, BIN(KIR_LT, kir_expr_clone(k, m), C(0)), BIN(KIR_LT, X(1), C(0))));
    return kir_select(k, fix, BIN(KIR_ADD, kir_expr_clone(k, m), X(1)), m);
}
static kir_expr *ew_maximum(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MAX, X(0), X(1)); }
static kir_expr *ew_minimum(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_MIN, X(0), X(1)); }
static kir_expr *ew_fmax(kir_kernel *k, const kf_node *n, kir_expr **in) {
    if (!is_flt(in[0])) return BIN(KIR_MAX, X(0), X(1));
    return kir_select(k, UN(KIR_ISNAN, X(0)), X(1),
                      kir_select(k, UN(KIR_ISNAN, X(1)), X(0), BIN(KIR_MAX, X(0), X(1))));
}
static kir_expr *ew_fmin(kir_kernel *k, const kf_node *n, kir_expr **in) {
    if (!is_flt(in[0])) return BIN(KIR_MIN, X(0), X(1));
    return kir_select(k, UN(KIR_ISNAN, X(0)), X(1),
                      kir_select(k, UN(KIR_ISNAN, X(1)), X(0), BIN(KIR_MIN, X(0), X(1))));
}
static kir_expr *ew_eq(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_EQ, X(0), X(1)); }
static kir_expr *ew_ne(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_NE, X(0), X(1)); }
static kir_expr *ew_lt(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_LT, X(0), X(1)); }
static kir_expr *ew_le(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_LE, X(0), X(1)); }
static kir_expr *ew_gt(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_GT, X(0), X(1)); }
static kir_expr *ew_ge(kir_kernel *k, const kf_node *n, kir_expr **in) { return BIN(KIR_GE, X(0), X(1)); }
static kir_expr *ew_and(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_AND, kf_lw_cvt(k, KIR_T_BOOL, X(0)), kf_lw_cvt(k, KIR_T_BOOL, X(1)));
}
static kir_expr *ew_or(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_OR, kf_lw_cvt(k, KIR_T_BOOL, X(0)), kf_lw_cvt(k, KIR_T_BOOL, X(1)));
}
static kir_expr *ew_xor(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_NE, kf_lw_cvt(k, KIR_T_BOOL, X(0)), kf_lw_cvt(k, KIR_T_BOOL, X(1)));
}
static kir_expr *ew_bool_only(kir_kernel *k, kir_binop op, kir_expr **in) {
    if (in[0]->type != KIR_T_BOOL || in[1]->type != KIR_T_BOOL) return NULL;
    return BIN(op, X(0), X(1));
}
static kir_expr *ew_bitwise_and(kir_kernel *k, const kf_node *n, kir_expr **in) { return ew_bool_only(k, KIR_AND, in); }
static kir_expr *ew_bitwise_or(kir_kernel *k, const kf_node *n, kir_expr **in) { return ew_bool_only(k, KIR_OR, in); }
static kir_expr *ew_bitwise_xor(kir_kernel *k, const kf_node *n, kir_expr **in) { return ew_bool_only(k, KIR_NE, in); }
static kir_expr *ew_bitwise_not(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return in[0]->type == KIR_T_BOOL ? UN(KIR_NOT, X(0)) : NULL;
}
static kir_expr *ew_xlogy(kir_kernel *k, const kf_node *n, kir_expr **in) {
    /* NaN y -> NaN; x == 0 -> 0; else x * log(y) */
    kir_expr *v = kir_select(k, BIN(KIR_EQ, X(0), C(0)), C(0), BIN(KIR_MUL, X(0), UN(KIR_LOG, X(1))));
    return kir_select(k, UN(KIR_ISNAN, X(1)), X(1), v);
}
static kir_expr *ew_hypot(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return UN(KIR_SQRT, BIN(KIR_ADD, BIN(KIR_MUL, X(0), X(0)), BIN(KIR_MUL, X(1), X(1))));
}
static kir_expr *ew_lerp(kir_kernel *k, const kf_node *n, kir_expr **in) {
    /* w < 0.5 ? a + w (b - a) : b - (b - a) (1 - w) */
    kir_expr *lo = BIN(KIR_ADD, X(0), BIN(KIR_MUL, X(2), BIN(KIR_SUB, X(1), X(0))));
    kir_expr *hi = BIN(KIR_SUB, X(1), BIN(KIR_MUL, BIN(KIR_SUB, X(1), X(0)), BIN(KIR_SUB, C(1.0), X(2))));
    return kir_select(k, BIN(KIR_LT, UN(KIR_ABS, X(2)), C(0.5)), lo, hi);
}
static kir_expr *ew_addcmul(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_ADD, X(0), scaled(k, BIN(KIR_MUL, X(1), X(2)), num(n, "value", 1.0)));
}
static kir_expr *ew_addcdiv(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return BIN(KIR_ADD, X(0), scaled(k, BIN(KIR_DIV, X(1), X(2)), num(n, "value", 1.0)));
}

/* ---- ternary / selection ---- */
static kir_expr *ew_where(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return kir_select(k, kf_lw_cvt(k, KIR_T_BOOL, X(0)), X(1), X(2));
}
static kir_expr *ew_masked_fill(kir_kernel *k, const kf_node *n, kir_expr **in) {
    return kir_select(k, kf_lw_cvt(k, KIR_T_BOOL, X(1)), X(2), X(0));
}

#define U(nm, f) {nm, KF_LOP_EW, f, {"self"}, KF_EWT_OUT, 0, NULL, NULL}
#define B(nm, f) {nm, KF_LOP_EW, f, {"self", "other"}, KF_EWT_OUT, 0, NULL, NULL}
#define CMP(nm, f) {nm, KF_LOP_EW, f, {"self", "other"}, KF_EWT_PROMOTE, 0, NULL, NULL}
#define OWN1(nm, f, a) {nm, KF_LOP_EW, f, {a}, KF_EWT_OWN, 1u, NULL, NULL}
#define OWN2(nm, f) {nm, KF_LOP_EW, f, {"self", "other"}, KF_EWT_OWN, 3u, NULL, NULL}

const kf_lop kf_lops_elementwise[] = {
    U("relu", ew_relu), U("sigmoid", ew_sigmoid), U("tanh", ew_tanh), U("exp", ew_exp),
    U("expm1", ew_expm1), U("log", ew_log), U("log1p", ew_log1p), U("log2", ew_log2),
    U("log10", ew_log10), U("exp2", ew_exp2), U("sqrt", ew_sqrt), U("rsqrt", ew_rsqrt),
    U("abs", ew_abs), U("neg", ew_neg), U("negative", ew_neg), U("reciprocal", ew_recip),
    U("erf", ew_erf), U("sign", ew_sign), U("sgn", ew_sign), U("sin", ew_sin), U("cos", ew_cos),
    U("tan", ew_tan), U("sinh", ew_sinh), U("cosh", ew_cosh), U("floor", ew_floor),
    U("ceil", ew_ceil), U("round", ew_round), U("trunc", ew_trunc), U("fix", ew_trunc),
    U("frac", ew_frac), U("square", ew_square), U("gelu", ew_gelu), U("silu", ew_silu),
    U("elu", ew_elu), U("celu", ew_celu), U("selu", ew_selu),
    U("hardtanh", ew_hardtanh), U("softplus", ew_softplus), U("leaky_relu", ew_leaky_relu),
    U("threshold", ew_threshold), U("hardshrink", ew_hardshrink), U("softshrink", ew_softshrink),
    U("hardsigmoid", ew_hardsigmoid), U("hardswish", ew_hardswish), U("mish", ew_mish),
    U("log_sigmoid_forward", ew_log_sigmoid), U("log_sigmoid", ew_log_sigmoid),
    U("positive", ew_identity),
    {"clamp", KF_LOP_EW, ew_clamp, {"self", "min", "max"}, KF_EWT_OUT, 0, NULL, NULL},
    {"clip", KF_LOP_EW, ew_clamp, {"self", "min", "max"}, KF_EWT_OUT, 0, NULL, NULL},
    {"clamp_min", KF_LOP_EW, ew_clamp_min, {"self", "min"}, KF_EWT_OUT, 0, NULL, NULL},
    {"clamp_max", KF_LOP_EW, ew_clamp_max, {"self", "max"}, KF_EWT_OUT, 0, NULL, NULL},
    {"pow", KF_LOP_EW, ew_pow, {"self", "exponent"}, KF_EWT_OUT, 0, NULL, NULL},
    {"float_power", KF_LOP_EW, ew_pow, {"self", "exponent"}, KF_EWT_OUT, 0, NULL, NULL},
    B("add", ew_add), B("sub", ew_sub), B("subtract", ew_sub), B("rsub", ew_rsub),
    B("mul", ew_mul), B("multiply", ew_mul), B("div", ew_div), B("divide", ew_div),
    B("true_divide", ew_div), B("floor_divide", ew_floor_divide), B("fmod", ew_fmod),
    B("remainder", ew_remainder), B("maximum", ew_maximum), B("minimum", ew_minimum),
    B("fmax", ew_fmax), B("fmin", ew_fmin), B("xlogy", ew_xlogy), B("hypot", ew_hypot),
    CMP("eq", ew_eq), CMP("ne", ew_ne), CMP("lt", ew_lt), CMP("le", ew_le), CMP("gt", ew_gt),
    CMP("ge", ew_ge), CMP("less", ew_lt), CMP("less_equal", ew_le), CMP("greater", ew_gt),
    CMP("greater_equal", ew_ge), CMP("not_equal", ew_ne),
    OWN2("logical_and", ew_and), OWN2("logical_or", ew_or), OWN2("logical_xor", ew_xor),
    OWN2("bitwise_and", ew_bitwise_and), OWN2("bitwise_or", ew_bitwise_or),
    OWN2("bitwise_xor", ew_bitwise_xor), OWN2("__and__", ew_bitwise_and),
    OWN2("__or__", ew_bitwise_or), OWN2("__xor__", ew_bitwise_xor),
    OWN1("logical_not", ew_not, "self"), OWN1("bitwise_not", ew_bitwise_not, "self"),
    OWN1("isnan", ew_isnan, "self"), OWN1("isinf", ew_isinf, "self"),
    OWN1("isfinite", ew_isfinite, "self"),
    OWN1("_to_copy", ew_identity, "self"), OWN1("to", ew_identity, "self"),
    OWN1("type_as", ew_identity, "self"), OWN1("copy", ew_identity, "src"),
    OWN1("_copy_from", ew_identity, "self"), OWN1("fill", ew_identity, "value"),
    {"lerp", KF_LOP_EW, ew_lerp, {"self", "end", "weight"}, KF_EWT_OUT, 0, NULL, NULL},
    {"addcmul", KF_LOP_EW, ew_addcmul, {"self", "tensor1", "tensor2"}, KF_EWT_OUT, 0, NULL, NULL},
    {"addcdiv", KF_LOP_EW, ew_addcdiv, {"self", "tensor1", "tensor2"}, KF_EWT_OUT, 0, NULL, NULL},
    {"where", KF_LOP_EW, ew_where, {"condition", "self", "other"}, KF_EWT_OUT, 1u, NULL, NULL},
    {"masked_fill", KF_LOP_EW, ew_masked_fill, {"self", "mask", "value"}, KF_EWT_OUT, 2u, NULL, NULL},
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};

/* ---- operand typing and the generic kernel ---- */

static kir_type promote_operands(const kf_graph *g, const kf_node *n, const kf_lop *l) {
    kir_type tmax_f = KIR_T_BOOL, tmax_i = KIR_T_BOOL;
    int any_f = 0, num_f = 0, num_i = 0;
    for (int i = 0; i < 4 && l->operands[i]; i++) {
        const kf_arg *a = kf_lw_arg(n, l->operands[i], -1);
        if (!a) continue;
        if (a->kind == KF_ARG_TENSOR) {
            kir_type t = kir_type_of_dtype(g->values[a->tensor].desc.dtype);
            if (kf_dtype_is_float(g->values[a->tensor].desc.dtype)) {
                any_f = 1;
                if (t > tmax_f) tmax_f = t;
            } else if (g->values[a->tensor].desc.dtype != KF_BOOL && t > tmax_i) {
                tmax_i = t;
            }
        } else if (a->kind == KF_ARG_FLOAT) {
            num_f = 1;
        } else if (a->kind == KF_ARG_INT) {
            num_i = 1;
        }
    }
    if (any_f) return tmax_f;
    if (num_f) return KIR_T_F32;
    if (tmax_i != KIR_T_BOOL) return tmax_i;
    return num_i ? KIR_T_I64 : KIR_T_BOOL;
}

int kf_lw_ew_info(const kf_graph *g, const kf_node *n, const kf_lop *l, kf_ew_info *info,
                  kf_err *err) {
    memset(info, 0, sizeof *info);
    if (n->n_outs < 1 || n->outs[0] < 0) return kf_fail(err, KF_E_INVALID, "%s: no output", n->op);
    kf_dtype odt = g->values[n->outs[0]].desc.dtype;
    info->out = kir_type_of_dtype(odt);
    kir_type common = l->typing == KF_EWT_PROMOTE ? promote_operands(g, n, l) : info->out;
    for (int i = 0; i < 4 && l->operands[i]; i++) {
        const kf_arg *a = kf_lw_arg(n, l->operands[i], -1);
        int own = l->typing == KF_EWT_OWN || (l->own >> i & 1u);
        info->n_operands = i + 1;
        info->tensor[i] = -1;
        info->type[i] = common;
        if (!a || a->kind == KF_ARG_NONE) {
            info->tensor[i] = -2;   /* absent */
            continue;
        }
        if (a->kind == KF_ARG_TENSOR) {
            info->tensor[i] = a->tensor;
            if (own) info->type[i] = kir_type_of_dtype(g->values[a->tensor].desc.dtype);
        } else if (a->kind == KF_ARG_INT || a->kind == KF_ARG_BOOL) {
            info->number[i] = (double)a->i;
            info->number_is_int[i] = 1;
            if (own) info->type[i] = a->kind == KF_ARG_BOOL ? KIR_T_BOOL : KIR_T_I64;
        } else if (a->kind == KF_ARG_FLOAT) {
            info->number[i] = a->f;
            if (own) info->type[i] = info->out == KIR_T_F64 ? KIR_T_F64 : KIR_T_F32;
        } else {
            return kf_lw_unsupported(err, n, "operand is not a tensor or a number");
        }
    }
    return 0;
}

int kf_lw_build_ew(kf_lw *w, const kf_lop *l, kf_err *err) {
    kf_ew_info info;
    int rc = kf_lw_ew_info(w->g, w->n, l, &info, err);
    if (rc) return rc;
    if (!l->ew) return kf_lw_unsupported(err, w->n, NULL);
    kir_kernel *k = w->k;
    int out = w->n->outs[0];
    const kf_tdesc *od = kf_lw_desc(w, out);
    int i;
    kir_stmt *loop = kf_lw_loop(w, NULL, "i", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &i);
    kir_expr *ins[4] = {NULL, NULL, NULL, NULL};
    for (int j = 0; j < info.n_operands; j++) {
        if (info.tensor[j] == -2) continue;
        kir_expr *e;
        if (info.tensor[j] >= 0) {
            const kf_tdesc *d = kf_lw_desc(w, info.tensor[j]);
            kir_expr *flat = kir_var(k, i);
            e = kf_lw_load(w, info.tensor[j], kf_lw_bcast_index(w, flat, od->shape, od->ndim, d));
            e = kf_lw_cvt(k, info.type[j], e);
            int v = kf_lw_local(w, loop, "x", info.type[j], e);
            e = kir_var(k, v);
        } else if (info.type[j] == KIR_T_F32 || info.type[j] == KIR_T_F64) {
            e = kir_flt(k, info.number[j], info.type[j]);
        } else if (info.type[j] == KIR_T_BOOL) {
            e = kf_lw_cvt(k, KIR_T_BOOL, kir_int(k, (int64_t)info.number[j]));
        } else {
            e = kir_int(k, (int64_t)info.number[j]);
        }
        ins[j] = e;
    }
    kir_expr *y = l->ew(k, w->n, ins);
    if (!y) {
        rc = kf_lw_check(w, err);
        return rc ? rc : kf_lw_unsupported(err, w->n, "attributes not handled");
    }
    kf_lw_put(w, loop, 0, kir_var(k, i), y);
    return kf_lw_check(w, err);
}
