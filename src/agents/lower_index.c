/* lower_index.c: data-dependent gathers: embedding, index_select, gather, and advanced
 * indexing (aten.index.Tensor with integer index tensors, broadcast together, placed like
 * numpy: in place when adjacent, in front otherwise). Negative indices wrap. */
#include <string.h>
#include "agents/lower.h"

/* idx < 0 ? idx + size : idx, as i64 */
static kir_expr *wrap_index(kf_lw *w, kir_stmt *parent, kir_expr *idx, int64_t size) {
    kir_kernel *k = w->k;
    int v = kf_lw_local(w, parent, "ix", KIR_T_I64, kf_lw_cvt(k, KIR_T_I64, idx));
    return kir_select(k, kir_bin(k, KIR_LT, kir_var(k, v), kf_lw_i(w, 0)),
                      kir_add(k, kir_var(k, v), kf_lw_i(w, size)), kir_var(k, v));
}

static int build_embedding(kf_lw *w, kf_err *err) {
    int wt = kf_lw_arg_tensor(w->n, "weight", 0), ix = kf_lw_arg_tensor(w->n, "indices", 1);
    if (wt < 0 || ix < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *wd = kf_lw_desc(w, wt);
    if (wd->ndim != 2) return kf_lw_unsupported(err, w->n, "weight must be 2-D");
    kir_kernel *k = w->k;
    int64_t D = wd->shape[1];
    int o;
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_lw_numel(w, kf_lw_out(w, 0)), KIR_LOOP_PARALLEL, &o);
    kir_expr *row = kf_lw_load(w, ix, kir_bin(k, KIR_DIV, kir_var(k, o), kf_lw_i(w, D)));
    kir_expr *r = wrap_index(w, loop, row, wd->shape[0]);
    kir_expr *src = kir_add(k, kir_mul(k, r, kf_lw_i(w, D)), kir_bin(k, KIR_MOD, kir_var(k, o), kf_lw_i(w, D)));
    kf_lw_put(w, loop, 0, kir_var(k, o), kf_lw_load(w, wt, src));
    return 0;
}

static int build_index_select(kf_lw *w, kf_err *err) {
    int x = kf_lw_arg_tensor(w->n, "self", 0), ix = kf_lw_arg_tensor(w->n, "index", 2);
    if (x < 0 || ix < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *xd = kf_lw_desc(w, x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), xd->ndim);
    int64_t s[KF_MAX_DIMS];
    kf_lw_strides(xd->shape, xd->ndim, s);
    int o;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kf_lw_unravel(w, kir_var(w->k, o), od->shape, od->ndim, c);
    if (xd->ndim == 0) {
        kf_lw_put(w, loop, 0, kir_var(w->k, o), kf_lw_load(w, x, kf_lw_i(w, 0)));
        return 0;
    }
    c[dim] = wrap_index(w, loop, kf_lw_load(w, ix, kf_lw_dup(w, c[dim])), xd->shape[dim]);
    kf_lw_put(w, loop, 0, kir_var(w->k, o), kf_lw_load(w, x, kf_lw_dot(w, c, s, xd->ndim, 0)));
    return 0;
}

