/* kir_sched_vec.c: SIMD and thread-level schedule transforms on KIR kernels: the legality
 * test for running a loop's iterations as SIMD lanes (stores land on distinct elements, no
 * buffer is read at one index and written at another, outer variables are only summed into),
 * vectorising innermost loops, strip-mining big innermost parallel loops into parallel chunks
 * with a vector inner loop, and serialising kernels too small for threads. */
#include <stdlib.h>
#include "kir/kir_int.h"
#include "kir/kir_sched.h"

#define KIR_NOT_AFFINE INT64_MIN

/* Coefficient c when e == c * var + (terms not reading var); KIR_NOT_AFFINE otherwise. */
static int64_t affine_coef(const kir_expr *e, int var) {
    if (!e) return 0;
    if (!kir_expr_uses(e, var)) return 0;
    switch (e->kind) {
    case KIR_E_VAR:
        return 1;
    case KIR_E_CAST:
        return (e->type == KIR_T_I64 || e->type == KIR_T_I32) ? affine_coef(e->a, var) : KIR_NOT_AFFINE;
    case KIR_E_BIN: {
        if (e->op == KIR_ADD || e->op == KIR_SUB) {
            int64_t a = affine_coef(e->a, var), b = affine_coef(e->b, var);
            if (a == KIR_NOT_AFFINE || b == KIR_NOT_AFFINE) return KIR_NOT_AFFINE;
            return e->op == KIR_ADD ? a + b : a - b;
        }
        if (e->op == KIR_MUL) {
            if (e->a->kind == KIR_E_CONST_I) {
                int64_t b = affine_coef(e->b, var);
                return b == KIR_NOT_AFFINE ? b : b * e->a->ival;
            }
            if (e->b->kind == KIR_E_CONST_I) {
                int64_t a = affine_coef(e->a, var);
                return a == KIR_NOT_AFFINE ? a : a * e->b->ival;
            }
        }
        return KIR_NOT_AFFINE;
    }
    default:
        return KIR_NOT_AFFINE;
    }
}

static int expr_eq(const kir_expr *a, const kir_expr *b) {
    if (a == b) return 1;
    if (!a || !b || a->kind != b->kind || a->type != b->type) return 0;
    switch (a->kind) {
    case KIR_E_CONST_I: return a->ival == b->ival;
    case KIR_E_CONST_F: return a->fval == b->fval;
    case KIR_E_VAR: return a->var == b->var;
    case KIR_E_LOAD: if (a->buf != b->buf) return 0; break;
    case KIR_E_UN: case KIR_E_BIN: if (a->op != b->op) return 0; break;
    default: break;
    }
    return expr_eq(a->a, b->a) && expr_eq(a->b, b->b) && expr_eq(a->c, b->c);
}

typedef struct acc_list {
    int *buf; const kir_expr **idx; int n, cap; int bad;
} acc_list;

static void acc_add(acc_list *l, int buf, const kir_expr *idx) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        int *nb = realloc(l->buf, sizeof *nb * (size_t)cap);
        const kir_expr **ni = nb ? realloc(l->idx, sizeof *ni * (size_t)cap) : NULL;
        if (!nb || !ni) {
            if (nb) l->buf = nb;
            l->bad = 1;
            return;
        }
        l->buf = nb;
        l->idx = ni;
        l->cap = cap;
    }
    l->buf[l->n] = buf;
    l->idx[l->n++] = idx;
}

static void loads_in(const kir_expr *e, acc_list *l) {
    if (!e) return;
    if (e->kind == KIR_E_LOAD) acc_add(l, e->buf, e->a);
    loads_in(e->a, l);
    loads_in(e->b, l);
    loads_in(e->c, l);
}

