/* fuse_bnorm.c: training-mode batch norm of a [N, C] input (BatchNorm1d after a linear
 * layer). The op builder walks each channel's column with a stride of C floats; here a thread
 * takes a block of channels and walks the rows, keeping the block's sums (double, like the
 * builder) in a scratch row, so every pass reads contiguous row segments and vectorises over
 * the channels: the mean, then the sum of squared deviations, then the normalised output with
 * the group's elementwise epilogue (and save_mean / save_invstd when they are needed). */
#include <math.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

#define BN_BLOCK 64

typedef struct bn_spec {
    int in, w, b, out, mean_out, rstd_out;
    double eps;
    int64_t N, C;
} bn_spec;

static int bn_make(const kf_graph *g, const kf_fplan *plan, const kf_node *n, bn_spec *s) {
    memset(s, 0, sizeof *s);
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    if (strcmp(op, "native_batch_norm") && strcmp(op, "_native_batch_norm_legit") &&
        strcmp(op, "_native_batch_norm_legit_functional"))
        return 0;
    if (!kf_lw_arg_int(n, "training", 5, 0)) return 0;
    s->in = kf_lw_arg_tensor(n, "input", 0);
    s->w = kf_lw_arg_tensor(n, "weight", 1);
    s->b = kf_lw_arg_tensor(n, "bias", 2);
    s->eps = kf_lw_arg_num(n, "eps", 7, 1e-5);
    if (s->in < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    const kf_tdesc *d = &g->values[s->in].desc, *od = &g->values[n->outs[0]].desc;
    if (d->ndim != 2 || d->dtype != KF_F32 || od->dtype != KF_F32) return 0;
    if (s->w >= 0 && (g->values[s->w].desc.dtype != KF_F32 || kf_tdesc_numel(&g->values[s->w].desc) != d->shape[1])) return 0;
    if (s->b >= 0 && (g->values[s->b].desc.dtype != KF_F32 || kf_tdesc_numel(&g->values[s->b].desc) != d->shape[1])) return 0;
    s->N = d->shape[0];
    s->C = d->shape[1];
    if (s->N < 1 || s->C < 1) return 0;
    s->out = n->outs[0];
    s->mean_out = n->n_outs > 1 ? n->outs[1] : -1;
    s->rstd_out = n->n_outs > 2 ? n->outs[2] : -1;
    /* the functional form also returns the new running statistics: those are left to the builder */
    for (int j = 3; j < n->n_outs; j++)
        if (n->outs[j] >= 0 && plan->stored[n->outs[j]]) return 0;
    for (int j = 1; j < 3 && j < n->n_outs; j++)
        if (n->outs[j] >= 0 && g->values[n->outs[j]].desc.dtype != KF_F32) return 0;
    return 1;
}

int kf_fl_bnorm_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_OP) return 0;
    bn_spec s;
    return bn_make(g, plan, &g->nodes[an], &s);
}

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

/* for c in [c0, c1) as a vector loop */
static kir_stmt *cloop(kir_kernel *k, kir_stmt *parent, int c0, int c1, int *c) {
    *c = kir_add_var(k, "c", KIR_T_I64);
    kir_stmt *l = kir_for(k, *c, V(k, c0), V(k, c1), 1, KIR_LOOP_VECTOR);
    kir_append(k, parent, l);
    return l;
}

