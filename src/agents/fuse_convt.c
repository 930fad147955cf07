/* fuse_convt.c: transposed convolutions (groups 1) as a gemm and a col2im gather. The gemm
 * step computes, per image, col = W^T x: [Cout * taps, input positions] from the weight
 * [Cin, Cout * taps] (read transposed in place) and the image [Cin, input positions]. The
 * gather kernel then forms each output row as bias plus, for every tap of the outer dims
 * landing on it (o + pad - k * dil divisible by the stride and inside the input), the col
 * entries of the last dim's taps: split by output phase (ol = stride * j + ph, each phase
 * with a fixed set of taps at input j + e), the interior of the row is one branch-free vector
 * loop over j, the edges test bounds per tap. The group's elementwise epilogue follows as one
 * vectorised loop over the result. */
#include <stdint.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

int kf_fl_convt_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    kf_conv_attr a;
    if (!kf_fl_conv_attr(g, &g->nodes[an], &a) || !a.transposed || a.groups != 1) return 0;
    double col = (double)a.N * (double)a.Cout * (double)a.Kd[0] * (a.nsd > 1 ? (double)a.Kd[1] : 1.0) *
                 (a.nsd > 2 ? (double)a.Kd[2] : 1.0) * (double)a.I[0] * (a.nsd > 1 ? (double)a.I[1] : 1.0) *
                 (a.nsd > 2 ? (double)a.I[2] : 1.0) * 4.0;
    return col <= 1.5e9;
}

typedef struct ct {
    kf_fl *c;
    const kf_conv_attr *a;
    int colb, outb, n, co, rowb;
    int ov[3], kv[3], iv[3];
    int64_t taps, pin;
} ct;

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

/* col index of tap (kv[0..L-1], kt) at input position (iv[0..L-1], il):
 * col[((n * Cout + co) * taps + tap) * pin + flat(i)] */
static kir_expr *col_at(ct *t, kir_expr *kt, kir_expr *il) {
    kir_kernel *k = t->c->k;
    const kf_conv_attr *a = t->a;
    int L = a->nsd - 1;
    kir_expr *tp = I(k, 0), *ip = I(k, 0);
    for (int q = 0; q < L; q++) {
        tp = kir_add(k, kir_mul(k, tp, I(k, a->Kd[q])), V(k, t->kv[q]));
        ip = kir_add(k, kir_mul(k, ip, I(k, a->I[q])), V(k, t->iv[q]));
    }
    tp = kir_add(k, kir_mul(k, tp, I(k, a->Kd[L])), kt);
    ip = kir_add(k, kir_mul(k, ip, I(k, a->I[L])), il);
    kir_expr *row = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, V(k, t->n), I(k, a->Cout)), V(k, t->co)), I(k, t->taps)), tp);
    return kir_add(k, kir_mul(k, row, I(k, t->pin)), ip);
}

static int64_t floor_div(int64_t x, int64_t y) { return x >= 0 ? x / y : -((-x + y - 1) / y); }

/* out[row][ol] += col entries of the last-dim taps landing on ol, for ol in [lo, hi): the
 * generic form with bounds tests per tap (the row's edges). */
static void last_generic(ct *t, kir_stmt *parent, int64_t lo, int64_t hi) {
    if (hi <= lo) return;
    kir_kernel *k = t->c->k;
    const kf_conv_attr *a = t->a;
    int L = a->nsd - 1;
    int ol = kir_add_var(k, "ol", KIR_T_I64), kt;
    kir_stmt *l = kir_for(k, ol, I(k, lo), I(k, hi), 1, KIR_LOOP_SERIAL);
    kir_append(k, parent, l);
    kir_stmt *kl = kf_lw_loop(&(kf_lw){.k = k}, l, "kt", a->Kd[L], KIR_LOOP_SERIAL, &kt);
    /* d = ol + pad - kt * dil; contributes when d >= 0, d % stride == 0, d / stride < I */
    int dv = kir_add_var(k, "d", KIR_T_I64);
    kir_append(k, kl, kir_decl(k, dv, kir_bin(k, KIR_SUB, kir_add(k, V(k, ol), I(k, a->pad[L])),
                                              kir_mul(k, V(k, kt), I(k, a->dil[L])))));
    kir_stmt *pos = kir_if(k, kir_bin(k, KIR_GE, V(k, dv), I(k, 0)));
    kir_append(k, kl, pos);
    int iv = kir_add_var(k, "i", KIR_T_I64);
    kir_append(k, pos, kir_decl(k, iv, a->stride[L] == 1 ? V(k, dv) : kir_bin(k, KIR_DIV, V(k, dv), I(k, a->stride[L]))));
    kir_expr *cond = kir_bin(k, KIR_LT, V(k, iv), I(k, a->I[L]));
    if (a->stride[L] != 1)
        cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_EQ, kir_bin(k, KIR_MOD, V(k, dv), I(k, a->stride[L])), I(k, 0)), cond);
    kir_stmt *in = kir_if(k, cond);
    kir_append(k, pos, in);
    kir_expr *oi = kir_add(k, V(k, t->rowb), V(k, ol));
    kir_append(k, in, kir_store(k, t->outb, oi, kir_add(k, kir_load(k, t->outb, kir_expr_clone(k, oi)),
                                                      kir_load(k, t->colb, col_at(t, V(k, kt), V(k, iv))))));
}

