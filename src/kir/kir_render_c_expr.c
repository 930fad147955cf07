/* kir_render_c_expr.c: kernel IR expressions as C11 expressions.
 *
 * Every operand is converted explicitly to the type its operator computes in, so C's own
 * promotions never change a result. F32 math calls the float functions (expf, tanhf, ...),
 * F64 the double ones. MAX/MIN on floats propagate NaN like torch.maximum, MOD on floats is
 * torch.remainder (sign of the divisor), ROUND is half-to-even (nearbyint in the default
 * rounding mode). Constants are printed exactly: F32 with %.9g and an f suffix, F64 with
 * %.17g, infinities and NaN as INFINITY and NAN, I64 outside the int range with INT64_C.
 *
 * A small I64 constant is printed as a plain C int literal; an I64 add, subtract or multiply
 * whose operands are all such literals casts the first to int64_t so it cannot overflow int. */
#include "kir/kir_rc.h"
#include "kir/kir_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *kir_rc_ctype(kir_type t) {
    switch (t) {
    case KIR_T_BOOL: return "int";
    case KIR_T_I32: return "int32_t";
    case KIR_T_I64: return "int64_t";
    case KIR_T_F32: return "float";
    case KIR_T_F64: return "double";
    }
    return "int";
}

const char *kir_rc_buf_ctype(kf_dtype dt) {
    switch (dt) {
    case KF_F32: return "float";
    case KF_F64: return "double";
    case KF_F16: case KF_BF16: return "uint16_t";
    case KF_I64: return "int64_t";
    case KF_I32: return "int32_t";
    case KF_I16: return "int16_t";
    case KF_I8: return "int8_t";
    case KF_U8: case KF_BOOL: return "uint8_t";
    default: return NULL;
    }
}

static int kir_is_flt(kir_type t) { return t == KIR_T_F32 || t == KIR_T_F64; }

static int kir_small(int64_t v) { return v > INT32_MIN && v <= INT32_MAX; }

static void kir_lit_i(int64_t v, kf_str *o) {
    if (v == INT64_MIN) kf_str_append(o, "(-INT64_C(9223372036854775807) - 1)");
    else if (kir_small(v)) kf_str_appendf(o, v < 0 ? "(%lld)" : "%lld", (long long)v);
    else kf_str_appendf(o, v < 0 ? "(INT64_C(%lld))" : "INT64_C(%lld)", (long long)v);
}

static void kir_lit_f(double v, kir_type t, kf_str *o) {
    if (isnan(v)) {
        kf_str_append(o, "NAN");
        return;
    }
    if (isinf(v)) {
        kf_str_append(o, v > 0 ? "INFINITY" : "(-INFINITY)");
        return;
    }
    char buf[64];
    if (t == KIR_T_F32) snprintf(buf, sizeof buf, "%.9g", (double)(float)v);
    else snprintf(buf, sizeof buf, "%.17g", v);
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    if (t == KIR_T_F32) strcat(buf, "f");
    kf_str_appendf(o, buf[0] == '-' ? "(%s)" : "%s", buf);
}

/* 1 if e, rendered in its own type I64, has C type int (see the file comment). */
static int kir_narrow(const kir_expr *e) {
    if (!e || e->type != KIR_T_I64) return 0;
    switch (e->kind) {
    case KIR_E_CONST_I: return kir_small(e->ival);
    case KIR_E_CAST: return e->a && e->a->type == KIR_T_I64 && kir_narrow(e->a);
    case KIR_E_SELECT: return kir_narrow(e->b) && kir_narrow(e->c);
    case KIR_E_UN:
        return (e->op == KIR_NEG || e->op == KIR_FLOOR || e->op == KIR_CEIL || e->op == KIR_ROUND) &&
               kir_narrow(e->a);
    default: return 0;
    }
}

int kir_rc_var_ok(kir_rc *c, int var) {
    if (var >= 0 && var < c->k->n_vars) return 1;
    kir_rc_fail(c, KF_E_INVALID, "variable id %d out of range (%d variables)", var, c->k->n_vars);
    return 0;
}

