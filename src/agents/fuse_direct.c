/* fuse_direct.c: a vectorised direct convolution (any groups, including depthwise, stride,
 * dilation, padding, 1 to 3 spatial dims). Threads split (image, block of output channels);
 * for each row of the output (all spatial dims but the last) the rows of `block` output
 * channels start at the bias, then every input channel of the group and every kernel tap
 * adds weight * input over the output row. The row loop runs only over the positions whose
 * tap lands inside the input (bounds computed per tap, like im2col), so it is branch-free,
 * contiguous for stride 1, and vectorises; the rows stay in L1 while they accumulate. The
 * group's bias and elementwise epilogue follow (the epilogue as one in-place kernel). */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

int kf_fl_direct_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    kf_conv_attr a;
    return kf_fl_conv_attr(g, &g->nodes[an], &a) && !a.transposed;
}

typedef struct dc {
    kf_fl *c;
    const kf_conv_attr *a;
    kf_fexpr x;
    int accb, wb, cb;            /* kernel buffers: accumulator (output), weight */
    int n, co0, ci, cc;          /* vars: image, first output channel, input channel in group, channel */
    int ov[3], iv[3];            /* output coords / input coords of outer dims */
    int block;
} dc;

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

/* Flat row offset of output channel co0 + j at the current outer coords (times O_last). */
static kir_expr *acc_row(dc *d, int j) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    kir_expr *e = kir_add(k, kir_mul(k, V(k, d->n), I(k, a->Cout)), kir_add(k, V(k, d->co0), I(k, j)));
    for (int q = 0; q < a->nsd - 1; q++) e = kir_add(k, kir_mul(k, e, I(k, a->O[q])), V(k, d->ov[q]));
    return kir_mul(k, e, I(k, a->O[a->nsd - 1]));
}

