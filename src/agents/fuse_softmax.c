/* fuse_softmax.c: softmax and log-softmax over the last dim, in three vectorised passes per
 * row: the maximum, kept as 16 running lane maxima in a small scratch row (a max is not a sum,
 * so it cannot be an OpenMP reduction) and folded at the end; then exp(x - max), summed in
 * double and, for softmax, kept in the output; then the output (exp * 1/sum, or x - max -
 * log(sum)) with the group's elementwise epilogue applied before the store. One exp per
 * element instead of two, every pass a SIMD loop. NaN propagates like torch's: a NaN in a
 * row makes the whole row NaN. */
#include <math.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

#define SM_LANES 16

typedef struct sm_spec { int in, log_form; int64_t rows, R; } sm_spec;

static int sm_make(const kf_graph *g, const kf_node *n, sm_spec *s) {
    memset(s, 0, sizeof *s);
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    if (strcmp(op, "_softmax") && strcmp(op, "softmax") && strcmp(op, "_log_softmax") && strcmp(op, "log_softmax"))
        return 0;
    s->log_form = strstr(op, "log") != NULL;
    s->in = kf_lw_arg_tensor(n, "self", 0);
    if (s->in < 0) s->in = kf_lw_arg_tensor(n, "input", 0);
    if (s->in < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    const kf_tdesc *d = &g->values[s->in].desc, *od = &g->values[n->outs[0]].desc;
    if (d->dtype != KF_F32 || od->dtype != KF_F32 || d->ndim < 1) return 0;
    const kf_arg *dt = kf_lw_arg(n, "dtype", -1);
    if (dt && dt->kind != KF_ARG_NONE) return 0;
    if (kf_lw_arg_int(n, "half_to_float", 2, 0)) return 0;
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(n, "dim", 1, -1), d->ndim);
    for (int j = dim + 1; j < d->ndim; j++)
        if (d->shape[j] != 1) return 0;
    s->R = d->shape[dim];
    if (s->R < 1) return 0;
    s->rows = kf_tdesc_numel(d) / s->R;
    return 1;
}

int kf_fl_softmax_spec(const kf_graph *g, const kf_node *n, int *in, int *log_form, int64_t *rows, int64_t *R) {
    sm_spec s;
    if (!sm_make(g, n, &s)) return 0;
    *in = s.in;
    *log_form = s.log_form;
    *rows = s.rows;
    *R = s.R;
    return 1;
}

int kf_fl_softmax_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_OP) return 0;
    sm_spec s;
    return sm_make(g, &g->nodes[an], &s);
}

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

static kir_stmt *vloop(kir_kernel *k, kir_stmt *parent, const char *hint, kir_expr *lo, kir_expr *hi, int *var) {
    *var = kir_add_var(k, hint, KIR_T_I64);
    kir_stmt *l = kir_for(k, *var, lo, hi, 1, KIR_LOOP_VECTOR);
    kir_append(k, parent, l);
    return l;
}

static int fail_kernel(kf_fl *c, kf_fexpr *x, kf_err *err, const char *why) {
    kir_kernel_free(c->k);
    c->k = NULL;
    return x->rc ? x->rc : kf_fail(err, KF_E_INTERNAL, "fusion: softmax: %s", why);
}