static int build_gather(kf_lw *w, kf_err *err) {
    int x = kf_lw_arg_tensor(w->n, "self", 0), ix = kf_lw_arg_tensor(w->n, "index", 2);
    if (x < 0 || ix < 0) return kf_lw_unsupported(err, w->n, "missing operands");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *xd = kf_lw_desc(w, x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    if (xd->ndim != od->ndim || xd->ndim == 0) return kf_lw_unsupported(err, w->n, "rank");
    int dim = kf_lw_wrap_dim(kf_lw_arg_int(w->n, "dim", 1, 0), xd->ndim);
    int64_t s[KF_MAX_DIMS];
    kf_lw_strides(xd->shape, xd->ndim, s);
    int o;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kf_lw_unravel(w, kir_var(w->k, o), od->shape, od->ndim, c);
    c[dim] = wrap_index(w, loop, kf_lw_load(w, ix, kir_var(w->k, o)), xd->shape[dim]);
    kf_lw_put(w, loop, 0, kir_var(w->k, o), kf_lw_load(w, x, kf_lw_dot(w, c, s, xd->ndim, 0)));
    return 0;
}

static int build_index(kf_lw *w, kf_err *err) {
    int x = kf_lw_arg_tensor(w->n, "self", 0);
    const kf_arg *li = kf_lw_arg(w->n, "indices", 1);
    if (x < 0 || !li || li->kind != KF_ARG_LIST) return kf_lw_unsupported(err, w->n, "missing operands");
    if (!kf_lw_out_live(w, 0)) return 0;
    const kf_tdesc *xd = kf_lw_desc(w, x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int L = li->n_items, pos[KF_MAX_DIMS], ni = 0;
    if (L > xd->ndim) return kf_lw_unsupported(err, w->n, "too many indices");
    int64_t B[KF_MAX_DIMS];
    int nb = 0;
    for (int d = 0; d < L; d++) {
        const kf_arg *it = &li->items[d];
        if (it->kind == KF_ARG_NONE) continue;
        if (it->kind != KF_ARG_TENSOR) return kf_lw_unsupported(err, w->n, "index is not a tensor");
        const kf_tdesc *id = kf_lw_desc(w, it->tensor);
        if (id->dtype == KF_BOOL || id->dtype == KF_U8) return kf_lw_unsupported(err, w->n, "boolean mask index");
        pos[ni++] = d;
        /* broadcast the index shapes */
        int nd = id->ndim > nb ? id->ndim : nb;
        int64_t nbs[KF_MAX_DIMS];
        for (int j = 0; j < nd; j++) {
            int a = j - (nd - nb), b = j - (nd - id->ndim);
            int64_t sa = a >= 0 ? B[a] : 1, sb = b >= 0 ? id->shape[b] : 1;
            nbs[j] = sa == 1 ? sb : sa;
        }
        memcpy(B, nbs, sizeof(int64_t) * (size_t)nd);
        nb = nd;
    }
    if (ni == 0) return kf_lw_unsupported(err, w->n, "no index tensors");
    int adjacent = pos[ni - 1] - pos[0] == ni - 1;
    int b0 = adjacent ? pos[0] : 0;   /* where the broadcast dims sit in the output */
    if (od->ndim != xd->ndim - ni + nb) return kf_lw_unsupported(err, w->n, "output rank");
    kir_kernel *k = w->k;
    int o;
    kir_expr *c[KF_MAX_DIMS], *ic[KF_MAX_DIMS];
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kf_lw_unravel(w, kir_var(k, o), od->shape, od->ndim, c);
    int64_t bs[KF_MAX_DIMS];
    kf_lw_strides(B, nb, bs);
    int bflat = kf_lw_local(w, loop, "bf", KIR_T_I64, kf_lw_dot(w, c + b0, bs, nb, 0));
    int oc = 0, is_idx[KF_MAX_DIMS] = {0};
    for (int j = 0; j < ni; j++) is_idx[pos[j]] = 1;
    /* non-indexed dims take output coords in order, skipping the broadcast block */
    for (int d = 0; d < xd->ndim; d++) {
        if (is_idx[d]) continue;
        if (oc == b0) oc += nb;
        ic[d] = c[oc++];
    }
    for (int j = 0; j < ni; j++) {
        int t = li->items[pos[j]].tensor;
        kir_expr *bi = kf_lw_bcast_index(w, kir_var(k, bflat), B, nb, kf_lw_desc(w, t));
        ic[pos[j]] = wrap_index(w, loop, kf_lw_load(w, t, bi), xd->shape[pos[j]]);
    }
    int64_t s[KF_MAX_DIMS];
    kf_lw_strides(xd->shape, xd->ndim, s);
    kf_lw_put(w, loop, 0, kir_var(k, o), kf_lw_load(w, x, kf_lw_dot(w, ic, s, xd->ndim, 0)));
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_index[] = {
    KERN("embedding", build_embedding), KERN("index_select", build_index_select),
    KERN("gather", build_gather), KERN("index", build_index), KERN("_unsafe_index", build_index),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
