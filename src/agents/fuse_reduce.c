/* fuse_reduce.c: reductions over a dim that is not the innermost one (sum / mean / prod /
 * amax / amin / max.dim / min.dim / argmax / argmin of x[outer, R, inner] over R). The naive
 * builder gives each output element its own strided walk down a column, which touches one
 * float per cache line; here a thread takes a block of `inner` positions and, for each r,
 * folds the contiguous row segment x[outer, r, block] into a row of accumulators (double for
 * sums and products, the input type plus an index for extremes), so loads are contiguous
 * and the row loops vectorise. A last pass writes the outputs; the group's elementwise
 * epilogue follows as one in-place kernel. Extremes over the innermost dim (a max is not an
 * OpenMP reduction) fold each row into 16 lanes the same way, then merge the lanes. */
#include <math.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef enum { CR_SUM, CR_MEAN, CR_PROD, CR_MAX, CR_MIN, CR_ARGMAX, CR_ARGMIN } cr_kind;

#define CR_LANES 16

static int is_arg_or_ext(cr_kind k) { return k == CR_MAX || k == CR_MIN || k == CR_ARGMAX || k == CR_ARGMIN; }

typedef struct cr_spec {
    cr_kind kind;
    int in, val_out, idx_out;      /* values; outputs -1 when absent */
    int64_t outer, R, S;
} cr_spec;

static int cr_make(const kf_graph *g, const kf_node *n, cr_spec *c) {
    memset(c, 0, sizeof *c);
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    static const struct { const char *name; cr_kind kind; } ops[] = {
        {"sum", CR_SUM}, {"mean", CR_MEAN}, {"prod", CR_PROD}, {"amax", CR_MAX}, {"amin", CR_MIN},
        {"max", CR_MAX}, {"min", CR_MIN}, {"argmax", CR_ARGMAX}, {"argmin", CR_ARGMIN}};
    int found = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i].name) == 0) {
            c->kind = ops[i].kind;
            found = 1;
        }
    if (!found || n->n_outs < 1) return 0;
    if ((!strcmp(op, "max") || !strcmp(op, "min")) && kf_lw_arg_tensor(n, "other", 1) >= 0) return 0;
    c->in = kf_lw_arg_tensor(n, "self", 0);
    if (c->in < 0) c->in = kf_lw_arg_tensor(n, "input", 0);
    if (c->in < 0) return 0;
    const kf_tdesc *d = &g->values[c->in].desc;
    if (d->dtype != KF_F32) return 0;
    /* sum/mean with a dtype argument or integer outputs are left to the op builder */
    const kf_arg *dt = kf_lw_arg(n, "dtype", -1);
    if (dt && dt->kind != KF_ARG_NONE) return 0;
    int is_arg = c->kind == CR_ARGMAX || c->kind == CR_ARGMIN;
    c->val_out = is_arg ? -1 : n->outs[0];
    c->idx_out = is_arg ? n->outs[0] : (n->n_outs > 1 ? n->outs[1] : -1);
    if (c->val_out >= 0 && g->values[c->val_out].desc.dtype != KF_F32) return 0;
    if (c->idx_out >= 0 && g->values[c->idx_out].desc.dtype != KF_I64) return 0;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.g = g;
    w.n = n;
    kf_red r;
    if (kf_red_plan_node(&r, &w, c->in, "dim", 1)) return 0;
    if (r.n_red == 1 && r.red_stride[0] == 1 && r.red_shape[0] >= 4 * CR_LANES && is_arg_or_ext(c->kind)) {
        /* the innermost dim: rows folded into lanes */
        c->R = r.red_shape[0];
        c->S = 1;
        c->outer = kf_tdesc_numel(d) / c->R;
        return 1;
    }
    if (r.n_red != 1 || r.red_stride[0] <= 1) return 0;
    c->R = r.red_shape[0];
    c->S = r.red_stride[0];
    if (r.n_kept == 1 && r.kept_stride[0] == 1 && r.kept_shape[0] == c->S) {
        c->outer = 1;
    } else if (r.n_kept == 2 && r.kept_stride[1] == 1 && r.kept_shape[1] == c->S &&
               r.kept_stride[0] == c->R * c->S) {
        c->outer = r.kept_shape[0];
    } else {
        return 0;
    }
    return 1;
}

