/* kir_build.c: the kernel IR builders: expressions (with type promotion) and statements.
 *
 * Promotion: the types are ordered BOOL < I32 < I64 < F32 < F64 and a binary op computes in
 * the larger of its operands' types (any float wins over any int; the wider float or int
 * wins). Comparisons, AND, OR, NOT and ISNAN yield BOOL. Arithmetic on two BOOLs computes in
 * I32. Transcendental unary ops (exp, log, sqrt, tanh, sigmoid, ...) on an int yield F32,
 * like torch's int -> float promotion. A NULL operand (a failed allocation) yields NULL. */
#include "kir/kir.h"
#include "kir/kir_int.h"

static kir_expr *kir_expr_new(kir_kernel *k, kir_expr_kind kind, kir_type type) {
    kir_expr *e = kir_alloc(k, sizeof *e);
    if (!e) return NULL;
    e->kind = kind;
    e->type = type;
    e->var = -1;
    e->buf = -1;
    return e;
}

kir_expr *kir_int(kir_kernel *k, int64_t v) {
    kir_expr *e = kir_expr_new(k, KIR_E_CONST_I, KIR_T_I64);
    if (e) e->ival = v;
    return e;
}

kir_expr *kir_flt(kir_kernel *k, double v, kir_type t) {
    kir_expr *e = kir_expr_new(k, KIR_E_CONST_F, t == KIR_T_F64 ? KIR_T_F64 : KIR_T_F32);
    if (e) e->fval = v;
    return e;
}

kir_expr *kir_var(kir_kernel *k, int var) {
    kir_type t = (k && var >= 0 && var < k->n_vars) ? k->vars[var].type : KIR_T_I64;
    kir_expr *e = kir_expr_new(k, KIR_E_VAR, t);
    if (e) e->var = var;
    return e;
}

kir_expr *kir_load(kir_kernel *k, int buf, kir_expr *idx) {
    if (!idx) return NULL;
    kir_type t = (k && buf >= 0 && buf < k->n_bufs) ? kir_type_of_dtype(k->bufs[buf].dtype) : KIR_T_F32;
    kir_expr *e = kir_expr_new(k, KIR_E_LOAD, t);
    if (!e) return NULL;
    e->buf = buf;
    e->a = idx;
    return e;
}

static int kir_is_float(kir_type t) { return t == KIR_T_F32 || t == KIR_T_F64; }

static kir_type kir_un_type(kir_unop op, kir_type a) {
    switch (op) {
    case KIR_NOT: case KIR_ISNAN: return KIR_T_BOOL;
    case KIR_NEG: case KIR_SIGN: return a == KIR_T_BOOL ? KIR_T_I32 : a;
    case KIR_ABS: case KIR_FLOOR: case KIR_CEIL: case KIR_ROUND: return a;
    default: return kir_is_float(a) ? a : KIR_T_F32;
    }
}

kir_expr *kir_un(kir_kernel *k, kir_unop op, kir_expr *a) {
    if (!a) return NULL;
    kir_expr *e = kir_expr_new(k, KIR_E_UN, kir_un_type(op, a->type));
    if (!e) return NULL;
    e->op = op;
    e->a = a;
    return e;
}

static kir_type kir_bin_type(kir_binop op, kir_type a, kir_type b) {
    kir_type t = a > b ? a : b;
    switch (op) {
    case KIR_LT: case KIR_LE: case KIR_GT: case KIR_GE: case KIR_EQ: case KIR_NE:
    case KIR_AND: case KIR_OR:
        return KIR_T_BOOL;
    case KIR_MAX: case KIR_MIN:
        return t;
    default:
        return t == KIR_T_BOOL ? KIR_T_I32 : t;
    }
}

kir_expr *kir_bin(kir_kernel *k, kir_binop op, kir_expr *a, kir_expr *b) {
    if (!a || !b) return NULL;
    kir_expr *e = kir_expr_new(k, KIR_E_BIN, kir_bin_type(op, a->type, b->type));
    if (!e) return NULL;
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}

kir_expr *kir_select(kir_kernel *k, kir_expr *cond, kir_expr *a, kir_expr *b) {
    if (!cond || !a || !b) return NULL;
    kir_expr *e = kir_expr_new(k, KIR_E_SELECT, a->type > b->type ? a->type : b->type);
    if (!e) return NULL;
    e->a = cond;
    e->b = a;
    e->c = b;
    return e;
}

