/* fuse_gemm.c: matrix products through the plan's gemm step (OpenBLAS sgemm on the cpu):
 * operands are read in place when stored row-major or as the transpose of a stored matrix
 * (a gather view verified to map every sampled element to its transposed position), else
 * gathered into scratch first; batch dims become the step's batch with strides (0 for a
 * shared matrix); the bias (beta * self of addmm/baddbmm/addmv, linear's bias) and every
 * elementwise epilogue of the group run after it in one kernel, in place. */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"
#include "kir/kir_sched.h"

static int64_t prod(const int64_t *s, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= s[i];
    return p;
}

int kf_fl_gemm_spec(const kf_graph *g, const kf_node *n, kf_gemm_spec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->alpha = sp->beta = 1.0;
    sp->bias = -1;
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    if (!strcmp(op, "addmm") || !strcmp(op, "baddbmm") || !strcmp(op, "addmv")) {
        const char *an = !strcmp(op, "baddbmm") ? "batch1" : !strcmp(op, "addmv") ? "mat" : "mat1";
        const char *bn = !strcmp(op, "baddbmm") ? "batch2" : !strcmp(op, "addmv") ? "vec" : "mat2";
        sp->bias = kf_lw_arg_tensor(n, "self", 0);
        sp->a = kf_lw_arg_tensor(n, an, 1);
        sp->b = kf_lw_arg_tensor(n, bn, 2);
        sp->beta = kf_lw_arg_num(n, "beta", 3, 1.0);
        sp->alpha = kf_lw_arg_num(n, "alpha", 4, 1.0);
    } else if (!strcmp(op, "linear")) {
        sp->a = kf_lw_arg_tensor(n, "input", 0);
        sp->b = kf_lw_arg_tensor(n, "weight", 1);
        sp->bias = kf_lw_arg_tensor(n, "bias", 2);
        sp->b_weight = 1;
    } else if (!strcmp(op, "mm") || !strcmp(op, "bmm") || !strcmp(op, "matmul") || !strcmp(op, "mv")) {
        sp->a = kf_lw_arg_tensor(n, "self", 0);
        sp->b = kf_lw_arg_tensor(n, "mat2", -1);
        if (sp->b < 0) sp->b = kf_lw_arg_tensor(n, "vec", -1);
        if (sp->b < 0) sp->b = kf_lw_arg_tensor(n, "other", -1);
        if (sp->b < 0) sp->b = kf_lw_arg_tensor(n, NULL, 1);
    } else {
        return 0;
    }
    if (sp->a < 0 || sp->b < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    const kf_tdesc *A = &g->values[sp->a].desc, *B = &g->values[sp->b].desc;
    const kf_tdesc *O = &g->values[n->outs[0]].desc;
    if (A->dtype != KF_F32 || B->dtype != KF_F32 || O->dtype != KF_F32) return 0;
    if (sp->bias >= 0 && !kf_dtype_is_float(g->values[sp->bias].desc.dtype)) return 0;
    if (A->ndim < 2 || B->ndim < 1) return 0;
    sp->K = A->shape[A->ndim - 1];
    sp->M = A->shape[A->ndim - 2];
    sp->batch_a = prod(A->shape, A->ndim - 2);
    if (sp->b_weight) {
        if (B->ndim != 2 || B->shape[1] != sp->K) return 0;
        sp->N = B->shape[0];
        sp->batch_b = 1;
        /* linear folds every leading dim of the input into rows */
        sp->M *= sp->batch_a;
        sp->batch_a = 1;
    } else if (B->ndim == 1) {
        if (B->shape[0] != sp->K) return 0;
        sp->b_vec = 1;
        sp->N = 1;
        sp->batch_b = 1;
    } else {
        if (B->shape[B->ndim - 2] != sp->K) return 0;
        sp->N = B->shape[B->ndim - 1];
        sp->batch_b = prod(B->shape, B->ndim - 2);
    }
    int64_t out = kf_tdesc_numel(O);
    if (sp->M * sp->N == 0 || out % (sp->M * sp->N) != 0) return 0;
    sp->batch = out / (sp->M * sp->N);
    if (sp->batch_a != 1 && sp->batch_a != sp->batch) return 0;
    if (sp->batch_b != 1 && sp->batch_b != sp->batch) return 0;
    if (sp->batch_a * sp->batch_b != sp->batch && !(sp->batch_a == sp->batch && sp->batch_b == sp->batch))
        return 0;
    /* operands that are batched must match the output's batch dims exactly (no broadcast of
     * a partial batch): compare the trailing batch shapes */
    if (!sp->b_weight && sp->batch_a == sp->batch && sp->batch_b == sp->batch && sp->batch > 1) {
        if (A->ndim != B->ndim) return 0;
        for (int i = 0; i < A->ndim - 2; i++)
            if (A->shape[i] != B->shape[i]) return 0;
    }
    return 1;
}

int kf_fl_gemm_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int a = plan->groups[gi].anchor;
    if (a < 0 || plan->kind[a] != KF_FN_GEMM) return 0;
    kf_gemm_spec sp;
    return kf_fl_gemm_spec(g, &g->nodes[a], &sp);
}

