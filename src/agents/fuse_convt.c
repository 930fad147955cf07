/* fuse_convt.c: transposed convolutions (groups 1) as a gemm and a col2im gather. The gemm
 * step computes, per image, col = W^T x: [Cout * taps, input positions] from the weight
 * [Cin, Cout * taps] (read transposed in place) and the image [Cin, input positions]. The
 * gather kernel then forms each output element as bias + the sum of the col entries of the
 * taps that land on it (o + pad - k * dil divisible by the stride and inside the input); the
 * group's elementwise epilogue follows as one vectorised loop over the result. */
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
    int colb, acc, n, co;
    int ov[3], kv[3], iv[3];
    int64_t taps, pin;
} ct;

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

static void tap(ct *t, kir_stmt *parent, int j) {
    kir_kernel *k = t->c->k;
    const kf_conv_attr *a = t->a;
    if (j == a->nsd) {
        /* col[((n * Cout + co) * taps + tap) * pin + flat(i)] */
        kir_expr *tp = I(k, 0), *ip = I(k, 0);
        for (int q = 0; q < a->nsd; q++) {
            tp = kir_add(k, kir_mul(k, tp, I(k, a->Kd[q])), V(k, t->kv[q]));
            ip = kir_add(k, kir_mul(k, ip, I(k, a->I[q])), V(k, t->iv[q]));
        }
        kir_expr *row = kir_add(k, kir_mul(k, kir_add(k, kir_mul(k, V(k, t->n), I(k, a->Cout)), V(k, t->co)), I(k, t->taps)), tp);
        kir_expr *ci = kir_add(k, kir_mul(k, row, I(k, t->pin)), ip);
        kir_append(k, parent, kir_assign(k, t->acc, kir_add(k, V(k, t->acc), kir_load(k, t->colb, ci))));
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
    tap(t, in, j + 1);
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
    /* col2im + bias + epilogue */
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
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    int64_t rows = a.N * a.Cout * (pout / a.O[a.nsd - 1]);
    int tv = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, tv, I(k, 0), I(k, rows), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    /* t = ((n * Cout + co) * O0 + o0) ... over all dims but the last */
    int64_t shape[5];
    int nd = 0;
    shape[nd++] = a.N;
    shape[nd++] = a.Cout;
    for (int j = 0; j < a.nsd - 1; j++) shape[nd++] = a.O[j];
    kir_expr *coords[5];
    kf_lw_unravel(&(kf_lw){.k = k}, V(k, tv), shape, nd, coords);
    t.n = kir_add_var(k, "n", KIR_T_I64);
    t.co = kir_add_var(k, "co", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, t.n, coords[0]));
    kir_append(k, tl, kir_decl(k, t.co, coords[1]));
    for (int j = 0; j < a.nsd - 1; j++) {
        t.ov[j] = kir_add_var(k, "or", KIR_T_I64);
        kir_append(k, tl, kir_decl(k, t.ov[j], coords[2 + j]));
    }
    int L = a.nsd - 1;
    kir_stmt *ol = kf_lw_loop(&(kf_lw){.k = k}, tl, "ol", a.O[L], KIR_LOOP_SERIAL, &t.ov[L]);
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
    t.acc = kir_add_var(k, "acc", KIR_T_F32);
    kir_append(k, ol, kir_decl(k, t.acc, init));
    tap(&t, ol, 0);
    kir_expr *idx = kir_add(k, kir_mul(k, V(k, tv), I(k, a.O[L])), V(k, t.ov[L]));
    /* the gather's branches keep it scalar: an epilogue runs after it as its own vectorised
     * loop over the result (in place), the plain result is stored right here */
    int epi = kf_fl_has_epilogue(c, gi);
    int outp = epi ? kf_fl_gemm_out(c, gi) : -1;
    if (epi) {
        int ob = outp >= 0 ? kf_fl_kbuf(c, outp, 1) : -1;
        if (ob < 0) rc = kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
        else kir_append(k, ol, kir_store(k, ob, idx, V(k, t.acc)));
    } else {
        rc = kf_fl_epilogue_at(c, &x, gi, ol, t.acc, idx);
    }
    if (rc || x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return rc ? rc : x.rc;
    }
    kf_gsched ks = *s;
    ks.vec = 0;
    rc = kf_fl_kernel_end(c, &ks, err);
    if (rc || !epi) return rc;
    return kf_fl_ew_loop(c, gi, outp, -1, NULL, 0.0, s, err);
}