/* The last dim of one row: output ol = s * j + ph takes, per phase ph, the taps kt with
 * ph + pad - kt * dil = s * e (e fixed), from input position j + e. Where every such position
 * is inside the input for every phase (j in [jlo, jhi)), one branch-free vector loop over j
 * does all phases; the edges take the generic form. */
static void last_taps(ct *t, kir_stmt *parent) {
    kir_kernel *k = t->c->k;
    const kf_conv_attr *a = t->a;
    int L = a->nsd - 1;
    int64_t s = a->stride[L], K = a->Kd[L], In = a->I[L], O = a->O[L];
    int64_t jlo = 0, jhi = INT64_MAX;
    for (int64_t ph = 0; ph < s; ph++) {
        int64_t jn = ph < O ? (O - 1 - ph) / s + 1 : 0;
        if (jn < jhi) jhi = jn;
        for (int64_t kt = 0; kt < K; kt++) {
            int64_t num = ph + a->pad[L] - kt * a->dil[L];
            if (((num % s) + s) % s) continue;
            int64_t e = floor_div(num, s);
            if (-e > jlo) jlo = -e;
            if (In - e < jhi) jhi = In - e;
        }
    }
    if (s > 8 || jhi <= jlo) {
        last_generic(t, parent, 0, O);
        return;
    }
    last_generic(t, parent, 0, s * jlo);
    int j;
    kir_stmt *vl = kir_for(k, j = kir_add_var(k, "j", KIR_T_I64), I(k, jlo), I(k, jhi), 1, KIR_LOOP_VECTOR);
    kir_append(k, parent, vl);
    for (int64_t ph = 0; ph < s; ph++) {
        kir_expr *oi = kir_add(k, V(k, t->rowb), kir_add(k, kir_mul(k, V(k, j), I(k, s)), I(k, ph)));
        kir_expr *sum = kir_load(k, t->outb, kir_expr_clone(k, oi));
        for (int64_t kt = 0; kt < K; kt++) {
            int64_t num = ph + a->pad[L] - kt * a->dil[L];
            if (((num % s) + s) % s) continue;
            int64_t e = floor_div(num, s);
            sum = kir_add(k, sum, kir_load(k, t->colb, col_at(t, I(k, kt), kir_add(k, V(k, j), I(k, e)))));
        }
        kir_append(k, vl, kir_store(k, t->outb, oi, sum));
    }
    last_generic(t, parent, s * jhi, O);
}

/* The taps of the outer dims (all but the last) that land on the row, each adding its
 * last-dim taps. */
static void outer_taps(ct *t, kir_stmt *parent, int j) {
    kir_kernel *k = t->c->k;
    const kf_conv_attr *a = t->a;
    if (j == a->nsd - 1) {
        last_taps(t, parent);
        return;
    }
    kir_stmt *kl = kf_lw_loop(&(kf_lw){.k = k}, parent, "kt", a->Kd[j], KIR_LOOP_SERIAL, &t->kv[j]);
    /* d = o + pad - k * dil; contributes when d >= 0, d % stride == 0, d / stride < I */
    int dv = kir_add_var(k, "d", KIR_T_I64);
    kir_append(k, kl, kir_decl(k, dv, kir_bin(k, KIR_SUB, kir_add(k, V(k, t->ov[j]), I(k, a->pad[j])),
                                              kir_mul(k, V(k, t->kv[j]), I(k, a->dil[j])))));
    kir_stmt *pos = kir_if(k, kir_bin(k, KIR_GE, V(k, dv), I(k, 0)));
    kir_append(k, kl, pos);
    t->iv[j] = kir_add_var(k, "i", KIR_T_I64);
    kir_append(k, pos, kir_decl(k, t->iv[j], a->stride[j] == 1 ? V(k, dv) : kir_bin(k, KIR_DIV, V(k, dv), I(k, a->stride[j]))));
    kir_expr *cond = kir_bin(k, KIR_LT, V(k, t->iv[j]), I(k, a->I[j]));
    if (a->stride[j] != 1)
        cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_EQ, kir_bin(k, KIR_MOD, V(k, dv), I(k, a->stride[j])), I(k, 0)), cond);
    kir_stmt *in = kir_if(k, cond);
    kir_append(k, pos, in);
    outer_taps(t, in, j + 1);
}

