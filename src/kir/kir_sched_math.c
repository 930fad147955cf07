/* kir_sched_math.c: vectorisable float32 math for SIMD loops. C compilers cannot vectorise
 * calls to expf/tanhf/erff without fast-math, so inside KIR_LOOP_VECTOR loops the float32
 * exp, expm1, sigmoid, tanh and erf are rewritten into plain KIR arithmetic:
 *  - exp(x): x clamped to [-87.3, 89] (below: 0; above: overflows to inf as it should),
 *    n = round(x / ln2) (by adding and subtracting 1.5 * 2^23), r = x - n ln2 (two-part ln2), p = degree-7 Taylor polynomial of
 *    e^r (|r| <= 0.35: relative error < 2e-7), times 2^h and 2^(n - h), h = round(n / 2),
 *    each built from its exponent bits (KIR_EXP2I);
 *  - sigmoid(x) = 1 / (1 + exp(-x)); tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|);
 *  - erf(x): Abramowitz-Stegun 7.1.26 (absolute error < 1.5e-7); expm1(x) = exp(x) - 1;
 *  - log(x): significand and exponent from the bits (KIR_FREXP_M / _E), the significand in
 *    [sqrt(1/2), sqrt(2)), an atanh series; log1p(x) = log(1 + x).
 * Constants chosen by selects are loaded from a table the caller provides (see Z below);
 * without one (-1) they are plain literals.
 * Errors stay far inside kforge's float32 tolerance (1e-4); NaN and infinities come out
 * where libm gives them. Intermediate values are bound to locals declared just before the
 * statement using them; an argument that reads memory inside a select branch or the right
 * side of && / || is left alone (evaluating it early could read out of bounds), unless the
 * statement reads the same element unconditionally anyway (elu: x > 0 ? x : exp(x) - 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kir/kir_int.h"
#include "kir/kir_sched.h"

typedef struct mx {
    kir_kernel *k;
    const kir_expr *safe[64]; /* loads the statement being rewritten evaluates unconditionally */
    int n_safe;
    kir_stmt *pre;       /* where locals of the statement being rewritten go */
    kir_stmt *cpre;      /* where the table's constants go: before the vector loop */
    int cvar[32];        /* table index -> local holding it, or -1 */
    int n;
    int zbuf;
} mx;

static kir_expr *F(mx *m, double c) { return kir_flt(m->k, c, KIR_T_F32); }

/* Constants that selects choose between are read from a table in memory (zero_buf is in fact
 * that table, see kir_sched_math_consts) instead of written as literals: the compiler would
 * otherwise specialise the code after each select on the constant, duplicating the following
 * arithmetic into branches, which keeps the loop from vectorising. */
static const double kir_math_consts[] = {
    -87.3, 89.0, 0.0, 1.0, 2.0, 4.0, 16.0, 256.0, 65536.0, 4294967296.0, 18446744073709551616.0,
    -INFINITY, NAN, INFINITY,
};
#define KIR_NCONST ((int)(sizeof kir_math_consts / sizeof kir_math_consts[0]))

int kir_sched_math_consts(double *out, int max) {
    for (int i = 0; i < KIR_NCONST && i < max; i++) out[i] = kir_math_consts[i];
    return KIR_NCONST;
}

static kir_expr *Z(mx *m, double c) {
    if (m->zbuf < 0 || !m->cpre) return F(m, c);
    for (int i = 0; i < KIR_NCONST && i < 32; i++) {
        if (!(kir_math_consts[i] == c || (isnan(c) && isnan(kir_math_consts[i])))) continue;
        if (m->cvar[i] < 0) {
            m->cvar[i] = kir_add_var(m->k, "vc", KIR_T_F32);
            kir_append(m->k, m->cpre, kir_decl(m->k, m->cvar[i], kir_load(m->k, m->zbuf, kir_int(m->k, i))));
        }
        return kir_var(m->k, m->cvar[i]);
    }
    return F(m, c);
}

/* Binds e to a new local declared in m->pre; returns the variable id. */
static int bind(mx *m, kir_expr *e) {
    int v = kir_add_var(m->k, "vm", e->type);
    kir_append(m->k, m->pre, kir_decl(m->k, v, e));
    return v;
}

static kir_expr *V(mx *m, int v) { return kir_var(m->k, v); }
static kir_expr *B(mx *m, kir_binop op, kir_expr *a, kir_expr *b) { return kir_bin(m->k, op, a, b); }
static kir_expr *sel(mx *m, kir_expr *c, kir_expr *a, kir_expr *b) { return kir_select(m->k, c, a, b); }