void kir_rc_expr_as(kir_rc *c, const kir_expr *e, kir_type t, kf_str *o) {
    if (!e) {
        kir_rc_fail(c, KF_E_INVALID, "missing expression");
        return;
    }
    if (e->type == t) {
        kir_rc_expr(c, e, o);
    } else if (e->kind == KIR_E_CONST_I && kir_is_flt(t)) {
        kir_lit_f((double)e->ival, t, o);
    } else if (e->kind == KIR_E_CONST_I && t == KIR_T_BOOL) {
        kf_str_append(o, e->ival ? "1" : "0");
    } else if (e->kind == KIR_E_CONST_I && kir_small(e->ival)) {
        kir_lit_i(e->ival, o);
    } else if (e->kind == KIR_E_CONST_F && kir_is_flt(t)) {
        kir_lit_f(e->fval, t, o);
    } else if (t == KIR_T_BOOL) {
        kf_str_append(o, "(");
        kir_rc_expr(c, e, o);
        kf_str_append(o, " != 0)");
    } else {
        kf_str_appendf(o, "((%s)", kir_rc_ctype(t));
        kir_rc_expr(c, e, o);
        kf_str_append(o, ")");
    }
}

static const char *kir_fsuf(kir_type t) { return t == KIR_T_F32 ? "f" : ""; }

static const char *kir_tsuf(kir_type t) {
    switch (t) {
    case KIR_T_F32: return "f32";
    case KIR_T_F64: return "f64";
    case KIR_T_I64: return "i64";
    default: return "i32";
    }
}

static void kir_call1(kir_rc *c, const char *fn, const kir_expr *a, kir_type t, kf_str *o) {
    kf_str_appendf(o, "%s(", fn);
    kir_rc_expr_as(c, a, t, o);
    kf_str_append(o, ")");
}

static void kir_render_un(kir_rc *c, const kir_expr *e, kf_str *o) {
    kir_type t = e->type;
    const char *f = kir_fsuf(t);
    char fn[32];
    int flt = kir_is_flt(t);
    switch (e->op) {
    case KIR_NEG:
        kf_str_append(o, "(-");
        kir_rc_expr_as(c, e->a, t, o);
        kf_str_append(o, ")");
        return;
    case KIR_NOT:
        kf_str_append(o, "(!");
        kir_rc_expr(c, e->a, o);
        kf_str_append(o, ")");
        return;
    case KIR_ISNAN:
        if (e->a && kir_is_flt(e->a->type)) {
            kf_str_append(o, "(isnan(");
            kir_rc_expr(c, e->a, o);
            kf_str_append(o, ") != 0)");
        } else { /* an int is never NaN; the operand is still rendered to check it */
            kf_str scratch;
            kf_str_init(&scratch);
            kir_rc_expr(c, e->a, &scratch);
            kf_str_free(&scratch);
            kf_str_append(o, "0");
        }
        return;
    case KIR_ABS:
        if (flt) kir_call1(c, t == KIR_T_F32 ? "fabsf" : "fabs", e->a, t, o);
        else if (t == KIR_T_I64) {
            kf_str_append(o, "((int64_t)");
            kir_call1(c, "llabs", e->a, t, o);
            kf_str_append(o, ")");
        } else if (t == KIR_T_I32) kir_call1(c, "abs", e->a, t, o);
        else kir_rc_expr(c, e->a, o);
        return;
    case KIR_FLOOR: case KIR_CEIL: case KIR_ROUND:
        if (!flt) {
            kir_rc_expr_as(c, e->a, t, o);
            return;
        }
        snprintf(fn, sizeof fn, "%s%s",
                 e->op == KIR_FLOOR ? "floor" : e->op == KIR_CEIL ? "ceil" : "nearbyint", f);
        kir_call1(c, fn, e->a, t, o);
        return;
    case KIR_EXP2I: case KIR_FREXP_M: case KIR_FREXP_E:
        if (!flt) {
            kir_rc_fail(c, KF_E_INVALID, "%s of type %s", kir_unop_name(e->op), kir_type_name(t));
            return;
        }
        snprintf(fn, sizeof fn, "kf_%s_%s", kir_unop_name(e->op), kir_tsuf(t));
        kir_call1(c, fn, e->a, t, o);
        return;
    case KIR_SIGN:
        snprintf(fn, sizeof fn, "kf_sign_%s", kir_tsuf(t));
        kir_call1(c, fn, e->a, t, o);
        return;
    case KIR_RSQRT:
        kf_str_appendf(o, "(1.0%s / sqrt%s(", f, f);
        kir_rc_expr_as(c, e->a, t, o);
        kf_str_append(o, "))");
        return;
    case KIR_RECIP:
        kf_str_appendf(o, "(1.0%s / ", f);
        kir_rc_expr_as(c, e->a, t, o);
        kf_str_append(o, ")");
        return;
    case KIR_SIGMOID:
        kf_str_appendf(o, "(1.0%s / (1.0%s + exp%s(-", f, f, f);
        kir_rc_expr_as(c, e->a, t, o);
        kf_str_append(o, ")))");
        return;
    default: break;
    }
    const char *base = NULL;
    switch (e->op) {
    case KIR_EXP: base = "exp"; break;
    case KIR_EXPM1: base = "expm1"; break;
    case KIR_LOG: base = "log"; break;
    case KIR_LOG1P: base = "log1p"; break;
    case KIR_SQRT: base = "sqrt"; break;
    case KIR_TANH: base = "tanh"; break;
    case KIR_ERF: base = "erf"; break;
    case KIR_SIN: base = "sin"; break;
    case KIR_COS: base = "cos"; break;
    default:
        kir_rc_fail(c, KF_E_INVALID, "unknown unary op %d", e->op);
        return;
    }
    if (!flt) {
        kir_rc_fail(c, KF_E_INVALID, "%s of type %s", base, kir_type_name(t));
        return;
    }
    snprintf(fn, sizeof fn, "%s%s", base, f);
    kir_call1(c, fn, e->a, t, o);
}

