/* fuse_defer.c: a library step's bias, deferred into the kernels that read its result.
 *
 * A gemm or conv group run by a library step whose only epilogue is its bias (addmm/linear
 * with a bias and nothing fused after it, a convolution with a bias followed by a pool or a
 * norm) would need a whole pass over its output just to add a per-row or per-channel vector:
 * cudnnAddTensor, or the epilogue kernel after a gemm step. On a GPU, where that pass costs as
 * much as the kernel that reads the result next, the bias is left out of the stored value
 * instead and every load of the value adds it (the kernels that read it do one extra load of a
 * small, cached vector per element). The plan says whether to (kf_fplan.defer_bias: the search
 * sets it on GPU targets). This is allowed only where every reader is a kernel whose
 * loads go through element expressions: not when the value (or a view of it) is a graph
 * output, nor when a gemm or conv step reads it directly. */
#include <stdlib.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef struct defer_scan {
    unsigned char *derived;
    int hit;
} defer_scan;

static void defer_mark_hit(int v, void *ctx) {
    defer_scan *d = ctx;
    if (v >= 0 && d->derived[v]) d->hit = 1;
}

/* 1 if no reader of v (directly or through views) needs its stored elements to be final. */
static int defer_ok(const kf_fl *c, int v, kf_err *err, int *rc) {
    const kf_graph *g = c->g;
    const kf_fplan *P = c->plan;
    unsigned char *der = calloc((size_t)g->n_values + 1, 1);
    if (!der) {
        *rc = kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
        return 0;
    }
    der[v] = 1;
    int ok = 1;
    /* views of v, in topological order */
    for (int m = 0; m < g->n_nodes; m++) {
        if (P->kind[m] != KF_FN_ALIAS && P->kind[m] != KF_FN_GATHER) continue;
        defer_scan d = {der, 0};
        kf_fuse_each_input(&g->nodes[m], defer_mark_hit, &d);
        if (!d.hit) continue;
        for (int j = 0; j < g->nodes[m].n_outs; j++)
            if (g->nodes[m].outs[j] >= 0) der[g->nodes[m].outs[j]] = 1;
    }
    for (int i = 0; i < g->n_outputs && ok; i++)
        if (g->outputs[i] >= 0 && der[g->outputs[i]]) ok = 0;
    for (int m = 0; m < g->n_nodes && ok; m++) {
        kf_fnode_kind k = P->kind[m];
        if (k != KF_FN_GEMM && k != KF_FN_CONV) continue;
        defer_scan d = {der, 0};
        kf_fuse_each_input(&g->nodes[m], defer_mark_hit, &d);
        if (d.hit) ok = 0; /* a library step (or its im2col/direct kernel) reads the buffer as is */
    }
    free(der);
    return ok;
}

int kf_fl_defer_bias(kf_fl *c, int v, int bias, const kf_tdesc *bias_desc, double beta, kf_err *err) {
    if (!c->plan->defer_bias || v < 0 || bias < 0 || beta == 0.0) return 0;
    const kf_tdesc *bd = bias_desc ? bias_desc : &c->g->values[bias].desc;
    if (kf_tdesc_numel(bd) >= kf_tdesc_numel(&c->g->values[v].desc)) return 0; /* not a broadcast vector */
    int rc = 0;
    if (!defer_ok(c, v, err, &rc)) return rc;
    if (!c->defer) {
        c->defer = malloc(sizeof *c->defer * (size_t)(c->g->n_values + 1));
        if (!c->defer) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
        for (int u = 0; u <= c->g->n_values; u++) c->defer[u].bias = -1;
    }
    c->defer[v].bias = bias;
    c->defer[v].beta = beta;
    c->defer[v].desc = *bd;
    return 1;
}

kir_expr *kf_fl_defer_add(kf_fl *c, kf_fexpr *x, int v, const kir_expr *idx, kir_expr *e) {
    if (!c->defer || !e) return e;
    int r = c->plan->alias_of[v];
    if (r < 0 || c->defer[r].bias < 0) return e;
    const kf_fdefer *d = &c->defer[r];
    const kf_tdesc *od = &c->g->values[r].desc;
    kir_kernel *k = c->k;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = k;
    kir_expr *bi;
    /* row loops (kf_fexpr two_d): index the bias per row, plus the column when it varies along it */
    if (x->two_d && idx->kind == KIR_E_VAR && idx->var == x->root_var && od->ndim >= 1 &&
        od->shape[od->ndim - 1] == x->W) {
        bi = kf_lw_bcast_index(&w, kir_var(k, x->row_var), od->shape, od->ndim, &d->desc);
        if (d->desc.ndim >= 1 && d->desc.shape[d->desc.ndim - 1] == x->W && x->W > 1)
            bi = kir_add(k, bi, kir_var(k, x->col_var));
    } else {
        bi = kf_lw_bcast_index(&w, idx, od->shape, od->ndim, &d->desc);
    }
    kir_expr *b = kf_fexpr_elem(x, d->bias, bi);
    if (!b) return NULL;
    b = kf_lw_cvt(k, e->type, b);
    if (d->beta != 1.0) b = kir_mul(k, b, kf_lw_const(k, d->beta, b));
    return kir_add(k, e, b);
}
