/* fuse_conv.c: convolutions as im2col + gemm. The im2col kernel writes, for each image, the
 * [Cin * taps, output positions] matrix of input values under each kernel tap (zero where
 * the tap falls in the padding): per row, runs of the innermost output dim are split into
 * the part below the input, the part inside it (a strided copy, contiguous for stride 1) and
 * the part above it, so every loop is branch-free and vectorises. A 1x1 convolution with
 * stride 1 and no padding reads the input directly. One batched gemm step multiplies the
 * weight [Cout, Cin * taps] by every image's matrix; bias and the group's elementwise
 * epilogue follow in one kernel. */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"
#include "kir/kir_sched.h"

typedef kf_conv_attr conv_attr;

static void fill3(int64_t *dst, const int64_t *src, int n, int nsd, int64_t dflt) {
    for (int j = 0; j < nsd; j++) dst[j] = n <= 0 ? dflt : (n == 1 ? src[0] : src[j < n ? j : n - 1]);
}

int kf_fl_conv_attr(const kf_graph *g, const kf_node *n, kf_conv_attr *a) {
    memset(a, 0, sizeof *a);
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    if (strcmp(op, "convolution") != 0 && strcmp(op, "_convolution") != 0 && strcmp(op, "conv1d") != 0 &&
        strcmp(op, "conv2d") != 0 && strcmp(op, "conv3d") != 0)
        return 0;
    a->x = kf_lw_arg_tensor(n, "input", 0);
    a->w = kf_lw_arg_tensor(n, "weight", 1);
    a->bias = kf_lw_arg_tensor(n, "bias", 2);
    if (a->x < 0 || a->w < 0 || n->n_outs < 1 || n->outs[0] < 0) return 0;
    const kf_tdesc *xd = &g->values[a->x].desc, *wd = &g->values[a->w].desc;
    const kf_tdesc *od = &g->values[n->outs[0]].desc;
    a->nsd = xd->ndim - 2;
    if (a->nsd < 1 || a->nsd > 3 || wd->ndim != xd->ndim || od->ndim != xd->ndim) return 0;
    if (xd->dtype != KF_F32 || wd->dtype != KF_F32 || od->dtype != KF_F32) return 0;
    if (a->bias >= 0 && g->values[a->bias].desc.dtype != KF_F32) return 0;
    int nd_named = strncmp(op, "conv", 4) == 0 && op[4] != 'o';
    a->transposed = nd_named ? 0 : (int)kf_lw_arg_int(n, "transposed", 6, 0);
    int64_t v[8];
    int c = kf_lw_arg_ints(n, "stride", 3, v, 8);
    fill3(a->stride, v, c, a->nsd, 1);
    c = kf_lw_arg_ints(n, "dilation", 5, v, 8);
    fill3(a->dil, v, c, a->nsd, 1);
    const kf_arg *pa = kf_lw_arg(n, "padding", 4);
    if (!pa || pa->kind == KF_ARG_STR) return 0;
    c = kf_lw_arg_ints(n, "padding", 4, v, 8);
    fill3(a->pad, v, c, a->nsd, 0);
    c = nd_named ? 0 : kf_lw_arg_ints(n, "output_padding", 7, v, 8);
    fill3(a->opad, v, c, a->nsd, 0);
    a->groups = kf_lw_arg_int(n, "groups", nd_named ? 6 : 8, 1);
    if (a->groups < 1) return 0;
    a->N = xd->shape[0];
    a->Cin = xd->shape[1];
    a->Cout = od->shape[1];
    a->cin_g = a->Cin / a->groups;
    a->cout_g = a->Cout / a->groups;
    if (a->cin_g * a->groups != a->Cin || a->cout_g * a->groups != a->Cout) return 0;
    if (a->transposed ? (wd->shape[0] != a->Cin || wd->shape[1] != a->cout_g)
                      : (wd->shape[0] != a->Cout || wd->shape[1] != a->cin_g))
        return 0;
    for (int j = 0; j < a->nsd; j++) {
        a->I[j] = xd->shape[2 + j];
        a->O[j] = od->shape[2 + j];
        a->Kd[j] = wd->shape[2 + j];
        if (a->stride[j] < 1 || a->dil[j] < 1 || a->pad[j] < 0) return 0;
        /* the output size the attributes imply must be the graph's */
        int64_t o = a->transposed
            ? (a->I[j] - 1) * a->stride[j] - 2 * a->pad[j] + a->dil[j] * (a->Kd[j] - 1) + a->opad[j] + 1
            : (a->I[j] + 2 * a->pad[j] - a->dil[j] * (a->Kd[j] - 1) - 1) / a->stride[j] + 1;
        if (o != a->O[j]) return 0;
    }
    return 1;
}