static void scan(const kir_stmt *s, acc_list *st, acc_list *ld) {
    if (!s) return;
    loads_in(s->lo, ld);
    loads_in(s->hi, ld);
    loads_in(s->val, ld);
    loads_in(s->cond, ld);
    if (s->kind == KIR_S_STORE) {
        loads_in(s->idx, ld);
        acc_add(st, s->buf, s->idx);
    }
    for (int i = 0; i < s->n_body; i++) scan(s->body[i], st, ld);
    for (int i = 0; i < s->n_els; i++) scan(s->els[i], st, ld);
}

/* Locals declared in the loop and never reassigned, with their initial values: index
 * expressions are analysed with them substituted (idx = base + r; out[idx] = ...). */
typedef struct local_map { const kir_expr **init; unsigned char *assigned; int n_vars; } local_map;

static void map_locals(const kir_stmt *s, local_map *m) {
    if (!s) return;
    if (s->kind == KIR_S_DECL && s->var >= 0 && s->var < m->n_vars) m->init[s->var] = s->val;
    if (s->kind == KIR_S_ASSIGN && s->var >= 0 && s->var < m->n_vars) m->assigned[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) map_locals(s->body[i], m);
    for (int i = 0; i < s->n_els; i++) map_locals(s->els[i], m);
}

/* e with every local of m replaced by its initial value (in scratch kernel t). */
static kir_expr *expand(kir_kernel *t, const kir_expr *e, const local_map *m, int depth) {
    if (!e) return NULL;
    if (e->kind == KIR_E_VAR && e->var >= 0 && e->var < m->n_vars && m->init[e->var] &&
        !m->assigned[e->var] && depth < 16)
        return expand(t, m->init[e->var], m, depth + 1);
    kir_expr *c = kir_sched_expr_subst(t, e, -1, NULL);
    if (!c) return NULL;
    c->a = e->a ? expand(t, e->a, m, depth) : NULL;
    c->b = e->b ? expand(t, e->b, m, depth) : NULL;
    c->c = e->c ? expand(t, e->c, m, depth) : NULL;
    return c;
}

/* Stores at affine indices with a non-zero coefficient of var; stored buffers loaded only at
 * the index they are stored at. */
static int accesses_ok(const kir_kernel *k, const kir_stmt *loop, int var) {
    acc_list st = {0}, ld = {0};
    scan(loop, &st, &ld);
    int ok = !st.bad && !ld.bad;
    local_map m = {0};
    m.n_vars = k->n_vars;
    m.init = calloc((size_t)k->n_vars + 1, sizeof *m.init);
    m.assigned = calloc((size_t)k->n_vars + 1, 1);
    kir_kernel *t = kir_kernel_new("scratch");
    if (!m.init || !m.assigned || !t) ok = 0;
    if (ok) map_locals(loop, &m);
    for (int i = 0; ok && i < st.n; i++) st.idx[i] = expand(t, st.idx[i], &m, 0);
    for (int i = 0; ok && i < ld.n; i++) ld.idx[i] = expand(t, ld.idx[i], &m, 0);
    if (ok && kir_failure(t)) ok = 0;
    for (int i = 0; ok && i < st.n; i++) {
        int64_t c = affine_coef(st.idx[i], var);
        if (c == 0 || c == KIR_NOT_AFFINE) ok = 0;
        for (int j = 0; ok && j < st.n; j++)
            if (st.buf[j] == st.buf[i] && !expr_eq(st.idx[j], st.idx[i])) ok = 0;
        for (int j = 0; ok && j < ld.n; j++)
            if (ld.buf[j] == st.buf[i] && !expr_eq(ld.idx[j], st.idx[i])) ok = 0;
    }
    free(st.buf); free(st.idx); free(ld.buf); free(ld.idx);
    free(m.init); free(m.assigned);
    kir_kernel_free(t);
    return ok;
}