/* The last spatial dim: for every tap, add weight * input over the valid output positions. */
static void last_dim(dc *d, kir_stmt *parent, kir_expr **wtap) {
    kf_fl *c = d->c;
    kir_kernel *k = c->k;
    const kf_conv_attr *a = d->a;
    int L = a->nsd - 1;
    int64_t O = a->O[L], In = a->I[L], s = a->stride[L], dl = a->dil[L], p = a->pad[L];
    int kv;
    kir_stmt *kl = kf_lw_loop(&(kf_lw){.k = k}, parent, "kw", a->Kd[L], KIR_LOOP_SERIAL, &kv);
    int qv = kir_add_var(k, "q", KIR_T_I64);
    kir_append(k, kl, kir_decl(k, qv, kir_bin(k, KIR_SUB, I(k, p), kir_mul(k, V(k, kv), I(k, dl)))));
    kir_expr *qpos = kir_bin(k, KIR_MAX, V(k, qv), I(k, 0));
    kir_expr *lo = kir_bin(k, KIR_DIV, kir_add(k, qpos, I(k, s - 1)), I(k, s));
    kir_expr *t = kir_add(k, V(k, qv), I(k, In - 1));
    kir_expr *hi = kir_select(k, kir_bin(k, KIR_LT, kir_expr_clone(k, t), I(k, 0)), I(k, 0),
                              kir_add(k, kir_bin(k, KIR_DIV, kir_bin(k, KIR_MAX, t, I(k, 0)), I(k, s)), I(k, 1)));
    int lov = kir_add_var(k, "lo", KIR_T_I64), hiv = kir_add_var(k, "hi", KIR_T_I64);
    kir_append(k, kl, kir_decl(k, lov, kir_bin(k, KIR_MIN, lo, I(k, O))));
    kir_append(k, kl, kir_decl(k, hiv, kir_bin(k, KIR_MAX, kir_bin(k, KIR_MIN, hi, I(k, O)), V(k, lov))));
    /* weights of this tap for each output channel of the block */
    int wv[16];
    for (int j = 0; j < d->block; j++) {
        /* w[((co0 + j) * cin_g + ci) * taps + tap], tap = outer taps then kv */
        kir_expr *wi = kir_add(k, kir_mul(k, kir_add(k, V(k, d->co0), I(k, j)), I(k, a->cin_g)), V(k, d->ci));
        for (int q = 0; q < a->nsd; q++)
            wi = kir_add(k, kir_mul(k, wi, I(k, a->Kd[q])), q < L ? kir_expr_clone(k, wtap[q]) : V(k, kv));
        wv[j] = kir_add_var(k, "w", KIR_T_F32);
        kir_append(k, kl, kir_decl(k, wv[j], kir_load(k, d->wb, wi)));
    }
    /* input row base: ((n * Cin + c) * I0 + i0) ... * I_last - q */
    kir_expr *xe = kir_add(k, kir_mul(k, V(k, d->n), I(k, a->Cin)), V(k, d->cc));
    for (int q = 0; q < L; q++) xe = kir_add(k, kir_mul(k, xe, I(k, a->I[q])), V(k, d->iv[q]));
    int xb = kir_add_var(k, "xb", KIR_T_I64);
    kir_append(k, kl, kir_decl(k, xb, kir_bin(k, KIR_SUB, kir_mul(k, xe, I(k, In)), V(k, qv))));
    int ab[16];
    for (int j = 0; j < d->block; j++) {
        ab[j] = kir_add_var(k, "ab", KIR_T_I64);
        kir_append(k, kl, kir_decl(k, ab[j], acc_row(d, j)));
    }
    int o = kir_add_var(k, "o", KIR_T_I64);
    kir_stmt *ol = kir_for(k, o, V(k, lov), V(k, hiv), 1, KIR_LOOP_VECTOR);
    kir_append(k, kl, ol);
    kir_expr *xi = kir_add(k, V(k, xb), s == 1 ? V(k, o) : kir_mul(k, V(k, o), I(k, s)));
    kir_expr *xval = kf_fexpr_elem(&d->x, a->x, xi);
    if (!xval) return;
    int xv = kir_add_var(k, "xv", KIR_T_F32);
    kir_append(k, ol, kir_decl(k, xv, kf_lw_cvt(k, KIR_T_F32, xval)));
    for (int j = 0; j < d->block; j++) {
        kir_expr *ai = kir_add(k, V(k, ab[j]), V(k, o));
        kir_expr *sum = kir_add(k, kir_load(k, d->accb, kir_expr_clone(k, ai)), kir_mul(k, V(k, wv[j]), V(k, xv)));
        kir_append(k, ol, kir_store(k, d->accb, ai, sum));
    }
}

/* Outer taps from dim q inward (each with its in-range test), then the last dim. */
static void taps(dc *d, kir_stmt *parent, int q, kir_expr **wtap) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    if (q == a->nsd - 1) {
        last_dim(d, parent, wtap);
        return;
    }
    int kv;
    kir_stmt *kl = kf_lw_loop(&(kf_lw){.k = k}, parent, "kt", a->Kd[q], KIR_LOOP_SERIAL, &kv);
    d->iv[q] = kir_add_var(k, "ii", KIR_T_I64);
    kir_expr *i = kir_add(k, kir_mul(k, V(k, d->ov[q]), I(k, a->stride[q])), kir_mul(k, V(k, kv), I(k, a->dil[q])));
    kir_append(k, kl, kir_decl(k, d->iv[q], kir_bin(k, KIR_SUB, i, I(k, a->pad[q]))));
    kir_expr *in = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, V(k, d->iv[q]), I(k, 0)),
                           kir_bin(k, KIR_LT, V(k, d->iv[q]), I(k, a->I[q])));
    kir_stmt *iff = kir_if(k, in);
    kir_append(k, kl, iff);
    wtap[q] = V(k, kv);
    taps(d, iff, q + 1, wtap);
}