static void kir_call2(kir_rc *c, const char *fn, const kir_expr *e, kir_type t, kf_str *o) {
    kf_str_appendf(o, "%s(", fn);
    kir_rc_expr_as(c, e->a, t, o);
    kf_str_append(o, ", ");
    kir_rc_expr_as(c, e->b, t, o);
    kf_str_append(o, ")");
}

static void kir_infix(kir_rc *c, const char *op, const kir_expr *e, kir_type t, int widen, kf_str *o) {
    kf_str_append(o, "(");
    if (widen) kf_str_append(o, "(int64_t)");
    kir_rc_expr_as(c, e->a, t, o);
    kf_str_appendf(o, " %s ", op);
    kir_rc_expr_as(c, e->b, t, o);
    kf_str_append(o, ")");
}

static void kir_render_bin(kir_rc *c, const kir_expr *e, kf_str *o) {
    if (!e->a || !e->b) {
        kir_rc_fail(c, KF_E_INVALID, "binary op with a missing operand");
        return;
    }
    kir_type t = e->type;
    int flt = kir_is_flt(t);
    char fn[32];
    switch (e->op) {
    case KIR_ADD: case KIR_SUB: case KIR_MUL: {
        int widen = t == KIR_T_I64 && kir_narrow(e->a) && kir_narrow(e->b);
        kir_infix(c, e->op == KIR_ADD ? "+" : e->op == KIR_SUB ? "-" : "*", e, t, widen, o);
        return;
    }
    case KIR_DIV:
        kir_infix(c, "/", e, t, 0, o);
        return;
    case KIR_MOD:
        if (flt) {
            snprintf(fn, sizeof fn, "kf_mod_%s", kir_tsuf(t));
            kir_call2(c, fn, e, t, o);
        } else {
            kir_infix(c, "%", e, t, 0, o);
        }
        return;
    case KIR_FMOD:
        if (flt) kir_call2(c, t == KIR_T_F32 ? "fmodf" : "fmod", e, t, o);
        else kir_infix(c, "%", e, t, 0, o);
        return;
    case KIR_MAX: case KIR_MIN:
        snprintf(fn, sizeof fn, "kf_%s_%s", e->op == KIR_MAX ? "max" : "min", kir_tsuf(t));
        kir_call2(c, fn, e, t, o);
        return;
    case KIR_POW:
        if (flt) {
            kir_call2(c, t == KIR_T_F32 ? "powf" : "pow", e, t, o);
        } else {
            kf_str_appendf(o, "((%s)", kir_rc_ctype(t));
            kir_call2(c, "kf_pow_i64", e, KIR_T_I64, o);
            kf_str_append(o, ")");
        }
        return;
    case KIR_LT: case KIR_LE: case KIR_GT: case KIR_GE: case KIR_EQ: case KIR_NE: {
        static const char *const ops[] = {"<", "<=", ">", ">=", "==", "!="};
        kir_type ct = e->a->type > e->b->type ? e->a->type : e->b->type;
        kir_infix(c, ops[e->op - KIR_LT], e, ct, 0, o);
        return;
    }
    case KIR_AND: case KIR_OR:
        kf_str_append(o, "(");
        kir_rc_expr(c, e->a, o);
        kf_str_append(o, e->op == KIR_AND ? " && " : " || ");
        kir_rc_expr(c, e->b, o);
        kf_str_append(o, ")");
        return;
    default:
        kir_rc_fail(c, KF_E_INVALID, "unknown binary op %d", e->op);
    }
}