int kf_fl_reduce_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_OP) return 0;
    cr_spec c;
    return cr_make(g, &g->nodes[an], &c);
}

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

/* A vector loop over the block's positions; *j gets the position variable. */
static kir_stmt *row_loop(kir_kernel *k, kir_stmt *parent, int j0, int jn, int *j) {
    *j = kir_add_var(k, "j", KIR_T_I64);
    kir_stmt *l = kir_for(k, *j, V(k, j0), V(k, jn), 1, KIR_LOOP_VECTOR);
    kir_append(k, parent, l);
    return l;
}

/* take: v beats the best b (index bi) for a max (big) or min; NaN wins, the first one kept. */
static kir_expr *take_expr(kir_kernel *k, int big, kir_expr *v, kir_expr *b, kir_expr *bi) {
    kir_expr *t = kir_bin(k, big ? KIR_GT : KIR_LT, v, b);
    t = kir_bin(k, KIR_OR, t, kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, kir_expr_clone(k, v)),
                                      kir_un(k, KIR_NOT, kir_un(k, KIR_ISNAN, kir_expr_clone(k, b)))));
    return kir_bin(k, KIR_OR, t, kir_bin(k, KIR_LT, bi, I(k, 0)));
}

/* Extremes over the innermost dim: each row is folded into CR_LANES lanes (value and first
 * index per lane, vectorised), then the lanes and the tail are merged in order. */
