/* kir_sched.c: loop-structure transforms on KIR kernels: finding loops and parents,
 * substituting variables in expressions, strip-mining (split), interchange, tiling and
 * unrolling hints. They rearrange iterations and never change what an iteration computes. */
#include <string.h>
#include "kir/kir_int.h"
#include "kir/kir_sched.h"

kir_expr *kir_sched_expr_subst(kir_kernel *k, const kir_expr *e, int var, const kir_expr *with) {
    if (!e) return NULL;
    if (with && e->kind == KIR_E_VAR && e->var == var) return kir_sched_expr_subst(k, with, -1, NULL);
    kir_expr *c = kir_alloc(k, sizeof *c);
    if (!c) return NULL;
    *c = *e;
    if (e->a && !(c->a = kir_sched_expr_subst(k, e->a, var, with))) return NULL;
    if (e->b && !(c->b = kir_sched_expr_subst(k, e->b, var, with))) return NULL;
    if (e->c && !(c->c = kir_sched_expr_subst(k, e->c, var, with))) return NULL;
    return c;
}

int kir_sched_eval_int(const kir_expr *e, int var, int64_t val, int64_t *out) {
    if (!e) return KF_E_INVALID;
    int64_t a = 0, b = 0, c = 0;
    switch (e->kind) {
    case KIR_E_CONST_I:
        *out = e->ival;
        return 0;
    case KIR_E_VAR:
        if (e->var != var) return KF_E_INVALID;
        *out = val;
        return 0;
    case KIR_E_CAST:
        if (e->type != KIR_T_I64 && e->type != KIR_T_I32 && e->type != KIR_T_BOOL) return KF_E_INVALID;
        if (kir_sched_eval_int(e->a, var, val, &a)) return KF_E_INVALID;
        *out = e->type == KIR_T_BOOL ? (a != 0) : e->type == KIR_T_I32 ? (int64_t)(int32_t)a : a;
        return 0;
    case KIR_E_SELECT:
        if (kir_sched_eval_int(e->a, var, val, &a) || kir_sched_eval_int(e->b, var, val, &b) ||
            kir_sched_eval_int(e->c, var, val, &c))
            return KF_E_INVALID;
        *out = a ? b : c;
        return 0;
    case KIR_E_BIN:
        if (kir_sched_eval_int(e->a, var, val, &a) || kir_sched_eval_int(e->b, var, val, &b)) return KF_E_INVALID;
        switch (e->op) {
        case KIR_ADD: *out = a + b; return 0;
        case KIR_SUB: *out = a - b; return 0;
        case KIR_MUL: *out = a * b; return 0;
        case KIR_DIV: if (!b) return KF_E_INVALID; *out = a / b; return 0;
        case KIR_MOD: if (!b) return KF_E_INVALID; *out = a % b; return 0;
        case KIR_MAX: *out = a > b ? a : b; return 0;
        case KIR_MIN: *out = a < b ? a : b; return 0;
        case KIR_LT: *out = a < b; return 0;
        case KIR_LE: *out = a <= b; return 0;
        case KIR_GT: *out = a > b; return 0;
        case KIR_GE: *out = a >= b; return 0;
        case KIR_EQ: *out = a == b; return 0;
        case KIR_NE: *out = a != b; return 0;
        case KIR_AND: *out = a && b; return 0;
        case KIR_OR: *out = a || b; return 0;
        default: return KF_E_INVALID;
        }
    default:
        return KF_E_INVALID;
    }
}

static void collect(kir_stmt *s, kir_stmt **out, int max, int *n) {
    if (!s) return;
    if (s->kind == KIR_S_FOR) {
        if (*n < max) out[*n] = s;
        (*n)++;
    }
    for (int i = 0; i < s->n_body; i++) collect(s->body[i], out, max, n);
    for (int i = 0; i < s->n_els; i++) collect(s->els[i], out, max, n);
}

int kir_sched_loops(kir_stmt *root, kir_stmt **out, int max) {
    int n = 0;
    collect(root, out, max, &n);
    return n;
}

kir_stmt *kir_sched_parent(kir_stmt *root, const kir_stmt *s) {
    if (!root) return NULL;
    for (int i = 0; i < root->n_body; i++) {
        if (root->body[i] == s) return root;
        kir_stmt *p = kir_sched_parent(root->body[i], s);
        if (p) return p;
    }
    for (int i = 0; i < root->n_els; i++) {
        if (root->els[i] == s) return root;
        kir_stmt *p = kir_sched_parent(root->els[i], s);
        if (p) return p;
    }
    return NULL;
}

