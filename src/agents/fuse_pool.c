/* fuse_pool.c: max and average pooling (1 to 3 spatial dims, stride, padding, dilation for max)
 * like the direct convolution: the input is padded (-inf for max, 0 for average; the last dim
 * phase-split when strided) so the window taps need no bounds tests, threads split the
 * (image x channel, first output dim) rows, the innermost output dim runs as SIMD lanes with
 * the taps written out, and the group's elementwise epilogue is applied before the store.
 * Max keeps NaN like torch (a NaN in the window wins). Average divides by the window size
 * (count_include_pad), so it only takes windows that the floor formula gives. */
#include <math.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef struct pool_spec {
    int is_max;
    kf_conv_attr a;     /* x, N (images x channels), Cin = 1, I, O, Kd, stride, pad, dil */
} pool_spec;

static void fill3(int64_t *dst, const int64_t *src, int n, int nsd, int64_t dflt) {
    for (int j = 0; j < nsd; j++) dst[j] = n <= 0 ? dflt : (n == 1 ? src[0] : src[j < n ? j : n - 1]);
}

static int pool_make(const kf_graph *g, const kf_fplan *plan, const kf_node *n, pool_spec *p) {
    memset(p, 0, sizeof *p);
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    int nsd;
    if (!strcmp(op, "max_pool1d") || !strcmp(op, "avg_pool1d")) nsd = 1;
    else if (!strcmp(op, "max_pool2d") || !strcmp(op, "max_pool2d_with_indices") || !strcmp(op, "avg_pool2d")) nsd = 2;
    else if (!strcmp(op, "max_pool3d") || !strcmp(op, "max_pool3d_with_indices") || !strcmp(op, "avg_pool3d")) nsd = 3;
    else return 0;
    p->is_max = strncmp(op, "max", 3) == 0;
    kf_conv_attr *a = &p->a;
    a->x = kf_lw_arg_tensor(n, "self", 0);
    if (a->x < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    /* indices: only when nobody needs them */
    for (int j = 1; j < n->n_outs; j++)
        if (n->outs[j] >= 0 && plan->stored[n->outs[j]]) return 0;
    const kf_tdesc *xd = &g->values[a->x].desc, *od = &g->values[n->outs[0]].desc;
    if (xd->dtype != KF_F32 || od->dtype != KF_F32 || xd->ndim < nsd + 1 || od->ndim != xd->ndim) return 0;
    a->nsd = nsd;
    a->N = kf_tdesc_numel(xd);
    for (int j = 0; j < nsd; j++) a->N /= xd->shape[xd->ndim - nsd + j];
    a->Cin = a->Cout = a->cin_g = a->cout_g = a->groups = 1;
    int64_t v[8];
    int c = kf_lw_arg_ints(n, "kernel_size", 1, v, 8);
    if (c <= 0) return 0;
    fill3(a->Kd, v, c, nsd, 1);
    c = kf_lw_arg_ints(n, "stride", 2, v, 8);
    if (c <= 0) fill3(a->stride, a->Kd, nsd, nsd, 1);
    else fill3(a->stride, v, c, nsd, 1);
    c = kf_lw_arg_ints(n, "padding", 3, v, 8);
    fill3(a->pad, v, c, nsd, 0);
    if (p->is_max) {
        c = kf_lw_arg_ints(n, "dilation", 4, v, 8);
        fill3(a->dil, v, c, nsd, 1);
    } else {
        for (int j = 0; j < nsd; j++) a->dil[j] = 1;
        if (!kf_lw_arg_is_none(n, "divisor_override", 6)) return 0;
        int include = (int)kf_lw_arg_int(n, "count_include_pad", 5, 1);
        for (int j = 0; j < nsd && !include; j++)
            if (a->pad[j]) return 0;
    }
    for (int j = 0; j < nsd; j++) {
        a->I[j] = xd->shape[xd->ndim - nsd + j];
        a->O[j] = od->shape[od->ndim - nsd + j];
        if (a->stride[j] < 1 || a->dil[j] < 1 || a->pad[j] < 0 || 2 * a->pad[j] > a->Kd[j] * a->dil[j]) return 0;
        int64_t o = (a->I[j] + 2 * a->pad[j] - a->dil[j] * (a->Kd[j] - 1) - 1) / a->stride[j] + 1;
        if (o != a->O[j]) return 0;
    }
    if (kf_tdesc_numel(od) != a->N * (nsd > 0 ? a->O[0] : 1) * (nsd > 1 ? a->O[1] : 1) * (nsd > 2 ? a->O[2] : 1))
        return 0;
    return 1;
}

int kf_fl_pool_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_OP) return 0;
    pool_spec p;
    return pool_make(g, plan, &g->nodes[an], &p);
}

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