static int reduce_rows(kf_fl *c, int gi, const cr_spec *cs, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    int big = cs->kind == CR_MAX || cs->kind == CR_ARGMAX;
    int partp = kf_fl_scratch(c, KF_F32, cs->outer * CR_LANES), pidxp = kf_fl_scratch(c, KF_I64, cs->outer * CR_LANES);
    if (partp < 0 || pidxp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int valp = -1;
    if (cs->val_out >= 0 && (c->plan->stored[cs->val_out] || kf_fl_has_epilogue(c, gi))) valp = kf_fl_gemm_out(c, gi);
    int idx_outp = cs->idx_out >= 0 && c->plan->stored[cs->idx_out] ? kf_fl_value_pbuf(c, cs->idx_out) : -1;
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int pb = kf_fl_kbuf(c, partp, 1), ib = kf_fl_kbuf(c, pidxp, 1);
    int row = kir_add_var(k, "row", KIR_T_I64), base = kir_add_var(k, "base", KIR_T_I64), lb = kir_add_var(k, "lb", KIR_T_I64);
    kir_stmt *rl = kir_for(k, row, I(k, 0), I(k, cs->outer), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, rl);
    kir_append(k, rl, kir_decl(k, base, kir_mul(k, V(k, row), I(k, cs->R))));
    kir_append(k, rl, kir_decl(k, lb, kir_mul(k, V(k, row), I(k, CR_LANES))));
    int l = kir_add_var(k, "l", KIR_T_I64);
    kir_stmt *il = kir_for(k, l, I(k, 0), I(k, CR_LANES), 1, KIR_LOOP_VECTOR);
    kir_append(k, rl, il);
    kir_append(k, il, kir_store(k, pb, kir_add(k, V(k, lb), V(k, l)), kir_flt(k, big ? -INFINITY : INFINITY, KIR_T_F32)));
    kir_append(k, il, kir_store(k, ib, kir_add(k, V(k, lb), V(k, l)), I(k, -1)));
    int64_t chunks = cs->R / CR_LANES;
    int ch;
    kir_stmt *cl = kf_lw_loop(&(kf_lw){.k = k}, rl, "ch", chunks, KIR_LOOP_SERIAL, &ch);
    int cb = kir_add_var(k, "cb", KIR_T_I64);
    kir_append(k, cl, kir_decl(k, cb, kir_mul(k, V(k, ch), I(k, CR_LANES))));
    l = kir_add_var(k, "l", KIR_T_I64);
    kir_stmt *ml = kir_for(k, l, I(k, 0), I(k, CR_LANES), 1, KIR_LOOP_VECTOR);
    kir_append(k, cl, ml);
    kir_expr *xe = kf_fexpr_elem(&x, cs->in, kir_add(k, V(k, base), kir_add(k, V(k, cb), V(k, l))));
    if (!xe) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: reduction input has no storage");
    }
    int xv = kir_add_var(k, "x", KIR_T_F32), bv = kir_add_var(k, "b", KIR_T_F32), bi = kir_add_var(k, "bi", KIR_T_I64);
    kir_append(k, ml, kir_decl(k, xv, kf_lw_cvt(k, KIR_T_F32, xe)));
    kir_append(k, ml, kir_decl(k, bv, kir_load(k, pb, kir_add(k, V(k, lb), V(k, l)))));
    kir_append(k, ml, kir_decl(k, bi, kir_load(k, ib, kir_add(k, V(k, lb), V(k, l)))));
    int tv = kir_add_var(k, "take", KIR_T_BOOL);
    kir_append(k, ml, kir_decl(k, tv, take_expr(k, big, V(k, xv), V(k, bv), V(k, bi))));
    kir_append(k, ml, kir_store(k, pb, kir_add(k, V(k, lb), V(k, l)), kir_select(k, V(k, tv), V(k, xv), V(k, bv))));
    kir_append(k, ml, kir_store(k, ib, kir_add(k, V(k, lb), V(k, l)),
                                kir_select(k, V(k, tv), kir_add(k, V(k, cb), V(k, l)), V(k, bi))));
    /* merge the lanes (ties: the smaller index) and the tail, in order */
    int best = kir_add_var(k, "best", KIR_T_F32), bidx = kir_add_var(k, "bidx", KIR_T_I64);
    kir_append(k, rl, kir_decl(k, best, kir_flt(k, big ? -INFINITY : INFINITY, KIR_T_F32)));
    kir_append(k, rl, kir_decl(k, bidx, I(k, -1)));
    int f;
    kir_stmt *fl = kf_lw_loop(&(kf_lw){.k = k}, rl, "f", CR_LANES, KIR_LOOP_SERIAL, &f);
    int lv = kir_add_var(k, "lv", KIR_T_F32), li = kir_add_var(k, "li", KIR_T_I64);
    kir_append(k, fl, kir_decl(k, lv, kir_load(k, pb, kir_add(k, V(k, lb), V(k, f)))));
    kir_append(k, fl, kir_decl(k, li, kir_load(k, ib, kir_add(k, V(k, lb), V(k, f)))));
    kir_expr *same = kir_bin(k, KIR_OR, kir_bin(k, KIR_EQ, V(k, lv), V(k, best)),
                             kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, V(k, lv)), kir_un(k, KIR_ISNAN, V(k, best))));
    kir_expr *tk = kir_bin(k, KIR_OR, take_expr(k, big, V(k, lv), V(k, best), V(k, bidx)),
                           kir_bin(k, KIR_AND, same, kir_bin(k, KIR_LT, V(k, li), V(k, bidx))));
    kir_stmt *iff = kir_if(k, kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, V(k, li), I(k, 0)), tk));
    kir_append(k, fl, iff);
    kir_append(k, iff, kir_assign(k, best, V(k, lv)));
    kir_append(k, iff, kir_assign(k, bidx, V(k, li)));
    if (chunks * CR_LANES < cs->R) {
        int t;
        kir_stmt *tl = kf_lw_loop(&(kf_lw){.k = k}, rl, "t", cs->R - chunks * CR_LANES, KIR_LOOP_SERIAL, &t);
        int ti = kir_add_var(k, "ti", KIR_T_I64);
        kir_append(k, tl, kir_decl(k, ti, kir_add(k, V(k, t), I(k, chunks * CR_LANES))));
        kir_expr *te = kf_fexpr_elem(&x, cs->in, kir_add(k, V(k, base), V(k, ti)));
        if (!te) {
            kir_kernel_free(c->k);
            c->k = NULL;
            return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: reduction input has no storage");
        }
        int tx = kir_add_var(k, "tx", KIR_T_F32);
        kir_append(k, tl, kir_decl(k, tx, kf_lw_cvt(k, KIR_T_F32, te)));
        kir_stmt *ti_if = kir_if(k, take_expr(k, big, V(k, tx), V(k, best), V(k, bidx)));
        kir_append(k, tl, ti_if);
        kir_append(k, ti_if, kir_assign(k, best, V(k, tx)));
        kir_append(k, ti_if, kir_assign(k, bidx, V(k, ti)));
    }
    if (valp >= 0) kir_append(k, rl, kir_store(k, kf_fl_kbuf(c, valp, 1), V(k, row), V(k, best)));
    if (idx_outp >= 0) kir_append(k, rl, kir_store(k, kf_fl_kbuf(c, idx_outp, 1), V(k, row), V(k, bidx)));
    kf_gsched ks = *s;
    ks.vec = 0;
    rc = kf_fl_kernel_end(c, &ks, err);
    if (rc || cs->val_out < 0) return rc;
    if (!kf_fl_has_epilogue(c, gi) && (!c->plan->stored[cs->val_out] || kf_fl_value_pbuf(c, cs->val_out) == valp))
        return 0;
    (void)gr;
    return kf_fl_ew_loop(c, gi, valp, -1, NULL, 0.0, s, err);
}