/* Variables declared inside s (they are private to an iteration). */
static void mark_decls(const kir_stmt *s, unsigned char *inner) {
    if (!s) return;
    if (s->kind == KIR_S_DECL && s->var >= 0) inner[s->var] = 1;
    if (s->kind == KIR_S_FOR && s->var >= 0) inner[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) mark_decls(s->body[i], inner);
    for (int i = 0; i < s->n_els; i++) mark_decls(s->els[i], inner);
}

/* Outer variables assigned in the loop are only summed into (OpenMP reductions). */
static int outer_ok(const kir_kernel *k, const kir_stmt *loop) {
    if (k->n_vars == 0) return 1;
    unsigned char *inner = calloc((size_t)k->n_vars, 1);
    int *outer = calloc((size_t)k->n_vars * 2, sizeof *outer);
    if (!inner || !outer) {
        free(inner); free(outer);
        return 0;
    }
    mark_decls(loop, inner);
    for (int v = 0; v < k->n_vars; v++) outer[v] = !inner[v];
    int n_sum = 0, bad = -1;
    int ok = kir_loop_outer_assigns(loop, k->n_vars, outer, outer + k->n_vars, &n_sum, &bad);
    free(inner);
    free(outer);
    return ok == 1;
}

int kir_sched_vector_legal(const kir_kernel *k, const kir_stmt *loop) {
    if (!loop || loop->kind != KIR_S_FOR || loop->step != 1 || !kir_sched_innermost(loop)) return 0;
    return accesses_ok(k, loop, loop->var) && outer_ok(k, loop);
}

int kir_sched_vectorize(kir_kernel *k, kir_stmt *loop) {
    if (!kir_sched_vector_legal(k, loop)) return KF_E_INVALID;
    loop->loop = KIR_LOOP_VECTOR;
    return 0;
}

int kir_sched_parallelize(kir_kernel *k, kir_stmt *loop) {
    if (!loop || loop->kind != KIR_S_FOR || loop->step != 1) return 0;
    if (!accesses_ok(k, loop, loop->var) || !outer_ok(k, loop)) return 0;
    loop->loop = KIR_LOOP_PARALLEL;
    return 1;
}

int kir_sched_auto_vector(kir_kernel *k, int64_t chunk) {
    if (chunk < 8) chunk = 8;
    int n = kir_sched_loops(k->body, NULL, 0);
    if (n <= 0) return 0;
    kir_stmt **loops = malloc(sizeof *loops * (size_t)n);
    if (!loops) return KF_E_NOMEM;
    kir_sched_loops(k->body, loops, n);
    int done = 0, rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        kir_stmt *l = loops[i];
        if (!kir_sched_innermost(l)) continue;
        if (l->loop == KIR_LOOP_SERIAL) {
            /* r / C and r % C in the indices: split the loop, then try its inner part */
            int u = kir_sched_unflatten(k, l);
            if (u < 0) {
                rc = u;
                break;
            }
            if (u == 1 && l->n_body == 1 && l->body[0]->kind == KIR_S_FOR) l = l->body[0];
        }
        if (!kir_sched_vector_legal(k, l)) continue;
        if (l->loop == KIR_LOOP_SERIAL) {
            l->loop = KIR_LOOP_VECTOR;
            done++;
        } else if (l->loop == KIR_LOOP_PARALLEL) {
            int64_t trip = kir_sched_trip(l);
            if (trip < 2 * chunk) continue;
            kir_stmt *o, *in;
            rc = kir_sched_split(k, l, chunk, &o, &in);
            if (!rc) {
                in->loop = KIR_LOOP_VECTOR;
                done++;
            }
        }
    }
    free(loops);
    return rc ? rc : done;
}

static void serial(kir_stmt *s) {
    if (!s) return;
    if (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_PARALLEL) s->loop = KIR_LOOP_SERIAL;
    for (int i = 0; i < s->n_body; i++) serial(s->body[i]);
    for (int i = 0; i < s->n_els; i++) serial(s->els[i]);
}

int kir_sched_serialize(kir_kernel *k) {
    serial(k->body);
    return 0;
}