int kf_fl_bnorm(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *node = &c->g->nodes[gr->anchor];
    bn_spec bn;
    if (!bn_make(c->g, c->plan, node, &bn)) return kf_lw_unsupported(err, node, "not a [N, C] training batch norm");
    int sump = kf_fl_scratch(c, KF_F64, bn.C), ssp = kf_fl_scratch(c, KF_F64, bn.C);
    if (sump < 0 || ssp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int sb = kf_fl_kbuf(c, sump, 1), qb = kf_fl_kbuf(c, ssp, 1);
    int64_t nblk = (bn.C + BN_BLOCK - 1) / BN_BLOCK;
    int t = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, t, I(k, 0), I(k, nblk), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    int c0 = kir_add_var(k, "c0", KIR_T_I64), c1 = kir_add_var(k, "c1", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, c0, kir_mul(k, V(k, t), I(k, BN_BLOCK))));
    kir_append(k, tl, kir_decl(k, c1, kir_bin(k, KIR_MIN, kir_add(k, V(k, c0), I(k, BN_BLOCK)), I(k, bn.C))));
    int cv;
    kir_stmt *l = cloop(k, tl, c0, c1, &cv);
    kir_append(k, l, kir_store(k, sb, V(k, cv), kir_flt(k, 0.0, KIR_T_F64)));
    kir_append(k, l, kir_store(k, qb, V(k, cv), kir_flt(k, 0.0, KIR_T_F64)));
    /* pass 1: sums */
    int n;
    kir_stmt *nl = kf_lw_loop(&(kf_lw){.k = k}, tl, "n", bn.N, KIR_LOOP_SERIAL, &n);
    l = cloop(k, nl, c0, c1, &cv);
    kir_expr *xe = kf_fexpr_elem(&x, bn.in, kir_add(k, kir_mul(k, V(k, n), I(k, bn.C)), V(k, cv)));
    if (!xe) goto fail;
    kir_append(k, l, kir_store(k, sb, V(k, cv), kir_add(k, kir_load(k, sb, V(k, cv)), kir_cast(k, KIR_T_F64, xe))));
    l = cloop(k, tl, c0, c1, &cv);
    kir_append(k, l, kir_store(k, sb, V(k, cv), kir_bin(k, KIR_DIV, kir_load(k, sb, V(k, cv)), kir_flt(k, (double)bn.N, KIR_T_F64))));
    /* pass 2: squared deviations */
    nl = kf_lw_loop(&(kf_lw){.k = k}, tl, "n", bn.N, KIR_LOOP_SERIAL, &n);
    l = cloop(k, nl, c0, c1, &cv);
    xe = kf_fexpr_elem(&x, bn.in, kir_add(k, kir_mul(k, V(k, n), I(k, bn.C)), V(k, cv)));
    if (!xe) goto fail;
    int dv = kir_add_var(k, "d", KIR_T_F64);
    kir_append(k, l, kir_decl(k, dv, kir_bin(k, KIR_SUB, kir_cast(k, KIR_T_F64, xe), kir_load(k, sb, V(k, cv)))));
    kir_append(k, l, kir_store(k, qb, V(k, cv), kir_add(k, kir_load(k, qb, V(k, cv)), kir_mul(k, V(k, dv), V(k, dv)))));
    /* rstd into the second scratch row; save_mean / save_invstd */
    l = cloop(k, tl, c0, c1, &cv);
    kir_expr *var = kir_bin(k, KIR_DIV, kir_load(k, qb, V(k, cv)), kir_flt(k, (double)bn.N, KIR_T_F64));
    kir_expr *rstd = kir_bin(k, KIR_DIV, kir_flt(k, 1.0, KIR_T_F64),
                             kir_un(k, KIR_SQRT, kir_add(k, var, kir_flt(k, bn.eps, KIR_T_F64))));
    kir_append(k, l, kir_store(k, qb, V(k, cv), rstd));
    if (bn.mean_out >= 0 && c->plan->stored[bn.mean_out])
        kir_append(k, l, kir_store(k, kf_fl_kbuf(c, kf_fl_value_pbuf(c, bn.mean_out), 1), V(k, cv),
                                   kir_cast(k, KIR_T_F32, kir_load(k, sb, V(k, cv)))));
    if (bn.rstd_out >= 0 && c->plan->stored[bn.rstd_out])
        kir_append(k, l, kir_store(k, kf_fl_kbuf(c, kf_fl_value_pbuf(c, bn.rstd_out), 1), V(k, cv),
                                   kir_cast(k, KIR_T_F32, kir_load(k, qb, V(k, cv)))));
    /* pass 3: ((x - mean) * rstd) * w + b in float, like the builder, then the epilogue */
    nl = kf_lw_loop(&(kf_lw){.k = k}, tl, "n", bn.N, KIR_LOOP_SERIAL, &n);
    l = cloop(k, nl, c0, c1, &cv);
    int iv = kir_add_var(k, "i", KIR_T_I64);
    kir_append(k, l, kir_decl(k, iv, kir_add(k, kir_mul(k, V(k, n), I(k, bn.C)), V(k, cv))));
    xe = kf_fexpr_elem(&x, bn.in, V(k, iv));
    if (!xe) goto fail;
    kir_expr *y = kir_mul(k, kir_bin(k, KIR_SUB, xe, kir_cast(k, KIR_T_F32, kir_load(k, sb, V(k, cv)))),
                          kir_cast(k, KIR_T_F32, kir_load(k, qb, V(k, cv))));
    if (bn.w >= 0) {
        kir_expr *wv = kf_fexpr_elem(&x, bn.w, V(k, cv));
        if (!wv) goto fail;
        y = kir_mul(k, y, wv);
    }
    if (bn.b >= 0) {
        kir_expr *bv = kf_fexpr_elem(&x, bn.b, V(k, cv));
        if (!bv) goto fail;
        y = kir_add(k, y, bv);
    }
    int yv = kir_add_var(k, "y", KIR_T_F32);
    kir_append(k, l, kir_decl(k, yv, y));
    kir_stmt *blk = kir_block(k);
    kir_append(k, l, blk);
    rc = kf_fl_epilogue_at(c, &x, gi, blk, yv, V(k, iv));
    if (rc || x.rc) goto fail;
    {
        kf_gsched ks = *s;
        if (ks.vec) ks.vec = 3;
        return kf_fl_kernel_end(c, &ks, err);
    }
fail:
    kir_kernel_free(c->k);
    c->k = NULL;
    if (rc) return rc;
    return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: batch norm input has no storage");
}
