/* fuse_expr.c: element expressions for fused kernels. The element of a graph value at a flat
 * index is a variable when the value was computed earlier in the same loop, the source's
 * element at the same index through a row-major view, at a re-mapped index through a gather
 * view, the elementwise op's emitter applied to its operands' elements when the producer is
 * computed inline, and otherwise a load of the stored value. */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"
#include "kir/kir_sched.h"

int kf_fuse_alias_src(const kf_node *n) {
    int t = kf_lw_arg_tensor(n, "self", -1);
    if (t < 0) t = kf_lw_arg_tensor(n, "input", -1);
    for (int i = 0; t < 0 && i < n->n_args; i++)
        if (n->args[i].kind == KF_ARG_TENSOR) t = n->args[i].tensor;
    return t;
}

static kir_expr *fail(kf_fexpr *x, int code, const char *what) {
    if (!x->rc) x->rc = kf_fail(x->err, code, "fusion: %s", what);
    return NULL;
}

kf_fgather *kf_fexpr_gather(kf_fexpr *x, int node) {
    if (!x->gathers || !x->gather_done) return NULL;
    if (!x->gather_done[node]) {
        x->gather_done[node] = 1;
        int rc = kf_fuse_gather_capture(x->g, node, &x->gathers[node], x->err);
        if (rc < 0) x->rc = rc;
    }
    return x->gathers[node].k ? &x->gathers[node] : NULL;
}

kir_expr *kf_fexpr_elem(kf_fexpr *x, int v, kir_expr *idx) {
    if (x->rc || !idx) return NULL;
    if (x->local && x->local[v] >= 0) return kir_var(x->k, x->local[v]);
    const kf_value *val = &x->g->values[v];
    if (val->kind == KF_VAL_NODE) {
        int p = val->index;
        const kf_node *n = &x->g->nodes[p];
        switch (x->kind[p]) {
        case KF_FN_ALIAS: {
            int src = kf_fuse_alias_src(n);
            if (src < 0) return fail(x, KF_E_INTERNAL, "view without a source");
            return kf_fexpr_elem(x, src, idx);
        }
        case KF_FN_GATHER: {
            kf_fgather *gt = kf_fexpr_gather(x, p);
            if (!gt) {
                if (x->rc) return NULL;
                break;
            }
            int slot = val->slot;
            if (slot < 0 || slot >= gt->n_slots || !gt->idx[slot])
                return fail(x, KF_E_INTERNAL, "gather view without an index for its output");
            kir_expr *e = kir_sched_expr_subst(x->k, gt->idx[slot], gt->var[slot], idx);
            if (!e) return fail(x, KF_E_NOMEM, "out of memory");
            return kf_fexpr_elem(x, gt->src, e);
        }
        case KF_FN_EW:
            if (x->inl && x->inl[p]) return kf_fexpr_ew(x, p, idx, NULL);
            break;
        default:
            break;
        }
    }
    kir_expr *e = x->load(x, v, idx);
    if (!e && !x->rc) return fail(x, KF_E_INTERNAL, "a value has no storage");
    return e;
}

static int is_leaf(const kir_expr *e) {
    return e->kind == KIR_E_VAR || e->kind == KIR_E_CONST_I || e->kind == KIR_E_CONST_F;
}

kir_expr *kf_fexpr_ew(kf_fexpr *x, int node, kir_expr *idx, kir_stmt *parent) {
    if (x->rc) return NULL;
    const kf_node *n = &x->g->nodes[node];
    const kf_lop *l = kf_lop_find(n->op);
    if (!l || l->kind != KF_LOP_EW || !l->ew) return fail(x, KF_E_INTERNAL, "not an elementwise op");
    kf_ew_info info;
    int rc = kf_lw_ew_info(x->g, n, l, &info, x->err);
    if (rc) {
        x->rc = rc;
        return NULL;
    }
    kir_kernel *k = x->k;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = k;
    w.g = x->g;
    w.n = n;
    const kf_tdesc *od = &x->g->values[n->outs[0]].desc;
    int rows = x->two_d && idx->kind == KIR_E_VAR && idx->var == x->root_var && od->ndim >= 1 &&
               od->shape[od->ndim - 1] == x->W;
    kir_expr *ins[4] = {NULL, NULL, NULL, NULL};
    for (int j = 0; j < info.n_operands; j++) {
        if (info.tensor[j] == -2) continue;
        kir_expr *e;
        if (info.tensor[j] >= 0) {
            const kf_tdesc *d = &x->g->values[info.tensor[j]].desc;
            kir_expr *bi;
            if (rows && kf_tdesc_numel(d) != kf_tdesc_numel(od)) {
                bi = kf_lw_bcast_index(&w, kir_var(k, x->row_var), od->shape, od->ndim, d);
                if (d->ndim >= 1 && d->shape[d->ndim - 1] == x->W && x->W > 1)
                    bi = kir_add(k, bi, kir_var(k, x->col_var));
            } else {
                bi = kf_lw_bcast_index(&w, idx, od->shape, od->ndim, d);
            }
            e = kf_fexpr_elem(x, info.tensor[j], bi);
            if (!e) return NULL;
            e = kf_lw_cvt(k, info.type[j], e);
            if (parent && !is_leaf(e)) {
                int var = kir_add_var(k, "x", info.type[j]);
                kir_append(k, parent, kir_decl(k, var, e));
                e = kir_var(k, var);
            }
        } else if (info.type[j] == KIR_T_F32 || info.type[j] == KIR_T_F64) {
            e = kir_flt(k, info.number[j], info.type[j]);
        } else if (info.type[j] == KIR_T_BOOL) {
            e = kf_lw_cvt(k, KIR_T_BOOL, kir_int(k, (int64_t)info.number[j]));
        } else {
            e = kir_int(k, (int64_t)info.number[j]);
        }
        ins[j] = e;
    }
    kir_expr *y = l->ew(k, n, ins);
    if (!y) {
        if (kir_failure(k)) return fail(x, KF_E_NOMEM, "out of memory");
        x->rc = kf_lw_unsupported(x->err, n, "attributes not handled");
        return NULL;
    }
    kf_dtype dt = od->dtype;
    if (dt == KF_BOOL) y = kf_lw_cvt(k, KIR_T_BOOL, y);
    return kf_lw_cvt(k, kir_type_of_dtype(dt), y);
}

int kf_fexpr_size(const kir_expr *e, int *calls) {
    if (!e) return 0;
    if (e->kind == KIR_E_UN && calls) {
        switch (e->op) {
        case KIR_EXP: case KIR_EXPM1: case KIR_LOG: case KIR_LOG1P: case KIR_TANH:
        case KIR_SIGMOID: case KIR_ERF: case KIR_SIN: case KIR_COS:
            (*calls)++;
            break;
        default:
            break;
        }
    }
    if (e->kind == KIR_E_BIN && e->op == KIR_POW && calls) (*calls)++;
    return 1 + kf_fexpr_size(e->a, calls) + kf_fexpr_size(e->b, calls) + kf_fexpr_size(e->c, calls);
}