/* A stored matrix operand: buffer, transposed or not, leading dimension, batch stride. */
typedef struct fl_mat { int pb, trans; int64_t ld, bstride; } fl_mat;

/* 1 if gather node gn maps every sampled flat index i of the view (shape ... x R x C) to the
 * transposed position in a contiguous source (... x C x R). */
static int is_transpose_map(const kf_fgather *gt, int slot, int64_t R, int64_t C, int64_t total) {
    int64_t step = total <= 65536 ? 1 : total / 4096 + 1;
    for (int64_t i = 0; i < total; i += step) {
        int64_t j = i;
        for (int pass = 0; pass < 2; pass++) {
            int64_t b = j / (R * C), r = (j / C) % R, cc = j % C, got;
            if (kir_sched_eval_int(gt->idx[slot], gt->var[slot], j, &got)) return 0;
            if (got != b * R * C + cc * R + r) return 0;
            j = total - 1 - i;
        }
    }
    return 1;
}

/* Resolve value v as matrices [rows x cols] (batched over leading dims). */
static int mat_resolve(kf_fl *c, int v, int64_t rows, int64_t cols, fl_mat *m, const kf_gsched *s,
                       kf_err *err) {
    memset(m, 0, sizeof m[0]);
    int pb = kf_fl_value_pbuf(c, v);
    if (pb >= 0) {
        m->pb = pb;
        m->ld = cols;
        m->bstride = rows * cols;
        return 0;
    }
    const kf_graph *g = c->g;
    int r = c->plan->alias_of[v];
    int node = g->values[r].kind == KF_VAL_NODE ? g->values[r].index : -1;
    if (node >= 0 && c->plan->kind[node] == KF_FN_GATHER) {
        kf_fexpr x;
        kf_fl_fexpr(c, &x);
        kf_fgather *gt = kf_fexpr_gather(&x, node);
        if (x.rc) return x.rc;
        int src_pb = gt ? kf_fl_value_pbuf(c, gt->src) : -1;
        int64_t total = kf_tdesc_numel(&g->values[v].desc);
        if (src_pb >= 0 && kf_tdesc_numel(&g->values[gt->src].desc) == total &&
            is_transpose_map(gt, g->values[r].slot, rows, cols, total)) {
            m->pb = src_pb;
            m->trans = 1;
            m->ld = rows;
            m->bstride = rows * cols;
            return 0;
        }
    }
    pb = kf_fl_materialise(c, v, s, err);
    if (pb < 0) return pb;
    m->pb = pb;
    m->ld = cols;
    m->bstride = rows * cols;
    return 0;
}