/* Outer output dims from q inward; at the innermost row: init, then channels and taps. */
static void rows(dc *d, kir_stmt *parent, int q) {
    kir_kernel *k = d->c->k;
    const kf_conv_attr *a = d->a;
    if (q < a->nsd - 1) {
        kir_stmt *l = kf_lw_loop(&(kf_lw){.k = k}, parent, "or", a->O[q], KIR_LOOP_SERIAL, &d->ov[q]);
        rows(d, l, q + 1);
        return;
    }
    int64_t OL = a->O[a->nsd - 1];
    for (int j = 0; j < d->block; j++) {
        int ab = kir_add_var(k, "rb", KIR_T_I64);
        kir_append(k, parent, kir_decl(k, ab, acc_row(d, j)));
        int o;
        kir_stmt *il = kf_lw_loop(&(kf_lw){.k = k}, parent, "o", OL, KIR_LOOP_VECTOR, &o);
        kir_expr *b = kir_flt(k, 0.0, KIR_T_F32);
        if (a->bias >= 0) {
            kir_expr *bl = kf_fexpr_elem(&d->x, a->bias, kir_add(k, V(k, d->co0), I(k, j)));
            if (!bl) return;
            b = kf_lw_cvt(k, KIR_T_F32, bl);
        }
        kir_append(k, il, kir_store(k, d->accb, kir_add(k, V(k, ab), V(k, o)), b));
    }
    int civ;
    kir_stmt *cl = kf_lw_loop(&(kf_lw){.k = k}, parent, "ci", a->cin_g, KIR_LOOP_SERIAL, &civ);
    d->ci = civ;
    d->cc = kir_add_var(k, "c", KIR_T_I64);
    kir_expr *g = kir_bin(k, KIR_DIV, V(k, d->co0), I(k, a->cout_g));
    kir_append(k, cl, kir_decl(k, d->cc, kir_add(k, kir_mul(k, g, I(k, a->cin_g)), V(k, civ))));
    kir_expr *wtap[3] = {NULL, NULL, NULL};
    taps(d, cl, 0, wtap);
}

static int pick_block(const kf_conv_attr *a, int want) {
    if (want <= 0) want = 4;
    if (want > 16) want = 16;
    for (int b = want; b > 1; b--)
        if (a->cout_g % b == 0) return b;
    return 1;
}

int kf_fl_conv_direct(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    kf_conv_attr a;
    if (!kf_fl_conv_attr(c->g, n, &a) || a.transposed)
        return kf_lw_unsupported(err, n, "not a convolution the direct kernel can run");
    int wpb = kf_fl_materialise(c, a.w, s, err);
    if (wpb < 0) return wpb;
    int accp = kf_fl_gemm_out(c, gi);
    if (accp < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    dc d;
    memset(&d, 0, sizeof d);
    d.c = c;
    d.a = &a;
    d.block = pick_block(&a, s->block);
    kf_fl_fexpr(c, &d.x);
    d.accb = kf_fl_kbuf(c, accp, 1);
    d.wb = kf_fl_kbuf(c, wpb, 0);
    int64_t nb = a.Cout / d.block;
    int t = kir_add_var(k, "t", KIR_T_I64);
    kir_stmt *tl = kir_for(k, t, I(k, 0), I(k, a.N * nb), 1, s->parallel ? KIR_LOOP_PARALLEL : KIR_LOOP_SERIAL);
    kir_append(k, k->body, tl);
    d.n = kir_add_var(k, "n", KIR_T_I64);
    d.co0 = kir_add_var(k, "co", KIR_T_I64);
    kir_append(k, tl, kir_decl(k, d.n, kir_bin(k, KIR_DIV, V(k, t), I(k, nb))));
    kir_append(k, tl, kir_decl(k, d.co0, kir_mul(k, kir_bin(k, KIR_MOD, V(k, t), I(k, nb)), I(k, d.block))));
    rows(&d, tl, 0);
    if (d.x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return d.x.rc;
    }
    /* the loops are already vectorised where it matters: keep the schedule from re-splitting */
    kf_gsched ks = *s;
    ks.vec = 0;
    rc = kf_fl_kernel_end(c, &ks, err);
    if (rc) return rc;
    int out = n->outs[0];
    if (!kf_fl_has_epilogue(c, gi) && (!c->plan->stored[out] || kf_fl_value_pbuf(c, out) == accp)) return 0;
    return kf_fl_ew_loop(c, gi, accp, -1, NULL, 0.0, s, err);
}