int kf_fl_reduce_cols(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    cr_spec cs;
    if (!cr_make(c->g, n, &cs)) return kf_lw_unsupported(err, n, "not a column reduction");
    if (cs.S == 1) return reduce_rows(c, gi, &cs, s, err);
    int is_ext = cs.kind == CR_MAX || cs.kind == CR_MIN || cs.kind == CR_ARGMAX || cs.kind == CR_ARGMIN;
    int64_t total = cs.outer * cs.S;
    /* accumulators */
    int accp = kf_fl_scratch(c, is_ext ? KF_F32 : KF_F64, total);
    int idxp = is_ext ? kf_fl_scratch(c, KF_I64, total) : -1;
    if (accp < 0 || (is_ext && idxp < 0)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int valp = -1;
    if (cs.val_out >= 0 && (c->plan->stored[cs.val_out] || kf_fl_has_epilogue(c, gi))) valp = kf_fl_gemm_out(c, gi);
    int idx_outp = cs.idx_out >= 0 && c->plan->stored[cs.idx_out] ? kf_fl_value_pbuf(c, cs.idx_out) : -1;
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int ab = kf_fl_kbuf(c, accp, 1), ib = idxp >= 0 ? kf_fl_kbuf(c, idxp, 1) : -1;
    int64_t ch = cs.S < 512 ? cs.S : 512;
    int64_t nch = (cs.S + ch - 1) / ch;
    int t = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, t, I(k, 0), I(k, cs.outer * nch), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    int ob = kir_add_var(k, "ob", KIR_T_I64), j0 = kir_add_var(k, "j0", KIR_T_I64), jn = kir_add_var(k, "jn", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, ob, kir_bin(k, KIR_DIV, V(k, t), I(k, nch))));
    kir_append(k, tl, kir_decl(k, j0, kir_add(k, kir_mul(k, V(k, ob), I(k, cs.S)),
                                               kir_mul(k, kir_bin(k, KIR_MOD, V(k, t), I(k, nch)), I(k, ch)))));
    kir_append(k, tl, kir_decl(k, jn, kir_bin(k, KIR_MIN, kir_add(k, V(k, j0), I(k, ch)),
                                               kir_mul(k, kir_add(k, V(k, ob), I(k, 1)), I(k, cs.S)))));
    /* init */
    int j;
    kir_stmt *l = row_loop(k, tl, j0, jn, &j);
    kir_expr *init;
    if (cs.kind == CR_PROD) init = kir_flt(k, 1.0, KIR_T_F64);
    else if (!is_ext) init = kir_flt(k, 0.0, KIR_T_F64);
    else init = kir_flt(k, (cs.kind == CR_MAX || cs.kind == CR_ARGMAX) ? -INFINITY : INFINITY, KIR_T_F32);
    kir_append(k, l, kir_store(k, ab, V(k, j), init));
    if (is_ext) kir_append(k, l, kir_store(k, ib, V(k, j), I(k, -1)));
    /* fold the rows: positions p = ob * S + q map to x[(ob * R + r) * S + q] */
    int r;
    kir_stmt *rl = kf_lw_loop(&(kf_lw){.k = k}, tl, "r", cs.R, KIR_LOOP_SERIAL, &r);
    int rb = kir_add_var(k, "rb", KIR_T_I64);
    kir_append(k, rl, kir_decl(k, rb, kir_mul(k, kir_add(k, kir_mul(k, V(k, ob), I(k, cs.R - 1)), V(k, r)), I(k, cs.S))));
    l = row_loop(k, rl, j0, jn, &j);
    kir_expr *xe = kf_fexpr_elem(&x, cs.in, kir_add(k, V(k, rb), V(k, j)));
    if (!xe) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: reduction input has no storage");
    }
    int xv = kir_add_var(k, "x", is_ext ? KIR_T_F32 : KIR_T_F64);
    kir_append(k, l, kir_decl(k, xv, kf_lw_cvt(k, is_ext ? KIR_T_F32 : KIR_T_F64, xe)));
    if (!is_ext) {
        kir_binop op = cs.kind == CR_PROD ? KIR_MUL : KIR_ADD;
        kir_append(k, l, kir_store(k, ab, V(k, j), kir_bin(k, op, kir_load(k, ab, V(k, j)), V(k, xv))));
    } else {
        int big = cs.kind == CR_MAX || cs.kind == CR_ARGMAX;
        int bv = kir_add_var(k, "best", KIR_T_F32);
        kir_append(k, l, kir_decl(k, bv, kir_load(k, ab, V(k, j))));
        kir_expr *take = kir_bin(k, big ? KIR_GT : KIR_LT, V(k, xv), V(k, bv));
        take = kir_bin(k, KIR_OR, take, kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, V(k, xv)),
                                                kir_un(k, KIR_NOT, kir_un(k, KIR_ISNAN, V(k, bv)))));
        take = kir_bin(k, KIR_OR, take, kir_bin(k, KIR_LT, kir_load(k, ib, V(k, j)), I(k, 0)));
        int tv = kir_add_var(k, "take", KIR_T_BOOL);
        kir_append(k, l, kir_decl(k, tv, take));
        kir_append(k, l, kir_store(k, ab, V(k, j), kir_select(k, V(k, tv), V(k, xv), V(k, bv))));
        kir_append(k, l, kir_store(k, ib, V(k, j), kir_select(k, V(k, tv), V(k, r), kir_load(k, ib, V(k, j)))));
    }
    /* outputs */
    l = row_loop(k, tl, j0, jn, &j);
    if (valp >= 0) {
        kir_expr *y = kir_load(k, ab, V(k, j));
        if (cs.kind == CR_MEAN) y = kir_bin(k, KIR_DIV, y, kir_flt(k, (double)cs.R, KIR_T_F64));
        kir_append(k, l, kir_store(k, kf_fl_kbuf(c, valp, 1), V(k, j), kf_lw_cvt(k, KIR_T_F32, y)));
    }
    if (idx_outp >= 0) kir_append(k, l, kir_store(k, kf_fl_kbuf(c, idx_outp, 1), V(k, j), kir_load(k, ib, V(k, j))));
    kf_gsched ks = *s;
    ks.vec = 0;
    rc = kf_fl_kernel_end(c, &ks, err);
    if (rc) return rc;
    if (cs.val_out < 0) return 0;
    if (!kf_fl_has_epilogue(c, gi) && (!c->plan->stored[cs.val_out] || kf_fl_value_pbuf(c, cs.val_out) == valp))
        return 0;
    return kf_fl_ew_loop(c, gi, valp, -1, NULL, 0.0, s, err);
}
