/* lower_matmul.c: matrix products (mm, bmm, matmul with broadcast batch dims, mv, dot,
 * addmm, baddbmm, addmv, linear) as one kernel: parallel over output rows, a block of up to
 * 8 output columns accumulated in double over k (so B is read a row segment at a time),
 * then alpha * acc + beta * bias, cast back to the output's type on store. */
#include <string.h>
#include "agents/lower.h"

#define MM_NB 8

typedef struct mm_plan {
    int a, b, bias;               /* values (bias -1 when absent) */
    double alpha, beta;
    int b_trans;                  /* B stored [N, K] (linear's weight) */
    int nbd;                      /* batch dims of the output */
    int64_t bshape[KF_MAX_DIMS], astr[KF_MAX_DIMS], bstr[KF_MAX_DIMS];
    int64_t M, K, N;
} mm_plan;

static int mm_plan_make(kf_lw *w, mm_plan *p, kf_err *err) {
    const kf_tdesc *A = kf_lw_desc(w, p->a), *B = kf_lw_desc(w, p->b);
    int na = A->ndim, nb = B->ndim;
    if (na < 1 || nb < 1) return kf_lw_unsupported(err, w->n, "0-dim operand");
    int a_vec = na == 1, b_vec = nb == 1;
    p->M = a_vec ? 1 : A->shape[na - 2];
    int64_t ka = A->shape[na - 1];
    int64_t kb;
    if (p->b_trans) {
        p->N = b_vec ? 1 : B->shape[nb - 2];
        kb = B->shape[nb - 1];
    } else {
        p->N = b_vec ? 1 : B->shape[nb - 1];
        kb = b_vec ? B->shape[0] : B->shape[nb - 2];
    }
    if (ka != kb) return kf_lw_unsupported(err, w->n, "inner dimensions differ");
    p->K = ka;
    int abd = a_vec ? 0 : na - 2, bbd = b_vec ? 0 : nb - 2;
    p->nbd = abd > bbd ? abd : bbd;
    int64_t amat = p->M * p->K, bmat = p->K * p->N;
    int64_t as = amat, bs = bmat;
    for (int j = p->nbd - 1; j >= 0; j--) {
        int ja = j - (p->nbd - abd), jb = j - (p->nbd - bbd);
        int64_t sa = ja >= 0 ? A->shape[ja] : 1, sb = jb >= 0 ? B->shape[jb] : 1;
        p->bshape[j] = sa > sb ? sa : sb;
        p->astr[j] = sa == 1 ? 0 : as;
        p->bstr[j] = sb == 1 ? 0 : bs;
        as *= sa;
        bs *= sb;
    }
    int64_t total = p->M * p->N;
    for (int j = 0; j < p->nbd; j++) total *= p->bshape[j];
    if (total != kf_lw_numel(w, kf_lw_out(w, 0)))
        return kf_lw_unsupported(err, w->n, "output shape does not match the operands");
    return 0;
}