/* Round to nearest integer for |v| < 2^22: (v + 1.5 * 2^23) - 1.5 * 2^23 (floorf does not
 * vectorise without -fno-trapping-math; this is exact IEEE arithmetic, kept by the compiler
 * since kforge never compiles with reassociation). */
static kir_expr *rnd(mx *m, kir_expr *v) {
    return B(m, KIR_SUB, B(m, KIR_ADD, v, F(m, 12582912.0)), F(m, 12582912.0));
}

static int v_exp(mx *m, int x) {
    kir_kernel *k = m->k;
    int lo = bind(m, sel(m, B(m, KIR_LT, V(m, x), F(m, -87.3)), Z(m, -87.3), V(m, x)));
    int xc = bind(m, sel(m, B(m, KIR_GT, V(m, lo), F(m, 89.0)), Z(m, 89.0), V(m, lo)));
    int n = bind(m, rnd(m, B(m, KIR_MUL, V(m, xc), F(m, 1.4426950408889634))));
    int r = bind(m, B(m, KIR_SUB, B(m, KIR_SUB, V(m, xc), B(m, KIR_MUL, V(m, n), F(m, 0.693359375))),
                      B(m, KIR_MUL, V(m, n), F(m, -2.12194440e-4))));
    static const double c[] = {1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0, 1.0};
    kir_expr *p = F(m, c[0]);
    for (int i = 1; i < 8; i++) p = B(m, KIR_ADD, B(m, KIR_MUL, p, V(m, r)), F(m, c[i]));
    int pv = bind(m, p);
    /* 2^n = 2^h * 2^(n - h), h = n / 2 rounded: both factors are normal floats for n in
     * [-126, 128], and the products round once (exact until the result is subnormal). (A
     * float -> int -> float round trip would keep GCC from vectorising the loop.) */
    int h = bind(m, rnd(m, B(m, KIR_MUL, V(m, n), F(m, 0.5))));
    int q = bind(m, kir_un(k, KIR_EXP2I, V(m, h)));
    int q2 = bind(m, kir_un(k, KIR_EXP2I, B(m, KIR_SUB, V(m, n), V(m, h))));
    int res = bind(m, B(m, KIR_MUL, B(m, KIR_MUL, V(m, pv), V(m, q)), V(m, q2)));
    return bind(m, sel(m, B(m, KIR_LT, V(m, x), F(m, -87.3)), Z(m, 0.0), V(m, res)));
}

/* log(v) for v > 0: v = y * 2^k with y in [sqrt(1/2), sqrt(2)) read off the float's bits
 * (KIR_FREXP_M / KIR_FREXP_E; subnormal v is first scaled by 2^64), then log(y) =
 * 2 atanh((y - 1) / (y + 1)) by its series to s^9 (|s| <= 0.172: error < 1e-9) plus k ln 2.
 * v <= 0, infinities and NaN get what libm gives: -inf at 0, NaN below, inf at inf, NaN.
 * Selects only choose between variables (constants come from the table), as elsewhere. */