void kir_rc_expr(kir_rc *c, const kir_expr *e, kf_str *o) {
    if (!e) {
        kir_rc_fail(c, KF_E_INVALID, "missing expression");
        return;
    }
    const kir_kernel *k = c->k;
    switch (e->kind) {
    case KIR_E_CONST_I:
        kir_lit_i(e->ival, o);
        return;
    case KIR_E_CONST_F:
        if (!kir_is_flt(e->type)) {
            kir_rc_fail(c, KF_E_INVALID, "float constant of type %s", kir_type_name(e->type));
            return;
        }
        kir_lit_f(e->fval, e->type, o);
        return;
    case KIR_E_VAR:
        if (!kir_rc_var_ok(c, e->var)) return;
        if (!c->live[e->var])
            kir_rc_fail(c, KF_E_INVALID, "variable '%s' used outside its declaration's scope",
                        k->vars[e->var].name);
        kf_str_append(o, c->vname[e->var]);
        return;
    case KIR_E_LOAD: {
        if (e->buf < 0 || e->buf >= k->n_bufs) {
            kir_rc_fail(c, KF_E_INVALID, "load from buffer id %d out of range", e->buf);
            return;
        }
        if (e->a && kir_is_flt(e->a->type))
            kir_rc_fail(c, KF_E_INVALID, "index into '%s' is a float", k->bufs[e->buf].name);
        if (c->vec_ld && c->vec_ld[e->buf])
            for (int j = 0; j < c->n_vec_idx; j++)
                if (c->vec_idx[j] == e->a) {
                    kf_str_appendf(o, "kf_vl%d.%c", e->buf, "xyzw"[c->vec_lane & 3]);
                    return;
                }
        kf_dtype dt = k->bufs[e->buf].dtype;
        const char *conv = dt == KF_F16 ? "kf_f16_to_f32(" : dt == KF_BF16 ? "kf_bf16_to_f32(" : "";
        kf_str_appendf(o, "%s%s[", conv, c->bname[e->buf]);
        kir_rc_expr(c, e->a, o);
        kf_str_append(o, *conv ? "])" : "]");
        return;
    }
    case KIR_E_UN:
        kir_render_un(c, e, o);
        return;
    case KIR_E_BIN:
        kir_render_bin(c, e, o);
        return;
    case KIR_E_SELECT:
        kf_str_append(o, "(");
        kir_rc_expr(c, e->a, o);
        kf_str_append(o, " ? ");
        kir_rc_expr_as(c, e->b, e->type, o);
        kf_str_append(o, " : ");
        kir_rc_expr_as(c, e->c, e->type, o);
        kf_str_append(o, ")");
        return;
    case KIR_E_CAST:
        kir_rc_expr_as(c, e->a, e->type, o);
        return;
    case KIR_E_FMA:
        if (!kir_is_flt(e->type)) {
            kir_rc_fail(c, KF_E_INVALID, "fused multiply-add of type %s", kir_type_name(e->type));
            return;
        }
        kf_str_append(o, e->type == KIR_T_F32 ? "fmaf(" : "fma(");
        kir_rc_expr_as(c, e->a, e->type, o);
        kf_str_append(o, ", ");
        kir_rc_expr_as(c, e->b, e->type, o);
        kf_str_append(o, ", ");
        kir_rc_expr_as(c, e->c, e->type, o);
        kf_str_append(o, ")");
        return;
    }
    kir_rc_fail(c, KF_E_INVALID, "unknown expression kind %d", (int)e->kind);
}