/* Columns [n0, n0 + width) of row (bm) into the output. */
static void mm_block(kf_lw *w, const mm_plan *p, kir_stmt *parent, int bm, const kir_expr *n0,
                     int width) {
    kir_kernel *k = w->k;
    int out = kf_lw_out(w, 0);
    kir_type t = kf_lw_type(w, out), acc_t = kf_lw_acc_type(t);
    /* batch offsets of A and B, and the row */
    kir_expr *bidx = kir_bin(k, KIR_DIV, kir_var(k, bm), kf_lw_i(w, p->M));
    kir_expr *m = kir_bin(k, KIR_MOD, kir_var(k, bm), kf_lw_i(w, p->M));
    kir_expr *coords[KF_MAX_DIMS];
    kf_lw_unravel(w, bidx, p->bshape, p->nbd, coords);
    kir_expr *aoff = kir_add(k, kf_lw_dot(w, coords, p->astr, p->nbd, 0), kir_mul(k, m, kf_lw_i(w, p->K)));
    kir_expr *boff = kf_lw_dot(w, coords, p->bstr, p->nbd, 0);
    int av = kf_lw_local(w, parent, "ao", KIR_T_I64, aoff);
    int bv = kf_lw_local(w, parent, "bo", KIR_T_I64, boff);
    int acc[MM_NB];
    kir_expr *zero = acc_t == KIR_T_F64 ? kir_flt(k, 0.0, KIR_T_F64) : kir_int(k, 0);
    for (int j = 0; j < width; j++) acc[j] = kf_lw_local(w, parent, "acc", acc_t, kf_lw_dup(w, zero));
    int kk;
    kir_stmt *kl = kf_lw_loop(w, parent, "k", p->K, KIR_LOOP_SERIAL, &kk);
    kir_expr *a = kf_lw_load(w, p->a, kir_add(k, kir_var(k, av), kir_var(k, kk)));
    int a_v = kf_lw_local(w, kl, "a", acc_t, kf_lw_cvt(k, acc_t, a));
    for (int j = 0; j < width; j++) {
        kir_expr *col = kir_add(k, kf_lw_dup(w, n0), kf_lw_i(w, j));
        kir_expr *bi = p->b_trans
            ? kir_add(k, kir_mul(k, col, kf_lw_i(w, p->K)), kir_var(k, kk))
            : kir_add(k, kir_mul(k, kir_var(k, kk), kf_lw_i(w, p->N)), col);
        kir_expr *b = kf_lw_cvt(k, acc_t, kf_lw_load(w, p->b, kir_add(k, kir_var(k, bv), bi)));
        kir_append(k, kl, kir_assign(k, acc[j], kir_add(k, kir_var(k, acc[j]), kir_mul(k, kir_var(k, a_v), b))));
    }
    const kf_tdesc *od = kf_lw_desc(w, out);
    for (int j = 0; j < width; j++) {
        kir_expr *o = kir_add(k, kir_add(k, kir_mul(k, kir_var(k, bm), kf_lw_i(w, p->N)), kf_lw_dup(w, n0)),
                              kf_lw_i(w, j));
        kir_expr *y = kir_var(k, acc[j]);
        if (p->alpha != 1.0) y = kir_mul(k, y, kf_lw_const(k, p->alpha, y));
        if (p->bias >= 0 && p->beta != 0.0) {
            kir_expr *bi = kf_lw_bcast_index(w, o, od->shape, od->ndim, kf_lw_desc(w, p->bias));
            kir_expr *bv2 = kf_lw_cvt(k, acc_t, kf_lw_load(w, p->bias, bi));
            if (p->beta != 1.0) bv2 = kir_mul(k, bv2, kf_lw_const(k, p->beta, bv2));
            y = kir_add(k, y, bv2);
        }
        kf_lw_put(w, parent, 0, o, kf_lw_cvt(k, t, y));
    }
}

/* Output columns are done in blocks of up to MM_NB. With enough column blocks the blocks are
 * the parallel dimension and the rows run inside, so one K x MM_NB panel of B stays in cache
 * while every row of A streams past it; otherwise (matrix-vector, narrow outputs) the rows
 * are the parallel dimension. */