int kf_fl_pool(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *node = &c->g->nodes[gr->anchor];
    pool_spec ps;
    if (!pool_make(c->g, c->plan, node, &ps)) return kf_lw_unsupported(err, node, "not a pooling the direct kernel can run");
    const kf_conv_attr *a = &ps.a;
    int64_t IP[3], PW = 0;
    c->gi = gi;
    int xpp = kf_fl_pad_input(c, a, ps.is_max ? -INFINITY : 0.0, 0, s, IP, &PW, NULL, err);
    if (xpp < 0) return xpp;
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int xb = kf_fl_kbuf(c, xpp, 0);
    int L = a->nsd - 1;
    int64_t o0 = L > 0 ? a->O[0] : 1;
    int t = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, t, I(k, 0), I(k, a->N * o0), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    int nc = kir_add_var(k, "nc", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, nc, kir_bin(k, KIR_DIV, V(k, t), I(k, o0))));
    int ov[3];
    kir_stmt *body = tl;
    if (L > 0) {
        ov[0] = kir_add_var(k, "o0", KIR_T_I64);
        kir_append(k, tl, kir_decl(k, ov[0], kir_bin(k, KIR_MOD, V(k, t), I(k, o0))));
    }
    for (int q = 1; q < L; q++) body = kf_lw_loop(&(kf_lw){.k = k}, body, "or", a->O[q], KIR_LOOP_SERIAL, &ov[q]);
    kir_stmt *vl = kf_lw_loop(&(kf_lw){.k = k}, body, "ow", a->O[L], KIR_LOOP_VECTOR, &ov[L]);
    int acc = kir_add_var(k, "acc", KIR_T_F32);
    kir_append(k, vl, kir_decl(k, acc, kir_flt(k, ps.is_max ? -INFINITY : 0.0, KIR_T_F32)));
    int64_t taps = 1;
    for (int q = 0; q < a->nsd; q++) taps *= a->Kd[q];
    for (int64_t tp = 0; tp < taps; tp++) {
        int64_t kt[3], rem = tp;
        for (int q = a->nsd - 1; q >= 0; q--) {
            kt[q] = rem % a->Kd[q];
            rem /= a->Kd[q];
        }
        kir_expr *xi = V(k, nc);
        for (int q = 0; q < a->nsd; q++) {
            int64_t off = kt[q] * a->dil[q];
            kir_expr *pos;
            if (q < L) {
                pos = kir_add(k, kir_mul(k, V(k, ov[q]), I(k, a->stride[q])), I(k, off));
            } else if (a->stride[q] == 1) {
                pos = kir_add(k, V(k, ov[q]), I(k, off));
            } else {
                pos = kir_add(k, V(k, ov[q]), I(k, (off % a->stride[q]) * PW + off / a->stride[q]));
            }
            xi = kir_add(k, kir_mul(k, xi, I(k, IP[q])), pos);
        }
        int xv = kir_add_var(k, "x", KIR_T_F32);
        kir_append(k, vl, kir_decl(k, xv, kir_load(k, xb, xi)));
        kir_expr *nv;
        if (ps.is_max) {
            kir_expr *take = kir_bin(k, KIR_OR, kir_bin(k, KIR_GT, V(k, xv), V(k, acc)), kir_un(k, KIR_ISNAN, V(k, xv)));
            nv = kir_select(k, take, V(k, xv), V(k, acc));
        } else {
            nv = kir_add(k, V(k, acc), V(k, xv));
        }
        kir_append(k, vl, kir_assign(k, acc, nv));
    }
    int yv = acc;
    if (!ps.is_max) {
        yv = kir_add_var(k, "y", KIR_T_F32);
        kir_append(k, vl, kir_decl(k, yv, kir_bin(k, KIR_DIV, V(k, acc), kir_flt(k, (double)taps, KIR_T_F32))));
    }
    kir_expr *idx = V(k, nc);
    for (int q = 0; q < a->nsd; q++) idx = kir_add(k, kir_mul(k, idx, I(k, a->O[q])), V(k, ov[q]));
    kir_stmt *blk = kir_block(k);
    kir_append(k, vl, blk);
    rc = kf_fl_epilogue_at(c, &x, gi, blk, yv, idx);
    if (rc || x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return rc ? rc : x.rc;
    }
    kf_gsched ks = *s;
    if (ks.vec) ks.vec = 3;
    return kf_fl_kernel_end(c, &ks, err);
}