static int v_log(mx *m, int x) {
    kir_kernel *k = m->k;
    int tiny = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_LT, V(m, x), F(m, 1.1754943508222875e-38))));
    int scale = bind(m, sel(m, V(m, tiny), Z(m, 18446744073709551616.0), Z(m, 1.0)));
    int xs = bind(m, B(m, KIR_MUL, V(m, x), V(m, scale)));
    int y0 = bind(m, kir_un(k, KIR_FREXP_M, V(m, xs)));
    int e0 = bind(m, B(m, KIR_SUB, kir_un(k, KIR_FREXP_E, V(m, xs)), kir_un(k, KIR_FREXP_E, V(m, scale))));
    /* y in [1, 2): bring it into [sqrt(1/2), sqrt(2)) */
    int hi = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_GE, V(m, y0), F(m, 1.4142135623730951))));
    int yh = bind(m, B(m, KIR_MUL, V(m, y0), F(m, 0.5)));
    int eh = bind(m, B(m, KIR_ADD, V(m, e0), F(m, 1.0)));
    int y = bind(m, sel(m, V(m, hi), V(m, yh), V(m, y0)));
    int e = bind(m, sel(m, V(m, hi), V(m, eh), V(m, e0)));
    int sv = bind(m, B(m, KIR_DIV, B(m, KIR_SUB, V(m, y), F(m, 1.0)), B(m, KIR_ADD, V(m, y), F(m, 1.0))));
    int s2 = bind(m, B(m, KIR_MUL, V(m, sv), V(m, sv)));
    kir_expr *p = F(m, 1.0 / 9);
    static const double c[] = {1.0 / 7, 1.0 / 5, 1.0 / 3, 1.0};
    for (int i = 0; i < 4; i++) p = B(m, KIR_ADD, B(m, KIR_MUL, p, V(m, s2)), F(m, c[i]));
    int lg = bind(m, B(m, KIR_ADD, B(m, KIR_MUL, B(m, KIR_MUL, p, V(m, sv)), F(m, 2.0)),
                      B(m, KIR_MUL, V(m, e), F(m, 0.6931471805599453))));
    /* special values: 0 -> -inf, negative -> NaN, inf -> inf, NaN -> NaN */
    int zero = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_EQ, V(m, x), F(m, 0.0))));
    int neg = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_LT, V(m, x), F(m, 0.0))));
    int inf = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_EQ, V(m, x), F(m, INFINITY))));
    int nan = bind(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_NE, V(m, x), V(m, x))));
    int r1 = bind(m, sel(m, V(m, zero), Z(m, -INFINITY), V(m, lg)));
    int r2 = bind(m, sel(m, V(m, neg), Z(m, NAN), V(m, r1)));
    int r3 = bind(m, sel(m, V(m, nan), V(m, x), V(m, r2)));
    return bind(m, sel(m, V(m, inf), Z(m, INFINITY), V(m, r3)));
}

static kir_expr *v_math(mx *m, int op, kir_expr *arg) {
    kir_kernel *k = m->k;
    int x = bind(m, arg);
    switch (op) {
    case KIR_EXP:
        return V(m, v_exp(m, x));
    case KIR_EXPM1:
        return B(m, KIR_SUB, V(m, v_exp(m, x)), F(m, 1.0));
    case KIR_LOG:
        return V(m, v_log(m, x));
    case KIR_LOG1P: {
        /* log(1 + x), or x itself where 1 + x rounds to 1 */
        int one = bind(m, B(m, KIR_ADD, F(m, 1.0), V(m, x)));
        int l = v_log(m, one);
        return sel(m, kir_cast(k, KIR_T_BOOL, B(m, KIR_EQ, V(m, one), F(m, 1.0))), V(m, x), V(m, l));
    }
    case KIR_SIGMOID: {
        int nx = bind(m, kir_un(k, KIR_NEG, V(m, x)));
        int e = v_exp(m, nx);
        return B(m, KIR_DIV, F(m, 1.0), B(m, KIR_ADD, F(m, 1.0), V(m, e)));
    }
    case KIR_TANH: {
        int ax = bind(m, B(m, KIR_MUL, kir_un(k, KIR_ABS, V(m, x)), F(m, -2.0)));
        int e = v_exp(m, ax);
        int t = bind(m, B(m, KIR_DIV, B(m, KIR_SUB, F(m, 1.0), V(m, e)), B(m, KIR_ADD, F(m, 1.0), V(m, e))));
        return sel(m, B(m, KIR_LT, V(m, x), F(m, 0.0)), kir_un(k, KIR_NEG, V(m, t)), V(m, t));
    }
    case KIR_ERF: {
        int ax = bind(m, kir_un(k, KIR_ABS, V(m, x)));
        int t = bind(m, B(m, KIR_DIV, F(m, 1.0), B(m, KIR_ADD, F(m, 1.0), B(m, KIR_MUL, V(m, ax), F(m, 0.3275911)))));
        static const double a[] = {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592};
        kir_expr *p = F(m, a[0]);
        for (int i = 1; i < 5; i++) p = B(m, KIR_ADD, B(m, KIR_MUL, p, V(m, t)), F(m, a[i]));
        p = B(m, KIR_MUL, p, V(m, t));
        int nx2 = bind(m, kir_un(k, KIR_NEG, B(m, KIR_MUL, V(m, ax), V(m, ax))));
        int e = v_exp(m, nx2);
        int y = bind(m, B(m, KIR_SUB, F(m, 1.0), B(m, KIR_MUL, p, V(m, e))));
        return sel(m, B(m, KIR_LT, V(m, x), F(m, 0.0)), kir_un(k, KIR_NEG, V(m, y)), V(m, y));
    }
    default:
        return NULL;
    }
}