int64_t kir_sched_trip(const kir_stmt *l) {
    if (!l || l->kind != KIR_S_FOR || !l->lo || !l->hi || l->step <= 0) return -1;
    if (l->lo->kind != KIR_E_CONST_I || l->hi->kind != KIR_E_CONST_I) return -1;
    int64_t span = l->hi->ival - l->lo->ival;
    return span <= 0 ? 0 : (span + l->step - 1) / l->step;
}

static int has_loop(const kir_stmt *s) {
    if (!s) return 0;
    for (int i = 0; i < s->n_body; i++)
        if (s->body[i]->kind == KIR_S_FOR || has_loop(s->body[i])) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (s->els[i]->kind == KIR_S_FOR || has_loop(s->els[i])) return 1;
    return 0;
}

int kir_sched_innermost(const kir_stmt *loop) { return loop && !has_loop(loop); }

static int oom(kir_kernel *k) { return kir_failure(k) ? KF_E_NOMEM : 0; }

int kir_sched_split(kir_kernel *k, kir_stmt *l, int64_t f, kir_stmt **outer, kir_stmt **inner) {
    int64_t n = kir_sched_trip(l);
    if (n < 0 || l->step != 1 || f < 1) return KF_E_INVALID;
    int64_t lo = l->lo->ival, hi = l->hi->ival;
    int64_t no = (n + f - 1) / f;
    int vo = kir_add_var(k, k->vars[l->var].name, KIR_T_I64);
    if (vo < 0) return KF_E_NOMEM;
    kir_expr *ilo = kir_add(k, kir_mul(k, kir_var(k, vo), kir_int(k, f)), kir_int(k, lo));
    kir_expr *ihi = kir_add(k, kir_sched_expr_subst(k, ilo, -1, NULL), kir_int(k, f));
    if (n % f != 0) ihi = kir_bin(k, KIR_MIN, ihi, kir_int(k, hi));
    kir_stmt *in = kir_for(k, l->var, ilo, ihi, 1, KIR_LOOP_SERIAL);
    if (!in) return KF_E_NOMEM;
    in->body = l->body;
    in->n_body = l->n_body;
    in->cap_body = l->cap_body;
    l->body = NULL;
    l->n_body = l->cap_body = 0;
    l->var = vo;
    l->lo = kir_int(k, 0);
    l->hi = kir_int(k, no);
    kir_append(k, l, in);
    if (outer) *outer = l;
    if (inner) *inner = in;
    return oom(k);
}

int kir_sched_interchange(kir_kernel *k, kir_stmt *o) {
    if (!o || o->kind != KIR_S_FOR || o->n_body != 1 || o->body[0]->kind != KIR_S_FOR) return KF_E_INVALID;
    kir_stmt *i = o->body[0];
    if (kir_expr_uses(i->lo, o->var) || kir_expr_uses(i->hi, o->var)) return KF_E_INVALID;
    int v = o->var;
    kir_expr *lo = o->lo, *hi = o->hi;
    int64_t st = o->step;
    o->var = i->var; o->lo = i->lo; o->hi = i->hi; o->step = i->step;
    i->var = v; i->lo = lo; i->hi = hi; i->step = st;
    return 0;
}

int kir_sched_tile(kir_kernel *k, kir_stmt *o, int64_t f0, int64_t f1) {
    if (!o || o->kind != KIR_S_FOR || o->n_body != 1 || o->body[0]->kind != KIR_S_FOR) return KF_E_INVALID;
    kir_stmt *j = o->body[0];
    if (kir_sched_trip(o) < 0 || kir_sched_trip(j) < 0 || o->step != 1 || j->step != 1) return KF_E_INVALID;
    if (kir_expr_uses(j->lo, o->var) || kir_expr_uses(j->hi, o->var)) return KF_E_INVALID;
    kir_stmt *io, *ii, *jo, *ji;
    int rc = kir_sched_split(k, o, f0, &io, &ii);
    if (rc) return rc;
    /* io { ii { j { body } } } */
    rc = kir_sched_split(k, j, f1, &jo, &ji);
    if (rc) return rc;
    /* io { ii { jo { ji { body } } } }: swap ii and jo (jo's bounds are constants) */
    kir_loop_kind kj = jo->loop;
    rc = kir_sched_interchange(k, ii);
    if (rc) return rc;
    ii->loop = KIR_LOOP_SERIAL;
    jo->loop = KIR_LOOP_SERIAL;
    ji->loop = kj == KIR_LOOP_VECTOR ? KIR_LOOP_VECTOR : KIR_LOOP_SERIAL;
    return 0;
}

