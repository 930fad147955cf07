/* kir_clone.c: deep copies of expressions and statements within one kernel, and variable
 * substitution, the two tools schedule transforms (tiling, unrolling) are built from.
 *
 * Substitution rebuilds every expression it passes through instead of editing nodes in place,
 * so expressions shared between several parents (a DAG) and replacements that mention the
 * substituted variable itself (i -> i * 4 + j) are both handled correctly. */
#include "kir/kir.h"
#include "kir/kir_int.h"


/* Copies e, replacing VAR(var) by copies of with (when with != NULL). */
static kir_expr *kir_expr_copy(kir_kernel *k, const kir_expr *e, int var, const kir_expr *with) {
    if (!e) return NULL;
    if (with && e->kind == KIR_E_VAR && e->var == var) return kir_expr_copy(k, with, -1, NULL);
    kir_expr *c = kir_alloc(k, sizeof *c);
    if (!c) return NULL;
    *c = *e;
    if (e->a && !(c->a = kir_expr_copy(k, e->a, var, with))) return NULL;
    if (e->b && !(c->b = kir_expr_copy(k, e->b, var, with))) return NULL;
    if (e->c && !(c->c = kir_expr_copy(k, e->c, var, with))) return NULL;
    return c;
}

kir_expr *kir_expr_clone(kir_kernel *k, const kir_expr *e) { return kir_expr_copy(k, e, -1, NULL); }

static kir_stmt **kir_list_clone(kir_kernel *k, kir_stmt *const *list, int n) {
    if (n == 0) return NULL;
    kir_stmt **l = kir_alloc(k, (size_t)n * sizeof *l);
    if (!l) return NULL;
    for (int i = 0; i < n; i++)
        if (!(l[i] = kir_stmt_clone(k, list[i]))) return NULL;
    return l;
}

kir_stmt *kir_stmt_clone(kir_kernel *k, const kir_stmt *s) {
    if (!s) return NULL;
    kir_stmt *c = kir_alloc(k, sizeof *c);
    if (!c) return NULL;
    *c = *s;
    c->lo = kir_expr_clone(k, s->lo);
    c->hi = kir_expr_clone(k, s->hi);
    c->idx = kir_expr_clone(k, s->idx);
    c->val = kir_expr_clone(k, s->val);
    c->cond = kir_expr_clone(k, s->cond);
    if ((s->lo && !c->lo) || (s->hi && !c->hi) || (s->idx && !c->idx) || (s->val && !c->val) ||
        (s->cond && !c->cond))
        return NULL;
    c->body = kir_list_clone(k, s->body, s->n_body);
    c->cap_body = s->n_body;
    c->els = kir_list_clone(k, s->els, s->n_els);
    c->cap_els = s->n_els;
    if ((s->n_body && !c->body) || (s->n_els && !c->els)) return NULL;
    return c;
}

static void kir_subst_slot(kir_kernel *k, kir_expr **slot, int var, const kir_expr *e) {
    if (!*slot) return;
    kir_expr *n = kir_expr_copy(k, *slot, var, e);
    if (n) *slot = n;
}

void kir_subst_var(kir_kernel *k, kir_stmt *s, int var, const kir_expr *e) {
    if (!s || !e) return;
    kir_subst_slot(k, &s->lo, var, e);
    kir_subst_slot(k, &s->hi, var, e);
    kir_subst_slot(k, &s->idx, var, e);
    kir_subst_slot(k, &s->val, var, e);
    kir_subst_slot(k, &s->cond, var, e);
    for (int i = 0; i < s->n_body; i++) kir_subst_var(k, s->body[i], var, e);
    for (int i = 0; i < s->n_els; i++) kir_subst_var(k, s->els[i], var, e);
}
