/* fuse_defer.c: work deferred into the kernels that read a result.
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
 * output, nor when a gemm or conv step reads it directly.
 *
 * The same holds for a training-mode batch norm whose normalised output is read only by such
 * kernels (a pool after it, as in conv -> bn -> relu -> pool): its kernel then only takes the
 * per-channel statistics (one read of the input instead of a read and a write more), and the
 * readers normalise as they load, with the same float32 formula the norm's own kernel uses.
 *
 * And for a library gemm's elementwise epilogue whose results one elementwise kernel reads (an
 * LSTM's gates = x2h + h2h + biases, read only by the cell): the epilogue's nodes are computed
 * inline by that reader from the raw gemm result, saving the epilogue kernel's read and write
 * of the whole result for one more read in the reader. */
#include <stdlib.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef struct defer_scan {
    const unsigned char *derived;
    int hit;
} defer_scan;

static void defer_mark_hit(int v, void *ctx) {
    defer_scan *d = ctx;
    if (v >= 0 && d->derived[v]) d->hit = 1;
}

/* 1 if node n reads a value flagged in derived. */
static int reads_derived(const kf_node *n, const unsigned char *derived) {
    defer_scan d = {derived, 0};
    kf_fuse_each_input(n, defer_mark_hit, &d);
    return d.hit;
}

/* Flags node n's outputs as derived. */
static void mark_outs(const kf_node *n, unsigned char *derived) {
    for (int j = 0; j < n->n_outs; j++)
        if (n->outs[j] >= 0) derived[n->outs[j]] = 1;
}

/* A per-value flag array with v set (the values derived from v are marked into it), or NULL
 * with *rc set. */
static unsigned char *derived_new(const kf_fl *c, int v, kf_err *err, int *rc) {
    unsigned char *der = calloc((size_t)c->g->n_values + 1, 1);
    if (!der) *rc = kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    else der[v] = 1;
    return der;
}

/* 1 if no reader of v (directly or through views) needs its stored elements to be final. */
static int defer_ok(const kf_fl *c, int v, kf_err *err, int *rc) {
    const kf_graph *g = c->g;
    const kf_fplan *P = c->plan;
    unsigned char *der = derived_new(c, v, err, rc);
    if (!der) return 0;
    int ok = 1;
    /* views of v, in topological order */
    for (int m = 0; m < g->n_nodes; m++)
        if ((P->kind[m] == KF_FN_ALIAS || P->kind[m] == KF_FN_GATHER) && reads_derived(&g->nodes[m], der))
            mark_outs(&g->nodes[m], der);
    for (int i = 0; i < g->n_outputs && ok; i++)
        if (g->outputs[i] >= 0 && der[g->outputs[i]]) ok = 0;
    for (int m = 0; m < g->n_nodes && ok; m++) /* a library step (or its own kernel) reads the buffer as is */
        if ((P->kind[m] == KF_FN_GEMM || P->kind[m] == KF_FN_CONV) && reads_derived(&g->nodes[m], der)) ok = 0;
    free(der);
    return ok;
}

static int defer_alloc(kf_fl *c) {
    if (c->defer) return 0;
    c->defer = malloc(sizeof *c->defer * (size_t)(c->g->n_values + 1));
    if (!c->defer) return KF_E_NOMEM;
    for (int u = 0; u <= c->g->n_values; u++) {
        memset(&c->defer[u], 0, sizeof c->defer[u]);
        c->defer[u].bias = c->defer[u].norm_x = -1;
    }
    return 0;
}