int kf_fl_softmax(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *node = &c->g->nodes[gr->anchor];
    sm_spec sm;
    if (!sm_make(c->g, node, &sm)) return kf_lw_unsupported(err, node, "not a last-dim softmax");
    int lanes = sm.R >= 4 * SM_LANES ? SM_LANES : 0;
    int partp = lanes ? kf_fl_scratch(c, KF_F32, sm.rows * lanes) : -1;
    int tmpp = sm.log_form ? -1 : kf_fl_gemm_out(c, gi);
    if ((lanes && partp < 0) || (!sm.log_form && tmpp < 0)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int tb = sm.log_form ? -1 : kf_fl_kbuf(c, tmpp, 1);
    int row = kir_add_var(k, "row", KIR_T_I64), base = kir_add_var(k, "base", KIR_T_I64);
    kir_stmt *rl = kir_for(k, row, I(k, 0), I(k, sm.rows), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, rl);
    kir_append(k, rl, kir_decl(k, base, kir_mul(k, V(k, row), I(k, sm.R))));
    /* pass 1: the maximum */
    int m = kir_add_var(k, "m", KIR_T_F32);
    kir_append(k, rl, kir_decl(k, m, kir_flt(k, -INFINITY, KIR_T_F32)));
    int64_t full = 0;
    if (lanes) {
        int pb = kf_fl_kbuf(c, partp, 1);
        int pbase = kir_add_var(k, "pb", KIR_T_I64);
        kir_append(k, rl, kir_decl(k, pbase, kir_mul(k, V(k, row), I(k, lanes))));
        int l;
        kir_stmt *il = vloop(k, rl, "l", I(k, 0), I(k, lanes), &l);
        kir_append(k, il, kir_store(k, pb, kir_add(k, V(k, pbase), V(k, l)), kir_flt(k, -INFINITY, KIR_T_F32)));
        full = sm.R / lanes;
        int ch;
        kir_stmt *cl = kf_lw_loop(&(kf_lw){.k = k}, rl, "ch", full, KIR_LOOP_SERIAL, &ch);
        int cb = kir_add_var(k, "cb", KIR_T_I64);
        kir_append(k, cl, kir_decl(k, cb, kir_add(k, V(k, base), kir_mul(k, V(k, ch), I(k, lanes)))));
        kir_stmt *ml = vloop(k, cl, "l", I(k, 0), I(k, lanes), &l);
        kir_expr *xe = kf_fexpr_elem(&x, sm.in, kir_add(k, V(k, cb), V(k, l)));
        if (!xe) return fail_kernel(c, &x, err, "input has no storage");
        int xv = kir_add_var(k, "x", KIR_T_F32), bv = kir_add_var(k, "b", KIR_T_F32);
        kir_append(k, ml, kir_decl(k, xv, kf_lw_cvt(k, KIR_T_F32, xe)));
        kir_append(k, ml, kir_decl(k, bv, kir_load(k, pb, kir_add(k, V(k, pbase), V(k, l)))));
        kir_expr *take = kir_bin(k, KIR_OR, kir_bin(k, KIR_GT, V(k, xv), V(k, bv)), kir_un(k, KIR_ISNAN, V(k, xv)));
        kir_append(k, ml, kir_store(k, pb, kir_add(k, V(k, pbase), V(k, l)), kir_select(k, take, V(k, xv), V(k, bv))));
        int f;
        kir_stmt *fl = kf_lw_loop(&(kf_lw){.k = k}, rl, "l", lanes, KIR_LOOP_SERIAL, &f);
        kir_append(k, fl, kir_assign(k, m, kir_bin(k, KIR_MAX, V(k, m), kir_load(k, pb, kir_add(k, V(k, pbase), V(k, f))))));
        full *= lanes;
    }
    if (full < sm.R) {
        int t;
        kir_stmt *tl = kir_for(k, t = kir_add_var(k, "t", KIR_T_I64), I(k, full), I(k, sm.R), 1, KIR_LOOP_SERIAL);
        kir_append(k, rl, tl);
        kir_expr *xe = kf_fexpr_elem(&x, sm.in, kir_add(k, V(k, base), V(k, t)));
        if (!xe) return fail_kernel(c, &x, err, "input has no storage");
        kir_append(k, tl, kir_assign(k, m, kir_bin(k, KIR_MAX, V(k, m), kf_lw_cvt(k, KIR_T_F32, xe))));
    }
    /* pass 2: sum of exp(x - m), kept in tmp for softmax */
    int sv = kir_add_var(k, "s", KIR_T_F64);
    kir_append(k, rl, kir_decl(k, sv, kir_flt(k, 0.0, KIR_T_F64)));
    int r;
    kir_stmt *sl = vloop(k, rl, "r", I(k, 0), I(k, sm.R), &r);
    kir_expr *xe = kf_fexpr_elem(&x, sm.in, kir_add(k, V(k, base), V(k, r)));
    if (!xe) return fail_kernel(c, &x, err, "input has no storage");
    int ev = kir_add_var(k, "e", KIR_T_F32);
    kir_append(k, sl, kir_decl(k, ev, kir_un(k, KIR_EXP, kir_bin(k, KIR_SUB, kf_lw_cvt(k, KIR_T_F32, xe), V(k, m)))));
    if (!sm.log_form) kir_append(k, sl, kir_store(k, tb, kir_add(k, V(k, base), V(k, r)), V(k, ev)));
    kir_append(k, sl, kir_assign(k, sv, kir_add(k, V(k, sv), kir_cast(k, KIR_T_F64, V(k, ev)))));
    /* pass 3: the output, then the epilogue */
    int sc = kir_add_var(k, "sc", KIR_T_F32);
    kir_expr *scale = sm.log_form ? kir_cast(k, KIR_T_F32, kir_un(k, KIR_LOG, V(k, sv)))
                                  : kir_cast(k, KIR_T_F32, kir_bin(k, KIR_DIV, kir_flt(k, 1.0, KIR_T_F64), V(k, sv)));
    kir_append(k, rl, kir_decl(k, sc, scale));
    kir_stmt *ol = vloop(k, rl, "r", I(k, 0), I(k, sm.R), &r);
    kir_expr *y;
    if (sm.log_form) {
        kir_expr *x3 = kf_fexpr_elem(&x, sm.in, kir_add(k, V(k, base), V(k, r)));
        if (!x3) return fail_kernel(c, &x, err, "input has no storage");
        y = kir_bin(k, KIR_SUB, kir_bin(k, KIR_SUB, kf_lw_cvt(k, KIR_T_F32, x3), V(k, m)), V(k, sc));
    } else {
        y = kir_mul(k, kir_load(k, tb, kir_add(k, V(k, base), V(k, r))), V(k, sc));
    }
    int yv = kir_add_var(k, "y", KIR_T_F32);
    kir_append(k, ol, kir_decl(k, yv, y));
    kir_stmt *blk = kir_block(k);
    kir_append(k, ol, blk);
    rc = kf_fl_epilogue_at(c, &x, gi, blk, yv, kir_add(k, V(k, base), V(k, r)));
    if (rc || x.rc) return fail_kernel(c, &x, err, "epilogue");
    kf_gsched ks = *s;
    if (ks.vec) ks.vec = 3;
    return kf_fl_kernel_end(c, &ks, err);
}
