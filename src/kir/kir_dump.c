/* kir_dump.c: a readable text form of a kernel, one statement a line, indented by nesting.
 * For people and logs only; nothing parses it. Example:
 *   kernel add(out: f32 w, x: f32, y: f32)
 *     for i in [0, 8) step 1 parallel
 *       out[i] = (x[i] + y[i])
 * Float constants carry their type (1.5f, 0.1d); "w" marks buffers the kernel writes. */
#include "kir/kir.h"
#include "kir/kir_int.h"

#include <math.h>

static const char *kir_dump_var(const kir_kernel *k, int v) {
    return v >= 0 && v < k->n_vars ? k->vars[v].name : "?var";
}

static const char *kir_dump_buf(const kir_kernel *k, int b) {
    return b >= 0 && b < k->n_bufs ? k->bufs[b].name : "?buf";
}

static void kir_dump_expr(const kir_kernel *k, const kir_expr *e, kf_str *out) {
    if (!e) {
        kf_str_append(out, "null");
        return;
    }
    switch (e->kind) {
    case KIR_E_CONST_I:
        kf_str_appendf(out, "%lld", (long long)e->ival);
        break;
    case KIR_E_CONST_F:
        if (isnan(e->fval)) kf_str_append(out, "nan");
        else if (isinf(e->fval)) kf_str_append(out, e->fval < 0 ? "-inf" : "inf");
        else if (e->type == KIR_T_F32) kf_str_appendf(out, "%.9gf", (double)(float)e->fval);
        else kf_str_appendf(out, "%.17gd", e->fval);
        break;
    case KIR_E_VAR:
        kf_str_append(out, kir_dump_var(k, e->var));
        break;
    case KIR_E_LOAD:
        kf_str_appendf(out, "%s[", kir_dump_buf(k, e->buf));
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, "]");
        break;
    case KIR_E_UN:
        kf_str_appendf(out, "%s(", kir_unop_name(e->op));
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, ")");
        break;
    case KIR_E_BIN: {
        const char *n = kir_binop_name(e->op);
        int infix = n[0] < 'a' || n[0] > 'z';
        kf_str_append(out, infix ? "(" : n);
        if (!infix) kf_str_append(out, "(");
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, infix ? " " : ", ");
        if (infix) kf_str_appendf(out, "%s ", n);
        kir_dump_expr(k, e->b, out);
        kf_str_append(out, ")");
        break;
    }
    case KIR_E_SELECT:
        kf_str_append(out, "select(");
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, ", ");
        kir_dump_expr(k, e->b, out);
        kf_str_append(out, ", ");
        kir_dump_expr(k, e->c, out);
        kf_str_append(out, ")");
        break;
    case KIR_E_FMA:
        kf_str_append(out, "fma(");
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, ", ");
        kir_dump_expr(k, e->b, out);
        kf_str_append(out, ", ");
        kir_dump_expr(k, e->c, out);
        kf_str_append(out, ")");
        break;
    case KIR_E_CAST:
        kf_str_appendf(out, "%s(", kir_type_name(e->type));
        kir_dump_expr(k, e->a, out);
        kf_str_append(out, ")");
        break;
    }
}

static void kir_dump_stmt(const kir_kernel *k, const kir_stmt *s, int depth, kf_str *out);

static void kir_dump_list(const kir_kernel *k, kir_stmt *const *l, int n, int depth, kf_str *out) {
    for (int i = 0; i < n; i++) kir_dump_stmt(k, l[i], depth, out);
}

static void kir_dump_stmt(const kir_kernel *k, const kir_stmt *s, int depth, kf_str *out) {
    if (!s) return;
    if (s->kind == KIR_S_BLOCK) {
        kir_dump_list(k, s->body, s->n_body, depth, out);
        return;
    }
    for (int i = 0; i < depth; i++) kf_str_append(out, "  ");
    switch (s->kind) {
    case KIR_S_FOR:
        kf_str_appendf(out, "for %s in [", kir_dump_var(k, s->var));
        kir_dump_expr(k, s->lo, out);
        kf_str_append(out, ", ");
        kir_dump_expr(k, s->hi, out);
        kf_str_appendf(out, ") step %lld %s", (long long)s->step, kir_loop_name(s->loop));
        if (s->loop == KIR_LOOP_UNROLL) kf_str_appendf(out, " %d", s->unroll);
        kf_str_append(out, "\n");
        kir_dump_list(k, s->body, s->n_body, depth + 1, out);
        break;
    case KIR_S_STORE:
        kf_str_appendf(out, "%s[", kir_dump_buf(k, s->buf));
        kir_dump_expr(k, s->idx, out);
        kf_str_append(out, "] = ");
        kir_dump_expr(k, s->val, out);
        kf_str_append(out, "\n");
        break;
    case KIR_S_DECL:
        kf_str_appendf(out, "decl %s %s", s->var >= 0 && s->var < k->n_vars
                                              ? kir_type_name(k->vars[s->var].type) : "?",
                       kir_dump_var(k, s->var));
        if (s->val) {
            kf_str_append(out, " = ");
            kir_dump_expr(k, s->val, out);
        }
        kf_str_append(out, "\n");
        break;
    case KIR_S_ASSIGN:
        kf_str_appendf(out, "%s = ", kir_dump_var(k, s->var));
        kir_dump_expr(k, s->val, out);
        kf_str_append(out, "\n");
        break;
    case KIR_S_IF:
        kf_str_append(out, "if ");
        kir_dump_expr(k, s->cond, out);
        kf_str_append(out, "\n");
        kir_dump_list(k, s->body, s->n_body, depth + 1, out);
        if (s->n_els) {
            for (int i = 0; i < depth; i++) kf_str_append(out, "  ");
            kf_str_append(out, "else\n");
            kir_dump_list(k, s->els, s->n_els, depth + 1, out);
        }
        break;
    case KIR_S_BARRIER:
        kf_str_append(out, "barrier\n");
        break;
    case KIR_S_BLOCK:
        break;
    }
}

void kir_dump(const kir_kernel *k, kf_str *out) {
    if (!k || !out) return;
    kf_str_appendf(out, "kernel %s(", k->name);
    for (int i = 0; i < k->n_bufs; i++)
        kf_str_appendf(out, "%s%s: %s%s", i ? ", " : "", k->bufs[i].name,
                       kf_dtype_name(k->bufs[i].dtype), k->bufs[i].writes ? " w" : "");
    kf_str_append(out, ")\n");
    kir_dump_stmt(k, k->body, 1, out);
}