/* ---- unflattening r / C and r % C ---- */
static int64_t find_divisor(const kir_expr *e, int var, int64_t n) {
    if (!e) return 0;
    if (e->kind == KIR_E_BIN && (e->op == KIR_DIV || e->op == KIR_MOD) && e->a && e->a->kind == KIR_E_VAR &&
        e->a->var == var && e->b && e->b->kind == KIR_E_CONST_I && e->b->ival > 1 && e->b->ival < n &&
        n % e->b->ival == 0)
        return e->b->ival;
    int64_t c = find_divisor(e->a, var, n);
    if (!c) c = find_divisor(e->b, var, n);
    if (!c) c = find_divisor(e->c, var, n);
    return c;
}

static int64_t find_divisor_stmt(const kir_stmt *s, int var, int64_t n) {
    if (!s) return 0;
    const kir_expr *es[5] = {s->lo, s->hi, s->idx, s->val, s->cond};
    for (int i = 0; i < 5; i++) {
        int64_t c = find_divisor(es[i], var, n);
        if (c) return c;
    }
    for (int i = 0; i < s->n_body; i++) {
        int64_t c = find_divisor_stmt(s->body[i], var, n);
        if (c) return c;
    }
    for (int i = 0; i < s->n_els; i++) {
        int64_t c = find_divisor_stmt(s->els[i], var, n);
        if (c) return c;
    }
    return 0;
}

/* e with r / C -> hi, r % C -> lo and any other r -> hi * C + lo. */
static kir_expr *unflat_expr(kir_kernel *k, const kir_expr *e, int var, int64_t C, int hi, int lo) {
    if (!e) return NULL;
    if (e->kind == KIR_E_BIN && (e->op == KIR_DIV || e->op == KIR_MOD) && e->a && e->a->kind == KIR_E_VAR &&
        e->a->var == var && e->b && e->b->kind == KIR_E_CONST_I && e->b->ival == C)
        return kir_var(k, e->op == KIR_DIV ? hi : lo);
    if (e->kind == KIR_E_VAR && e->var == var)
        return kir_add(k, kir_mul(k, kir_var(k, hi), kir_int(k, C)), kir_var(k, lo));
    kir_expr *c = kir_alloc(k, sizeof *c);
    if (!c) return NULL;
    *c = *e;
    if (e->a && !(c->a = unflat_expr(k, e->a, var, C, hi, lo))) return NULL;
    if (e->b && !(c->b = unflat_expr(k, e->b, var, C, hi, lo))) return NULL;
    if (e->c && !(c->c = unflat_expr(k, e->c, var, C, hi, lo))) return NULL;
    return c;
}

static void unflat_stmt(kir_kernel *k, kir_stmt *s, int var, int64_t C, int hi, int lo) {
    if (!s) return;
    kir_expr **es[5] = {&s->lo, &s->hi, &s->idx, &s->val, &s->cond};
    for (int i = 0; i < 5; i++)
        if (*es[i]) {
            kir_expr *n = unflat_expr(k, *es[i], var, C, hi, lo);
            if (n) *es[i] = n;
        }
    for (int i = 0; i < s->n_body; i++) unflat_stmt(k, s->body[i], var, C, hi, lo);
    for (int i = 0; i < s->n_els; i++) unflat_stmt(k, s->els[i], var, C, hi, lo);
}

int kir_sched_unflatten(kir_kernel *k, kir_stmt *l) {
    int64_t n = kir_sched_trip(l);
    if (n < 4 || l->step != 1 || l->lo->ival != 0) return 0;
    int64_t C = 0;
    for (int i = 0; i < l->n_body && !C; i++) C = find_divisor_stmt(l->body[i], l->var, n);
    if (!C) return 0;
    int hi = kir_add_var(k, "rh", KIR_T_I64), lo = kir_add_var(k, "rl", KIR_T_I64);
    if (hi < 0 || lo < 0) return KF_E_NOMEM;
    for (int i = 0; i < l->n_body; i++) unflat_stmt(k, l->body[i], l->var, C, hi, lo);
    kir_stmt *in = kir_for(k, lo, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_SERIAL);
    if (!in) return KF_E_NOMEM;
    in->body = l->body;
    in->n_body = l->n_body;
    in->cap_body = l->cap_body;
    l->body = NULL;
    l->n_body = l->cap_body = 0;
    l->var = hi;
    l->hi = kir_int(k, n / C);
    kir_append(k, l, in);
    return kir_failure(k) ? KF_E_NOMEM : 1;
}

int kir_sched_unroll(kir_kernel *k, kir_stmt *l, int factor) {
    (void)k;
    if (!l || l->kind != KIR_S_FOR || factor < 0) return KF_E_INVALID;
    l->loop = KIR_LOOP_UNROLL;
    l->unroll = factor;
    return 0;
}
