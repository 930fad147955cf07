/* kir_walk.c: read-only questions about kernel IR trees that renderers and transforms ask:
 * how often a variable is read, and whether a loop's assignments to outer variables are
 * plain sums (so OpenMP may run them as reductions). */
#include "kir/kir.h"
#include "kir/kir_int.h"

#include <stdlib.h>

int kir_expr_uses(const kir_expr *e, int var) {
    if (!e) return 0;
    int n = e->kind == KIR_E_VAR && e->var == var;
    return n + kir_expr_uses(e->a, var) + kir_expr_uses(e->b, var) + kir_expr_uses(e->c, var);
}

int kir_stmt_uses(const kir_stmt *s, int var) {
    if (!s) return 0;
    int n = kir_expr_uses(s->lo, var) + kir_expr_uses(s->hi, var) + kir_expr_uses(s->idx, var) +
            kir_expr_uses(s->val, var) + kir_expr_uses(s->cond, var);
    for (int i = 0; i < s->n_body; i++) n += kir_stmt_uses(s->body[i], var);
    for (int i = 0; i < s->n_els; i++) n += kir_stmt_uses(s->els[i], var);
    return n;
}

/* 1 if val is (var + e) or (e + var) with e not reading var. */
static int kir_is_sum_of(const kir_expr *val, int var) {
    if (!val || val->kind != KIR_E_BIN || val->op != KIR_ADD || !val->a || !val->b) return 0;
    const kir_expr *self = val->a, *rest = val->b;
    if (!(self->kind == KIR_E_VAR && self->var == var)) {
        self = val->b;
        rest = val->a;
    }
    return self->kind == KIR_E_VAR && self->var == var && kir_expr_uses(rest, var) == 0;
}

static void kir_assigns(const kir_stmt *s, int n_vars, const int *outer, int *count, int *other) {
    if (!s) return;
    if (s->kind == KIR_S_ASSIGN && s->var >= 0 && s->var < n_vars && outer[s->var]) {
        count[s->var]++;
        if (!kir_is_sum_of(s->val, s->var)) other[s->var] = 1;
    }
    for (int i = 0; i < s->n_body; i++) kir_assigns(s->body[i], n_vars, outer, count, other);
    for (int i = 0; i < s->n_els; i++) kir_assigns(s->els[i], n_vars, outer, count, other);
}

int kir_loop_outer_assigns(const kir_stmt *loop, int n_vars, const int *outer, int *sum_vars,
                           int *n_sum, int *bad_var) {
    *n_sum = 0;
    *bad_var = -1;
    if (n_vars <= 0) return 1;
    int *count = calloc((size_t)n_vars * 2, sizeof *count);
    if (!count) return -1;
    int *other = count + n_vars;
    kir_assigns(loop, n_vars, outer, count, other);
    int ok = 1;
    for (int v = 0; v < n_vars && ok; v++) {
        if (!count[v]) continue;
        if (other[v] || kir_stmt_uses(loop, v) != count[v]) {
            ok = 0;
            *bad_var = v;
        } else {
            sum_vars[(*n_sum)++] = v;
        }
    }
    free(count);
    return ok;
}