int kf_fl_convt(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *node = &c->g->nodes[gr->anchor];
    kf_conv_attr a;
    if (!kf_fl_conv_attr(c->g, node, &a) || !a.transposed || a.groups != 1)
        return kf_lw_unsupported(err, node, "not a transposed convolution gemm + col2im can run");
    int64_t taps = 1, pin = 1, pout = 1;
    for (int j = 0; j < a.nsd; j++) {
        taps *= a.Kd[j];
        pin *= a.I[j];
        pout *= a.O[j];
    }
    int wb = kf_fl_materialise(c, a.w, s, err);
    if (wb < 0) return wb;
    int xb = kf_fl_materialise(c, a.x, s, err);
    if (xb < 0) return xb;
    int colp = kf_fl_scratch(c, KF_F32, a.N * a.Cout * taps * pin);
    if (colp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    kf_step *st = kf_program_add_step(c->p, KF_STEP_GEMM);
    if (!st) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add a step");
    st->a = wb;
    st->b = xb;
    st->c = colp;
    st->m = a.Cout * taps;
    st->n = pin;
    st->k = a.Cin;
    st->trans_a = 1;
    st->lda = a.Cout * taps;
    st->ldb = pin;
    st->ldc = pin;
    st->alpha = 1.0;
    st->beta = 0.0;
    st->batch = a.N;
    st->stride_a = 0;
    st->stride_b = a.N > 1 ? a.Cin * pin : 0;
    st->stride_c = a.N > 1 ? a.Cout * taps * pin : 0;
    /* col2im + bias, then the epilogue as its own loop */
    int outp = kf_fl_gemm_out(c, gi);
    if (outp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    ct t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.a = &a;
    t.taps = taps;
    t.pin = pin;
    t.colb = kf_fl_kbuf(c, colp, 0);
    t.outb = kf_fl_kbuf(c, outp, 1);
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int L = a.nsd - 1;
    int64_t rows = a.N * a.Cout * (pout / a.O[L]);
    int tv = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, tv, I(k, 0), I(k, rows), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    /* t = ((n * Cout + co) * O0 + o0) ... over all dims but the last */
    int64_t shape[5];
    int nd = 0;
    shape[nd++] = a.N;
    shape[nd++] = a.Cout;
    for (int j = 0; j < L; j++) shape[nd++] = a.O[j];
    kir_expr *coords[5];
    kf_lw_unravel(&(kf_lw){.k = k}, V(k, tv), shape, nd, coords);
    t.n = kir_add_var(k, "n", KIR_T_I64);
    t.co = kir_add_var(k, "co", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, t.n, coords[0]));
    kir_append(k, tl, kir_decl(k, t.co, coords[1]));
    for (int j = 0; j < L; j++) {
        t.ov[j] = kir_add_var(k, "or", KIR_T_I64);
        kir_append(k, tl, kir_decl(k, t.ov[j], coords[2 + j]));
    }
    t.rowb = kir_add_var(k, "ob", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, t.rowb, kir_mul(k, V(k, tv), I(k, a.O[L]))));
    /* the row starts as the bias (or zero) */
    kir_expr *init = kir_flt(k, 0.0, KIR_T_F32);
    if (a.bias >= 0) {
        kir_expr *b = kf_fexpr_elem(&x, a.bias, V(k, t.co));
        if (!b) {
            kir_kernel_free(c->k);
            c->k = NULL;
            return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: bias without storage");
        }
        init = kf_lw_cvt(k, KIR_T_F32, b);
    }
    int bv = kir_add_var(k, "b", KIR_T_F32), z;
    kir_append(k, tl, kir_decl(k, bv, init));
    kir_stmt *zl = kf_lw_loop(&(kf_lw){.k = k}, tl, "z", a.O[L], KIR_LOOP_VECTOR, &z);
    kir_append(k, zl, kir_store(k, t.outb, kir_add(k, V(k, t.rowb), V(k, z)), V(k, bv)));
    /* then every tap of the outer dims that lands on the row adds its last-dim taps */
    outer_taps(&t, tl, 0);
    if (x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return x.rc;
    }
    kf_gsched ks = *s;
    if (ks.vec) ks.vec = 3;   /* vectorised by hand where it can be */
    rc = kf_fl_kernel_end(c, &ks, err);
    if (rc || !kf_fl_has_epilogue(c, gi)) return rc;
    return kf_fl_ew_loop(c, gi, outp, -1, NULL, 0.0, s, err);
}