kir_expr *kir_cast(kir_kernel *k, kir_type t, kir_expr *a) {
    if (!a) return NULL;
    kir_expr *e = kir_expr_new(k, KIR_E_CAST, t);
    if (e) e->a = a;
    return e;
}

kir_expr *kir_fma(kir_kernel *k, kir_expr *a, kir_expr *b, kir_expr *c) {
    if (!a || !b || !c) return NULL;
    kir_type t = a->type > b->type ? a->type : b->type;
    if (c->type > t) t = c->type;
    if (!kir_is_float(t)) return NULL;
    kir_expr *e = kir_expr_new(k, KIR_E_FMA, t);
    if (!e) return NULL;
    e->a = a;
    e->b = b;
    e->c = c;
    return e;
}

kir_expr *kir_add(kir_kernel *k, kir_expr *a, kir_expr *b) { return kir_bin(k, KIR_ADD, a, b); }
kir_expr *kir_mul(kir_kernel *k, kir_expr *a, kir_expr *b) { return kir_bin(k, KIR_MUL, a, b); }

static kir_stmt *kir_stmt_new(kir_kernel *k, kir_stmt_kind kind) {
    kir_stmt *s = kir_alloc(k, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    s->var = -1;
    s->buf = -1;
    s->step = 1;
    return s;
}

kir_stmt *kir_block(kir_kernel *k) { return kir_stmt_new(k, KIR_S_BLOCK); }

kir_stmt *kir_for(kir_kernel *k, int var, kir_expr *lo, kir_expr *hi, int64_t step, kir_loop_kind loop) {
    if (!lo || !hi) return NULL;
    kir_stmt *s = kir_stmt_new(k, KIR_S_FOR);
    if (!s) return NULL;
    s->var = var;
    s->lo = lo;
    s->hi = hi;
    s->step = step;
    s->loop = loop;
    return s;
}

kir_stmt *kir_store(kir_kernel *k, int buf, kir_expr *idx, kir_expr *val) {
    if (!idx || !val) return NULL;
    kir_stmt *s = kir_stmt_new(k, KIR_S_STORE);
    if (!s) return NULL;
    s->buf = buf;
    s->idx = idx;
    s->val = val;
    return s;
}

kir_stmt *kir_decl(kir_kernel *k, int var, kir_expr *init) {
    kir_stmt *s = kir_stmt_new(k, KIR_S_DECL);
    if (!s) return NULL;
    s->var = var;
    s->val = init;
    return s;
}

kir_stmt *kir_assign(kir_kernel *k, int var, kir_expr *val) {
    if (!val) return NULL;
    kir_stmt *s = kir_stmt_new(k, KIR_S_ASSIGN);
    if (!s) return NULL;
    s->var = var;
    s->val = val;
    return s;
}

kir_stmt *kir_if(kir_kernel *k, kir_expr *cond) {
    if (!cond) return NULL;
    kir_stmt *s = kir_stmt_new(k, KIR_S_IF);
    if (s) s->cond = cond;
    return s;
}

kir_stmt *kir_barrier(kir_kernel *k) { return kir_stmt_new(k, KIR_S_BARRIER); }

void kir_append(kir_kernel *k, kir_stmt *parent, kir_stmt *child) {
    if (!parent || !child) {
        kir_mark_failed(k, "kir_append: NULL statement (a builder failed)");
        return;
    }
    if (parent->kind != KIR_S_BLOCK && parent->kind != KIR_S_FOR && parent->kind != KIR_S_IF) {
        kir_mark_failed(k, "kir_append: parent is not a BLOCK, FOR or IF");
        return;
    }
    kir_stmt **b = kir_grow(k, parent->body, parent->n_body, &parent->cap_body, sizeof *b);
    if (!b) return;
    parent->body = b;
    parent->body[parent->n_body++] = child;
}

void kir_append_else(kir_kernel *k, kir_stmt *parent_if, kir_stmt *child) {
    if (!parent_if || !child || parent_if->kind != KIR_S_IF) {
        kir_mark_failed(k, "kir_append_else: NULL statement or parent is not an IF");
        return;
    }
    kir_stmt **b = kir_grow(k, parent_if->els, parent_if->n_els, &parent_if->cap_els, sizeof *b);
    if (!b) return;
    parent_if->els = b;
    parent_if->els[parent_if->n_els++] = child;
}