static int conv_attr_make(const kf_graph *g, const kf_node *n, conv_attr *a) {
    return kf_fl_conv_attr(g, n, a) && !a->transposed && a->groups == 1;
}

static int64_t conv_taps(const conv_attr *a) {
    int64_t t = 1;
    for (int j = 0; j < a->nsd; j++) t *= a->Kd[j];
    return t;
}

static int64_t conv_positions(const conv_attr *a) {
    int64_t t = 1;
    for (int j = 0; j < a->nsd; j++) t *= a->O[j];
    return t;
}

static int is_pointwise(const conv_attr *a) {
    for (int j = 0; j < a->nsd; j++)
        if (a->Kd[j] != 1 || a->stride[j] != 1 || a->pad[j] != 0) return 0;
    return 1;
}

int kf_fl_conv_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    conv_attr a;
    if (!conv_attr_make(g, &g->nodes[an], &a)) return 0;
    double col = (double)a.N * (double)a.Cin * (double)conv_taps(&a) * (double)conv_positions(&a) * 4.0;
    return is_pointwise(&a) || col <= 1.5e9;
}

typedef struct i2c {
    kf_fl *c;
    const conv_attr *a;
    kf_fexpr x;
    int colb;
    int kv[3];      /* kernel tap coords */
} i2c;

static kir_expr *I(kir_kernel *k, int64_t v) { return kir_int(k, v); }
static kir_expr *V(kir_kernel *k, int v) { return kir_var(k, v); }

/* col[off + q] = 0 for q in [lo, hi). */
static void zero_run(i2c *z, kir_stmt *parent, kir_expr *off, kir_expr *lo, kir_expr *hi) {
    kir_kernel *k = z->c->k;
    int q = kir_add_var(k, "q", KIR_T_I64);
    kir_stmt *l = kir_for(k, q, lo, hi, 1, KIR_LOOP_SERIAL);
    kir_append(k, parent, l);
    kir_append(k, l, kir_store(k, z->colb, kir_add(k, kir_expr_clone(k, off), V(k, q)), kir_flt(k, 0.0, KIR_T_F32)));
}