int kf_fl_defer_bias(kf_fl *c, int v, int bias, const kf_tdesc *bias_desc, double beta, kf_err *err) {
    if (!c->plan->defer_bias || v < 0 || bias < 0 || beta == 0.0) return 0;
    const kf_tdesc *bd = bias_desc ? bias_desc : &c->g->values[bias].desc;
    if (kf_tdesc_numel(bd) >= kf_tdesc_numel(&c->g->values[v].desc)) return 0; /* not a broadcast vector */
    int rc = 0;
    if (!defer_ok(c, v, err, &rc)) return rc;
    if (defer_alloc(c)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    c->defer[v].bias = bias;
    c->defer[v].beta = beta;
    c->defer[v].desc = *bd;
    return 1;
}

/* The groups that read value v (directly, through views, or through nodes inlined into them);
 * 1 and *reader when exactly one group other than gi does, and it is elementwise-only. */
static int single_ew_reader(const kf_fl *c, int v, int gi, int *reader, kf_err *err, int *rc) {
    const kf_graph *g = c->g;
    const kf_fplan *P = c->plan;
    unsigned char *der = derived_new(c, v, err, rc);
    if (!der) return 0;
    int found = -1, ok = 1;
    for (int m = 0; m < g->n_nodes && ok; m++) {
        if (!reads_derived(&g->nodes[m], der)) continue;
        kf_fnode_kind k = P->kind[m];
        if (k == KF_FN_ALIAS || k == KF_FN_GATHER || (k == KF_FN_EW && c->inl[m] && P->group[m] < 0)) {
            mark_outs(&g->nodes[m], der); /* views: their readers read v */
            continue;
        }
        int grp = P->group[m];
        if (grp == gi) continue;
        if (grp < 0 || (found >= 0 && found != grp) || P->groups[grp].anchor >= 0) ok = 0;
        found = grp;
    }
    free(der);
    if (!ok || found < 0) return 0;
    *reader = found;
    return 1;
}

int kf_fl_defer_epilogue(kf_fl *c, int gi, int cb, int bias, double beta, kf_err *err) {
    if (!c->plan->defer_bias || !c->inl) return 0;
    const kf_fgroup *gr = &c->plan->groups[gi];
    int a = c->g->nodes[gr->anchor].outs[0];
    if (a < 0) return 0;
    int rc = 0, reader = -1;
    for (int i = 0; i < gr->n_stores; i++) {
        int v = gr->stores[i], r = -1;
        if (v == a) continue;
        if (!defer_ok(c, v, err, &rc)) return rc;
        if (!single_ew_reader(c, v, gi, &r, err, &rc)) return rc;
        if (reader >= 0 && r != reader) return 0;
        reader = r;
    }
    if (reader < 0 || reader <= gi) return 0;
    /* the anchor's value is the raw result in cb; its readers (the inlined epilogue) add the bias */
    int ra = c->plan->alias_of[a];
    if (c->val_buf[ra] >= 0 && c->val_buf[ra] != cb) return 0;
    if (bias >= 0) {
        int d = kf_fl_defer_bias(c, a, bias, NULL, beta, err);
        if (d <= 0) return d;
    }
    c->val_buf[ra] = cb;
    for (int i = 0; i < gr->n_nodes; i++)
        if (gr->nodes[i] != gr->anchor) c->inl[gr->nodes[i]] = 1;
    return 1;
}

static int is_batch_norm(const char *op) {
    return strstr(op, "native_batch_norm") && !strstr(op, "no_training");
}

int kf_fl_defer_norm(kf_fl *c, int gi, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    if (!c->plan->defer_bias || gr->anchor < 0 || kf_fl_has_epilogue(c, gi)) return 0;
    const kf_graph *g = c->g;
    const kf_node *n = &g->nodes[gr->anchor];
    if (!is_batch_norm(n->op) || n->n_outs < 3) return 0;
    int x = kf_lw_arg_tensor(n, "input", 0), wt = kf_lw_arg_tensor(n, "weight", 1), bs = kf_lw_arg_tensor(n, "bias", 2);
    int y = n->outs[0];
    if (x < 0 || y < 0 || !kf_lw_arg_num(n, "training", 5, 1.0)) return 0;
    const kf_tdesc *xd = &g->values[x].desc;
    if (xd->ndim < 2 || xd->dtype != KF_F32 || g->values[y].desc.dtype != KF_F32) return 0;
    int64_t C = xd->shape[1];
    if ((wt >= 0 && g->values[wt].desc.dtype != KF_F32) || (bs >= 0 && g->values[bs].desc.dtype != KF_F32)) return 0;
    int rc = 0;
    if (!defer_ok(c, y, err, &rc)) return rc;
    if (defer_alloc(c)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    kf_fdefer *d = &c->defer[y];
    d->norm_mean_pb = kf_fl_scratch(c, KF_F32, C);
    d->norm_rstd_pb = kf_fl_scratch(c, KF_F32, C);
    if (d->norm_mean_pb < 0 || d->norm_rstd_pb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    d->norm_x = x;
    d->norm_w = wt;
    d->norm_b = bs;
    kf_fl_chan_desc(&d->desc, KF_F32, C, xd->ndim - 2); /* the channel of an element */
    return 1;
}

static kir_expr *defer_norm_at(kf_fl *c, kf_fexpr *x, const kf_fdefer *d, const kf_tdesc *od, const kir_expr *idx) {
    kir_kernel *k = c->k;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = k;
    kir_expr *xv = kf_fexpr_elem(x, d->norm_x, kir_expr_clone(k, idx));
    if (!xv) return NULL;
    kir_expr *e[4] = {NULL, NULL, NULL, NULL};
    int pbs[2] = {d->norm_mean_pb, d->norm_rstd_pb}, vals[4] = {-1, -1, d->norm_w, d->norm_b};
    for (int j = 0; j < 4; j++) {
        kir_expr *ci = kf_lw_bcast_index(&w, idx, od->shape, od->ndim, &d->desc);
        if (j < 2) {
            int kb = kf_fl_kbuf(c, pbs[j], 0);
            e[j] = kb < 0 ? NULL : kir_load(k, kb, ci);
        } else if (vals[j] >= 0) {
            e[j] = kf_fexpr_elem(x, vals[j], ci);
        } else {
            continue;
        }
        if (!e[j]) return NULL;
        e[j] = kf_lw_cvt(k, KIR_T_F32, e[j]);
    }
    /* as the norm's own kernel: ((x - mean) * rstd) * weight + bias, in float32 */
    kir_expr *y = kir_mul(k, kir_bin(k, KIR_SUB, kf_lw_cvt(k, KIR_T_F32, xv), e[0]), e[1]);
    if (e[2]) y = kir_mul(k, y, e[2]);
    if (e[3]) y = kir_add(k, y, e[3]);
    return y;
}

kir_expr *kf_fl_defer_load(kf_fl *c, kf_fexpr *x, int v, const kir_expr *idx) {
    if (!c->defer) return NULL;
    int r = c->plan->alias_of[v];
    if (r < 0 || c->defer[r].norm_x < 0) return NULL;
    return defer_norm_at(c, x, &c->defer[r], &c->g->values[r].desc, idx);
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