static int same_expr(const kir_expr *a, const kir_expr *b) {
    if (a == b) return 1;
    if (!a || !b || a->kind != b->kind || a->type != b->type) return 0;
    switch (a->kind) {
    case KIR_E_CONST_I: return a->ival == b->ival;
    case KIR_E_CONST_F: return a->fval == b->fval || (isnan(a->fval) && isnan(b->fval));
    case KIR_E_VAR: return a->var == b->var;
    case KIR_E_LOAD: if (a->buf != b->buf) return 0; break;
    case KIR_E_UN: case KIR_E_BIN: if (a->op != b->op) return 0; break;
    default: break;
    }
    return same_expr(a->a, b->a) && same_expr(a->b, b->b) && same_expr(a->c, b->c);
}

/* Records the loads of e evaluated whatever the data (outside select branches and the right
 * side of && / ||). */
static void collect_safe(mx *m, const kir_expr *e, int guarded) {
    if (!e) return;
    if (e->kind == KIR_E_LOAD && !guarded && m->n_safe < 64) m->safe[m->n_safe++] = e;
    int gb = guarded, gc = guarded;
    if (e->kind == KIR_E_SELECT) gb = gc = 1;
    if (e->kind == KIR_E_BIN && (e->op == KIR_AND || e->op == KIR_OR)) gb = 1;
    collect_safe(m, e->a, guarded);
    collect_safe(m, e->b, gb);
    collect_safe(m, e->c, gc);
}

static int count_same(const kir_expr *e, const kir_expr *l) {
    if (!e) return 0;
    if (same_expr(e, l)) return 1;
    return count_same(e->a, l) + count_same(e->b, l) + count_same(e->c, l);
}

static kir_expr *replace_same(kir_kernel *k, kir_expr *e, const kir_expr *l, int var) {
    if (!e) return NULL;
    if (same_expr(e, l)) return kir_var(k, var);
    e->a = replace_same(k, e->a, l, var);
    e->b = replace_same(k, e->b, l, var);
    e->c = replace_same(k, e->c, l, var);
    return e;
}

/* A load the statement evaluates unconditionally and also reads elsewhere (in a select
 * branch, say) is read once into a local before the statement: compilers if-convert the
 * select into vector code only when its branches read no memory. */
static void bind_repeated_loads(mx *m, kir_stmt *s) {
    for (int i = 0; i < m->n_safe; i++) {
        const kir_expr *l = m->safe[i];
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = same_expr(l, m->safe[j]);
        if (dup) continue;
        int n = count_same(s->idx, l) + count_same(s->val, l) + count_same(s->cond, l);
        if (n < 2) continue;
        kir_expr *copy = kir_expr_clone(m->k, l);
        if (!copy) return;
        int v = bind(m, copy);
        s->idx = replace_same(m->k, s->idx, copy, v);
        s->val = replace_same(m->k, s->val, copy, v);
        s->cond = replace_same(m->k, s->cond, copy, v);
    }
}

/* 1 if e reads memory that the statement does not read unconditionally anyway (evaluating it
 * early could then read out of bounds). */
static int has_load(const mx *m, const kir_expr *e) {
    if (!e) return 0;
    if (e->kind == KIR_E_LOAD) {
        int safe = 0;
        for (int i = 0; i < m->n_safe && !safe; i++) safe = same_expr(e, m->safe[i]);
        if (!safe) return 1;
    }
    return has_load(m, e->a) || has_load(m, e->b) || has_load(m, e->c);
}

static int is_target(const kir_expr *e) {
    if (e->kind != KIR_E_UN || e->type != KIR_T_F32 || !e->a || e->a->type != KIR_T_F32) return 0;
    return e->op == KIR_EXP || e->op == KIR_EXPM1 || e->op == KIR_SIGMOID || e->op == KIR_TANH || e->op == KIR_ERF ||
           e->op == KIR_LOG || e->op == KIR_LOG1P;
}

/* Rewrites e's subtree in place; guarded: inside a select branch or a short-circuit operand. */
static kir_expr *rewrite(mx *m, kir_expr *e, int guarded) {
    if (!e) return NULL;
    int ga = guarded, gb = guarded, gc = guarded;
    if (e->kind == KIR_E_SELECT) gb = gc = 1;
    if (e->kind == KIR_E_BIN && (e->op == KIR_AND || e->op == KIR_OR)) gb = 1;
    e->a = rewrite(m, e->a, ga);
    e->b = rewrite(m, e->b, gb);
    e->c = rewrite(m, e->c, gc);
    if (is_target(e) && !(guarded && has_load(m, e->a))) {
        kir_expr *r = v_math(m, e->op, e->a);
        if (r) {
            m->n++;
            return r;
        }
    }
    return e;
}