/* Spatial dim j: colo / xo are the offsets of the enclosing dims (col row, x plane). */
static void emit_dim(i2c *z, kir_stmt *parent, int j, kir_expr *colo, kir_expr *xo) {
    kf_fl *c = z->c;
    kir_kernel *k = c->k;
    const conv_attr *a = z->a;
    int64_t O = a->O[j], In = a->I[j], s = a->stride[j], d = a->dil[j], p = a->pad[j];
    /* q = p - k*d: input i = o*s - q */
    int qv = kir_add_var(k, "q", KIR_T_I64);
    kir_append(k, parent, kir_decl(k, qv, kir_bin(k, KIR_SUB, I(k, p), kir_mul(k, V(k, z->kv[j]), I(k, d)))));
    if (j == a->nsd - 1) {
        /* lo: first o with o*s >= q; hi: one past the last o with o*s - q <= In - 1 */
        kir_expr *qpos = kir_bin(k, KIR_MAX, V(k, qv), I(k, 0));
        kir_expr *lo = kir_bin(k, KIR_DIV, kir_add(k, qpos, I(k, s - 1)), I(k, s));
        kir_expr *t = kir_add(k, V(k, qv), I(k, In - 1));
        kir_expr *hi = kir_select(k, kir_bin(k, KIR_LT, kir_expr_clone(k, t), I(k, 0)), I(k, 0),
                                  kir_add(k, kir_bin(k, KIR_DIV, kir_bin(k, KIR_MAX, t, I(k, 0)), I(k, s)), I(k, 1)));
        hi = kir_bin(k, KIR_MIN, hi, I(k, O));
        int lov = kir_add_var(k, "lo", KIR_T_I64), hiv = kir_add_var(k, "hi", KIR_T_I64);
        kir_append(k, parent, kir_decl(k, lov, kir_bin(k, KIR_MIN, lo, I(k, O))));
        kir_append(k, parent, kir_decl(k, hiv, kir_bin(k, KIR_MAX, hi, V(k, lov))));
        int cb = kir_add_var(k, "cb", KIR_T_I64), xb = kir_add_var(k, "xb", KIR_T_I64);
        kir_append(k, parent, kir_decl(k, cb, kir_mul(k, colo, I(k, O))));
        kir_append(k, parent, kir_decl(k, xb, kir_bin(k, KIR_SUB, kir_mul(k, xo, I(k, In)), V(k, qv))));
        zero_run(z, parent, V(k, cb), I(k, 0), V(k, lov));
        int o = kir_add_var(k, "o", KIR_T_I64);
        kir_stmt *l = kir_for(k, o, V(k, lov), V(k, hiv), 1, KIR_LOOP_SERIAL);
        kir_append(k, parent, l);
        kir_expr *xi = kir_add(k, V(k, xb), s == 1 ? V(k, o) : kir_mul(k, V(k, o), I(k, s)));
        kir_expr *val = kf_fexpr_elem(&z->x, a->x, xi);
        if (val) kir_append(k, l, kir_store(k, z->colb, kir_add(k, V(k, cb), V(k, o)), val));
        zero_run(z, parent, V(k, cb), V(k, hiv), I(k, O));
        return;
    }
    int64_t inner = 1;
    for (int q = j + 1; q < a->nsd; q++) inner *= a->O[q];
    int o = kir_add_var(k, "o", KIR_T_I64);
    kir_stmt *l = kir_for(k, o, I(k, 0), I(k, O), 1, KIR_LOOP_SERIAL);
    kir_append(k, parent, l);
    int iv = kir_add_var(k, "i", KIR_T_I64);
    kir_append(k, l, kir_decl(k, iv, kir_bin(k, KIR_SUB, s == 1 ? V(k, o) : kir_mul(k, V(k, o), I(k, s)), V(k, qv))));
    kir_expr *in = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, V(k, iv), I(k, 0)), kir_bin(k, KIR_LT, V(k, iv), I(k, In)));
    kir_stmt *iff = kir_if(k, in);
    kir_append(k, l, iff);
    kir_expr *colo2 = kir_add(k, kir_mul(k, kir_expr_clone(k, colo), I(k, O)), V(k, o));
    kir_expr *xo2 = kir_add(k, kir_mul(k, kir_expr_clone(k, xo), I(k, In)), V(k, iv));
    emit_dim(z, iff, j + 1, colo2, xo2);
    kir_stmt *els = kir_block(k);
    kir_append_else(k, iff, els);
    zero_run(z, els, kir_mul(k, kir_add(k, kir_mul(k, colo, I(k, O)), V(k, o)), I(k, inner)), I(k, 0), I(k, inner));
}