int kf_fl_gemm_out(kf_fl *c, int gi) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    int a = c->g->nodes[gr->anchor].outs[0];
    const kf_tdesc *ad = &c->g->values[a].desc;
    if (c->plan->stored[a]) return kf_fl_value_pbuf(c, a);
    int best = -1;
    for (int i = 0; i < gr->n_stores; i++) {
        int v = gr->stores[i];
        const kf_tdesc *d = &c->g->values[v].desc;
        if (d->dtype == ad->dtype && kf_tdesc_numel(d) == kf_tdesc_numel(ad)) best = kf_fl_value_pbuf(c, v);
    }
    if (best >= 0) return best;
    return kf_fl_scratch(c, ad->dtype, kf_tdesc_numel(ad));
}

int kf_fl_gemm_operands(kf_fl *c, const kf_gemm_spec *sp, const kf_gsched *s, kf_gemm_ops *o, kf_err *err) {
    fl_mat A, B;
    int rc = mat_resolve(c, sp->a, sp->M, sp->K, &A, s, err);
    if (rc) return rc;
    int trans_b;
    if (sp->b_weight) {
        rc = mat_resolve(c, sp->b, sp->N, sp->K, &B, s, err);
        trans_b = !B.trans;
    } else if (sp->b_vec) {
        rc = mat_resolve(c, sp->b, sp->K, 1, &B, s, err);
        trans_b = B.trans;
    } else {
        rc = mat_resolve(c, sp->b, sp->K, sp->N, &B, s, err);
        trans_b = B.trans;
    }
    if (rc) return rc;
    o->M = sp->M;
    o->batch = sp->batch;
    o->stride_a = sp->batch_a == 1 ? 0 : A.bstride;
    o->stride_b = sp->batch_b == 1 ? 0 : B.bstride;
    /* a batched untransposed A against one shared B is one tall gemm */
    if (o->batch > 1 && sp->batch_a == o->batch && sp->batch_b == 1 && !A.trans) {
        o->M *= o->batch;
        o->batch = 1;
        o->stride_a = 0;
    }
    o->a_pb = A.pb;
    o->b_pb = B.pb;
    o->trans_a = A.trans;
    o->trans_b = trans_b;
    o->lda = A.ld;
    o->ldb = B.ld;
    return 0;
}

int kf_fl_gemm_lib(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    kf_gemm_spec sp;
    if (!kf_fl_gemm_spec(c->g, n, &sp)) return kf_lw_unsupported(err, n, "not a gemm the library step can run");
    kf_gemm_ops o;
    int rc = kf_fl_gemm_operands(c, &sp, s, &o, err);
    if (rc) return rc;
    int cb = kf_fl_gemm_out(c, gi);
    if (cb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    kf_step *st = kf_program_add_step(c->p, KF_STEP_GEMM);
    if (!st) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add a step");
    st->a = o.a_pb;
    st->b = o.b_pb;
    st->c = cb;
    st->m = o.M;
    st->n = sp.N;
    st->k = sp.K;
    st->trans_a = o.trans_a;
    st->trans_b = o.trans_b;
    st->lda = o.lda;
    st->ldb = o.ldb;
    st->ldc = sp.N;
    st->alpha = sp.alpha;
    st->beta = 0.0;
    st->batch = o.batch;
    st->stride_a = o.stride_a;
    st->stride_b = o.stride_b;
    st->stride_c = o.batch > 1 ? sp.M * sp.N : 0;
    int a = n->outs[0];
    int has_bias = sp.bias >= 0 && sp.beta != 0.0;
    int epi = kf_fl_has_epilogue(c, gi);
    int plain = !epi && (!c->plan->stored[a] || kf_fl_value_pbuf(c, a) == cb);
    if (plain && !has_bias) return 0;
    if (plain) { /* only the bias after the gemm: its readers may add it (no pass of its own) */
        int d = kf_fl_defer_bias(c, a, sp.bias, NULL, sp.beta, err);
        if (d) return d < 0 ? d : 0;
    } else if (epi) { /* the epilogue computed by its one reader */
        int d = kf_fl_defer_epilogue(c, gi, cb, has_bias ? sp.bias : -1, sp.beta, err);
        if (d) return d < 0 ? d : 0;
    }
    return kf_fl_ew_loop(c, gi, cb, has_bias ? sp.bias : -1, NULL, sp.beta, s, err);
}