static int mm_emit(kf_lw *w, mm_plan *p, kf_err *err) {
    int rc = mm_plan_make(w, p, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    int64_t batch = 1;
    for (int j = 0; j < p->nbd; j++) batch *= p->bshape[j];
    int64_t nb = p->N < MM_NB ? p->N : MM_NB;
    int64_t full = nb > 0 ? p->N / nb : 0, tail = nb > 0 ? p->N % nb : 0;
    if (batch * full >= 16 && p->M > 1) {
        int bn, m;
        kir_stmt *outer = kf_lw_loop(w, NULL, "bn", batch * full, KIR_LOOP_PARALLEL, &bn);
        int bv = kf_lw_local(w, outer, "b", KIR_T_I64, kir_bin(k, KIR_DIV, kir_var(k, bn), kf_lw_i(w, full)));
        kir_expr *n0 = kir_mul(k, kir_bin(k, KIR_MOD, kir_var(k, bn), kf_lw_i(w, full)), kf_lw_i(w, nb));
        int n0v = kf_lw_local(w, outer, "n0", KIR_T_I64, n0);
        kir_stmt *ml = kf_lw_loop(w, outer, "m", p->M, KIR_LOOP_SERIAL, &m);
        int bm = kf_lw_local(w, ml, "bm", KIR_T_I64,
                             kir_add(k, kir_mul(k, kir_var(k, bv), kf_lw_i(w, p->M)), kir_var(k, m)));
        mm_block(w, p, ml, bm, kir_var(k, n0v), (int)nb);
        if (tail > 0) {
            int b2, m2;
            kir_stmt *o2 = kf_lw_loop(w, NULL, "b", batch, KIR_LOOP_PARALLEL, &b2);
            kir_stmt *ml2 = kf_lw_loop(w, o2, "m", p->M, KIR_LOOP_SERIAL, &m2);
            int bm2 = kf_lw_local(w, ml2, "bm", KIR_T_I64,
                                  kir_add(k, kir_mul(k, kir_var(k, b2), kf_lw_i(w, p->M)), kir_var(k, m2)));
            mm_block(w, p, ml2, bm2, kf_lw_i(w, full * nb), (int)tail);
        }
        return 0;
    }
    int bm;
    kir_stmt *loop = kf_lw_loop(w, NULL, "bm", batch * p->M, KIR_LOOP_PARALLEL, &bm);
    if (full > 0) {
        int nbv;
        kir_stmt *nl = kf_lw_loop(w, loop, "nb", full, KIR_LOOP_SERIAL, &nbv);
        kir_expr *n0 = kir_mul(k, kir_var(k, nbv), kf_lw_i(w, nb));
        mm_block(w, p, nl, bm, n0, (int)nb);
    }
    if (tail > 0) {
        kir_stmt *blk = kir_block(k);
        kir_append(k, loop, blk);
        mm_block(w, p, blk, bm, kf_lw_i(w, full * nb), (int)tail);
    }
    return 0;
}

static int build_mm(kf_lw *w, kf_err *err) {
    mm_plan p;
    memset(&p, 0, sizeof p);
    p.alpha = 1.0;
    p.beta = 1.0;
    p.bias = -1;
    const kf_node *n = w->n;
    const char *op = w->op;
    if (strcmp(op, "addmm") == 0 || strcmp(op, "baddbmm") == 0 || strcmp(op, "addmv") == 0) {
        const char *an = "mat1", *bn = "mat2";
        if (strcmp(op, "baddbmm") == 0) {
            an = "batch1";
            bn = "batch2";
        } else if (strcmp(op, "addmv") == 0) {
            an = "mat";
            bn = "vec";
        }
        p.bias = kf_lw_arg_tensor(n, "self", 0);
        p.a = kf_lw_arg_tensor(n, an, 1);
        p.b = kf_lw_arg_tensor(n, bn, 2);
        p.beta = kf_lw_arg_num(n, "beta", 3, 1.0);
        p.alpha = kf_lw_arg_num(n, "alpha", 4, 1.0);
    } else if (strcmp(op, "linear") == 0) {
        p.a = kf_lw_arg_tensor(n, "input", 0);
        p.b = kf_lw_arg_tensor(n, "weight", 1);
        p.bias = kf_lw_arg_tensor(n, "bias", 2);
        p.b_trans = 1;
    } else {
        p.a = kf_lw_arg_tensor(n, "self", 0);
        static const char *const names[] = {"mat2", "vec", "tensor", "other"};
        p.b = -1;
        for (int i = 0; i < 4 && p.b < 0; i++) p.b = kf_lw_arg_tensor(n, names[i], -1);
        if (p.b < 0) p.b = kf_lw_arg_tensor(n, NULL, 1);
    }
    if (p.a < 0 || p.b < 0) return kf_lw_unsupported(err, n, "missing operands");
    return mm_emit(w, &p, err);
}

#define KERN(nm) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, build_mm, NULL}

const kf_lop kf_lops_matmul[] = {
    KERN("mm"), KERN("bmm"), KERN("matmul"), KERN("mv"), KERN("dot"), KERN("inner"),
    KERN("addmm"), KERN("baddbmm"), KERN("addmv"), KERN("linear"),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