static int im2col_kernel(kf_fl *c, const conv_attr *a, int colb_pb, const kf_gsched *s, kf_err *err) {
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    i2c z;
    memset(&z, 0, sizeof z);
    z.c = c;
    z.a = a;
    kf_fl_fexpr(c, &z.x);
    z.colb = kf_fl_kbuf(c, colb_pb, 1);
    int64_t taps = conv_taps(a), K = a->Cin * taps;
    int r = kir_add_var(k, "r", KIR_T_I64);
    kir_stmt *rl = kir_for(k, r, I(k, 0), I(k, a->N * K), 1, KIR_LOOP_PARALLEL);
    kir_append(k, k->body, rl);
    int nv = kir_add_var(k, "n", KIR_T_I64), ci = kir_add_var(k, "ci", KIR_T_I64), tv = kir_add_var(k, "t", KIR_T_I64);
    kir_append(k, rl, kir_decl(k, nv, kir_bin(k, KIR_DIV, V(k, r), I(k, K))));
    kir_append(k, rl, kir_decl(k, ci, kir_bin(k, KIR_DIV, kir_bin(k, KIR_MOD, V(k, r), I(k, K)), I(k, taps))));
    kir_append(k, rl, kir_decl(k, tv, kir_bin(k, KIR_MOD, V(k, r), I(k, taps))));
    int64_t below = taps;
    for (int j = 0; j < a->nsd; j++) {
        below /= a->Kd[j];
        z.kv[j] = kir_add_var(k, "kt", KIR_T_I64);
        kir_expr *e = below > 1 ? kir_bin(k, KIR_DIV, V(k, tv), I(k, below)) : V(k, tv);
        if (j > 0) e = kir_bin(k, KIR_MOD, e, I(k, a->Kd[j]));
        kir_append(k, rl, kir_decl(k, z.kv[j], e));
    }
    /* x plane offset (n * Cin + ci), col row offset r */
    kir_expr *xo = kir_add(k, kir_mul(k, V(k, nv), I(k, a->Cin)), V(k, ci));
    emit_dim(&z, rl, 0, V(k, r), xo);
    if (z.x.rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return z.x.rc;
    }
    kf_gsched ks = *s;
    ks.chunk = 0;
    return kf_fl_kernel_end(c, &ks, err);
}

int kf_fl_conv_im2col(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    conv_attr a;
    if (!conv_attr_make(c->g, n, &a)) return kf_lw_unsupported(err, n, "not a convolution im2col can run");
    int64_t taps = conv_taps(&a), K = a.Cin * taps, P = conv_positions(&a);
    int wb = kf_fl_materialise(c, a.w, s, err);
    if (wb < 0) return wb;
    int bb;
    if (is_pointwise(&a)) {
        bb = kf_fl_materialise(c, a.x, s, err);
        if (bb < 0) return bb;
    } else {
        bb = kf_fl_scratch(c, KF_F32, a.N * K * P);
        if (bb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
        c->gi = gi;
        int rc = im2col_kernel(c, &a, bb, s, err);
        if (rc) return rc;
    }
    int cb = kf_fl_gemm_out(c, gi);
    if (cb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    kf_step *st = kf_program_add_step(c->p, KF_STEP_GEMM);
    if (!st) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add a step");
    st->a = wb;
    st->b = bb;
    st->c = cb;
    st->m = a.Cout;
    st->n = P;
    st->k = K;
    st->lda = K;
    st->ldb = P;
    st->ldc = P;
    st->alpha = 1.0;
    st->beta = 0.0;
    st->batch = a.N;
    st->stride_a = 0;
    st->stride_b = a.N > 1 ? K * P : 0;
    st->stride_c = a.N > 1 ? a.Cout * P : 0;
    int out = n->outs[0];
    if (a.bias < 0 && !kf_fl_has_epilogue(c, gi) && (!c->plan->stored[out] || kf_fl_value_pbuf(c, out) == cb))
        return 0;
    kf_tdesc bd;
    memset(&bd, 0, sizeof bd);
    if (a.bias >= 0) {
        bd = c->g->values[a.bias].desc;
        bd.ndim = 1 + a.nsd;
        bd.shape[0] = a.Cout;
        for (int j = 0; j < a.nsd; j++) bd.shape[1 + j] = 1;
        kf_tdesc_set_contiguous(&bd);
    }
    return kf_fl_ew_loop(c, gi, cb, a.bias, a.bias >= 0 ? &bd : NULL, 1.0, s, err);
}