static int count_targets(const kir_expr *e) {
    if (!e) return 0;
    return is_target(e) + count_targets(e->a) + count_targets(e->b) + count_targets(e->c);
}

static int stmt_targets(const kir_stmt *s) {
    return count_targets(s->lo) + count_targets(s->hi) + count_targets(s->idx) + count_targets(s->val) +
           count_targets(s->cond);
}

/* Rewrites the statements of a list, hoisting new locals right before each statement. */
static void rewrite_list(mx *m, kir_stmt ***list, int *n, int *cap) {
    kir_kernel *k = m->k;
    kir_stmt *out = kir_block(k);
    if (!out) return;
    for (int i = 0; i < *n; i++) {
        kir_stmt *s = (*list)[i];
        if (stmt_targets(s) && s->kind != KIR_S_FOR) {
            kir_stmt *saved = m->pre;
            m->pre = out;
            m->n_safe = 0;
            collect_safe(m, s->idx, 0);
            collect_safe(m, s->val, 0);
            collect_safe(m, s->cond, 0);
            bind_repeated_loads(m, s);
            m->n_safe = 0;
            collect_safe(m, s->idx, 0);
            collect_safe(m, s->val, 0);
            collect_safe(m, s->cond, 0);

            s->idx = rewrite(m, s->idx, 0);
            s->val = rewrite(m, s->val, 0);
            s->cond = rewrite(m, s->cond, 0);
            m->pre = saved;
        }
        if (s->kind == KIR_S_BLOCK || s->kind == KIR_S_IF || s->kind == KIR_S_FOR) {
            rewrite_list(m, &s->body, &s->n_body, &s->cap_body);
            if (s->kind == KIR_S_IF) rewrite_list(m, &s->els, &s->n_els, &s->cap_els);
        }
        kir_append(k, out, s);
    }
    if (kir_failure(k)) return;
    *list = out->body;
    *n = out->n_body;
    *cap = out->cap_body;
}

static int list_targets(kir_stmt *const *l, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) {
        c += stmt_targets(l[i]);
        c += list_targets(l[i]->body, l[i]->n_body) + list_targets(l[i]->els, l[i]->n_els);
    }
    return c;
}

static int has_targets_in_vector(const kir_stmt *s, int in_vec) {
    if (!s) return 0;
    if (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_VECTOR) in_vec = 1;
    if (in_vec && (stmt_targets(s) || list_targets(s->body, s->n_body) || list_targets(s->els, s->n_els))) return 1;
    for (int i = 0; i < s->n_body; i++)
        if (has_targets_in_vector(s->body[i], in_vec)) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (has_targets_in_vector(s->els[i], in_vec)) return 1;
    return 0;
}

/* Rewrites the vector loops under a list; the table's constants for a vector loop are
 * declared right before it (loop-invariant locals). */
static void walk_list(mx *m, kir_stmt ***list, int *n, int *cap) {
    kir_kernel *k = m->k;
    kir_stmt *out = kir_block(k);
    if (!out) return;
    for (int i = 0; i < *n; i++) {
        kir_stmt *s = (*list)[i];
        if (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_VECTOR) {
            m->cpre = out;
            for (int c = 0; c < 32; c++) m->cvar[c] = -1;
            rewrite_list(m, &s->body, &s->n_body, &s->cap_body);
            m->cpre = NULL;
        } else {
            walk_list(m, &s->body, &s->n_body, &s->cap_body);
            walk_list(m, &s->els, &s->n_els, &s->cap_els);
        }
        kir_append(k, out, s);
    }
    if (kir_failure(k)) return;
    *list = out->body;
    *n = out->n_body;
    *cap = out->cap_body;
}

int kir_sched_has_vector_math(const kir_kernel *k) {
    return has_targets_in_vector(k->body, 0);
}

int kir_sched_vector_math(kir_kernel *k, int zero_buf) {
    mx m;
    memset(&m, 0, sizeof m);
    m.k = k;
    m.zbuf = zero_buf;
    walk_list(&m, &k->body->body, &k->body->n_body, &k->body->cap_body);
    if (kir_failure(k)) return KF_E_NOMEM;
    return m.n;
}
