/* lower_conv.c: convolutions (aten.convolution, _convolution, conv1d/2d/3d and
 * conv_transpose1d/2d/3d) with 1 to 3 spatial dims, stride, padding, dilation, groups,
 * transposed with output_padding, bias or none. One kernel: parallel over blocks of up to 8
 * consecutive outputs along the last spatial dim (one weight load per tap serves the block),
 * serial over the input channels of the group and the kernel window, accumulating in double;
 * out-of-range taps are skipped (zero padding). */
#include <string.h>
#include "agents/lower.h"

typedef struct conv_plan {
    int x, wt, bias;
    int nsd;                               /* spatial dims */
    int transposed;
    int64_t groups;
    int64_t N, Cin, Cout, cin_g, cout_g;
    int64_t I[3], O[3], Kd[3], stride[3], pad[3], dil[3];
    int64_t xstr[KF_MAX_DIMS], wstr[KF_MAX_DIMS];
} conv_plan;

static void fill3(int64_t *dst, const int64_t *src, int n, int nsd, int64_t dflt) {
    for (int j = 0; j < nsd; j++) dst[j] = n <= 0 ? dflt : (n == 1 ? src[0] : src[j < n ? j : n - 1]);
}

static int conv_plan_make(kf_lw *w, conv_plan *p, kf_err *err) {
    const kf_node *n = w->n;
    memset(p, 0, sizeof *p);
    p->x = kf_lw_arg_tensor(n, "input", 0);
    p->wt = kf_lw_arg_tensor(n, "weight", 1);
    p->bias = kf_lw_arg_tensor(n, "bias", 2);
    if (p->x < 0 || p->wt < 0) return kf_lw_unsupported(err, n, "missing input or weight");
    const kf_tdesc *xd = kf_lw_desc(w, p->x), *wd = kf_lw_desc(w, p->wt);
    const kf_tdesc *od = kf_lw_desc(w, kf_lw_out(w, 0));
    p->nsd = xd->ndim - 2;
    if (p->nsd < 1 || p->nsd > 3 || wd->ndim != xd->ndim || od->ndim != xd->ndim)
        return kf_lw_unsupported(err, n, "needs a batched input with 1 to 3 spatial dims");
    const char *op = w->op;
    int is_t_named = strncmp(op, "conv_transpose", 14) == 0;
    p->transposed = is_t_named ? 1 : (int)kf_lw_arg_int(n, "transposed", 6, 0);
    int64_t v[8];
    int c;
    c = kf_lw_arg_ints(n, "stride", 3, v, 8);
    fill3(p->stride, v, c, p->nsd, 1);
    c = kf_lw_arg_ints(n, "dilation", is_t_named ? 7 : 5, v, 8);
    fill3(p->dil, v, c, p->nsd, 1);
    const kf_arg *pa = kf_lw_arg(n, "padding", 4);
    for (int j = 0; j < p->nsd; j++) p->Kd[j] = wd->shape[2 + j];
    if (pa && pa->kind == KF_ARG_STR) {
        int same = pa->s && strcmp(pa->s, "same") == 0;
        for (int j = 0; j < p->nsd; j++) p->pad[j] = same ? p->dil[j] * (p->Kd[j] - 1) / 2 : 0;
    } else {
        c = kf_lw_arg_ints(n, "padding", 4, v, 8);
        fill3(p->pad, v, c, p->nsd, 0);
    }
    int is_conv_nd = strcmp(op, "conv1d") == 0 || strcmp(op, "conv2d") == 0 || strcmp(op, "conv3d") == 0;
    p->groups = kf_lw_arg_int(n, "groups", is_t_named || is_conv_nd ? 6 : 8, 1);
    if (p->groups < 1) p->groups = 1;
    p->N = xd->shape[0];
    p->Cin = xd->shape[1];
    p->Cout = od->shape[1];
    p->cin_g = p->Cin / p->groups;
    p->cout_g = p->Cout / p->groups;
    if (p->cin_g * p->groups != p->Cin || p->cout_g * p->groups != p->Cout)
        return kf_lw_unsupported(err, n, "channels not divisible by groups");
    if (p->transposed ? (wd->shape[0] != p->Cin || wd->shape[1] != p->cout_g)
                      : (wd->shape[0] != p->Cout || wd->shape[1] != p->cin_g))
        return kf_lw_unsupported(err, n, "weight shape does not match the channels");
    for (int j = 0; j < p->nsd; j++) {
        p->I[j] = xd->shape[2 + j];
        p->O[j] = od->shape[2 + j];
    }
    kf_lw_strides(xd->shape, xd->ndim, p->xstr);
    kf_lw_strides(wd->shape, wd->ndim, p->wstr);
    return 0;
}

#define CONV_NB 8   /* outputs along the last spatial dim computed together */

typedef struct conv_ctx {
    kf_lw *w;
    const conv_plan *p;
    int width;                            /* lanes: consecutive outputs along the last dim */
    int acc[CONV_NB];                     /* one accumulator per lane */
    int n_v, oc_v, c_v, wc_v;             /* batch, out channel, in channel, weight row */
    int os_v[3];                          /* output coords of the outer spatial dims */
    int ow0_v;                            /* first output of the block along the last dim */
    int kk_v[3], ii_v[3];                 /* kernel taps and input coords (outer dims) */
} conv_ctx;

/* The last spatial dim: one weight load per tap, shared by the lanes, each lane with its own
 * input position and bounds check. */
static void conv_last_dim(conv_ctx *c, kir_stmt *parent) {
    kf_lw *w = c->w;
    kir_kernel *k = w->k;
    const conv_plan *p = c->p;
    int L = p->nsd - 1, nd = p->nsd + 2;
    kir_expr *xc[KF_MAX_DIMS], *wc[KF_MAX_DIMS];
    xc[0] = kir_var(k, c->n_v);
    xc[1] = kir_var(k, c->c_v);
    wc[0] = kir_var(k, c->wc_v);
    wc[1] = p->transposed ? kir_bin(k, KIR_MOD, kir_var(k, c->oc_v), kf_lw_i(w, p->cout_g))
                          : kir_bin(k, KIR_MOD, kir_var(k, c->c_v), kf_lw_i(w, p->cin_g));
    for (int d = 0; d < L; d++) {
        xc[2 + d] = kir_var(k, c->ii_v[d]);
        wc[2 + d] = kir_var(k, c->kk_v[d]);
    }
    xc[nd - 1] = NULL;
    wc[nd - 1] = NULL;
    int xrow = kf_lw_local(w, parent, "xrow", KIR_T_I64, kf_lw_dot(w, xc, p->xstr, nd, 0));
    int wrow = kf_lw_local(w, parent, "wrow", KIR_T_I64, kf_lw_dot(w, wc, p->wstr, nd, 0));
    int kk;
    kir_stmt *loop = kf_lw_loop(w, parent, "kk", p->Kd[L], KIR_LOOP_SERIAL, &kk);
    kir_type acc_t = k->vars[c->acc[0]].type;
    int wv = kf_lw_local(w, loop, "wv", acc_t,
                         kf_lw_cvt(k, acc_t, kf_lw_load(w, p->wt, kir_add(k, kir_var(k, wrow), kir_var(k, kk)))));
    kir_expr *kd = kir_mul(k, kir_var(k, kk), kf_lw_i(w, p->dil[L]));
    int base;
    if (!p->transposed) {
        /* lane l reads i = (ow0 + l) * stride - pad + kk * dil */
        base = kf_lw_local(w, loop, "ib", KIR_T_I64,
                           kir_add(k, kir_bin(k, KIR_SUB, kir_mul(k, kir_var(k, c->ow0_v), kf_lw_i(w, p->stride[L])),
                                              kf_lw_i(w, p->pad[L])), kd));
    } else {
        /* lane l: t = ow0 + l + pad - kk * dil; contributes when t >= 0, t % stride == 0, t / stride < I */
        base = kf_lw_local(w, loop, "tb", KIR_T_I64,
                           kir_bin(k, KIR_SUB, kir_add(k, kir_var(k, c->ow0_v), kf_lw_i(w, p->pad[L])), kd));
    }
    for (int l = 0; l < c->width; l++) {
        kir_expr *cond, *ii;
        if (!p->transposed) {
            int iv = kf_lw_local(w, loop, "ii", KIR_T_I64, kir_add(k, kir_var(k, base), kf_lw_i(w, l * p->stride[L])));
            cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kir_var(k, iv), kf_lw_i(w, 0)),
                           kir_bin(k, KIR_LT, kir_var(k, iv), kf_lw_i(w, p->I[L])));
            ii = kir_var(k, iv);
        } else {
            int tv = kf_lw_local(w, loop, "t", KIR_T_I64, kir_add(k, kir_var(k, base), kf_lw_i(w, l)));
            ii = p->stride[L] == 1 ? kir_var(k, tv) : kir_bin(k, KIR_DIV, kir_var(k, tv), kf_lw_i(w, p->stride[L]));
            cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kir_var(k, tv), kf_lw_i(w, 0)),
                           kir_bin(k, KIR_LT, kf_lw_dup(w, ii), kf_lw_i(w, p->I[L])));
            if (p->stride[L] != 1)
                cond = kir_bin(k, KIR_AND, cond, kir_bin(k, KIR_EQ, kir_bin(k, KIR_MOD, kir_var(k, tv), kf_lw_i(w, p->stride[L])),
                                                         kf_lw_i(w, 0)));
        }
        kir_stmt *iff = kir_if(k, cond);
        kir_append(k, loop, iff);
        kir_expr *xv = kf_lw_cvt(k, acc_t, kf_lw_load(w, p->x, kir_add(k, kir_var(k, xrow), ii)));
        kir_append(k, iff, kir_assign(k, c->acc[l], kir_add(k, kir_var(k, c->acc[l]), kir_mul(k, xv, kir_var(k, wv)))));
    }
}

/* Loops over the kernel window of the outer spatial dims from j inward, then the last dim. */
static void conv_taps(conv_ctx *c, kir_stmt *parent, int j) {
    kf_lw *w = c->w;
    kir_kernel *k = w->k;
    const conv_plan *p = c->p;
    if (j == p->nsd - 1) {
        conv_last_dim(c, parent);
        return;
    }
    kir_stmt *loop = kf_lw_loop(w, parent, "kk", p->Kd[j], KIR_LOOP_SERIAL, &c->kk_v[j]);
    kir_expr *cond;
    if (!p->transposed) {
        /* i = o * stride - pad + kk * dil */
        kir_expr *i = kir_add(k, kir_mul(k, kir_var(k, c->os_v[j]), kf_lw_i(w, p->stride[j])),
                              kir_mul(k, kir_var(k, c->kk_v[j]), kf_lw_i(w, p->dil[j])));
        if (p->pad[j]) i = kir_bin(k, KIR_SUB, i, kf_lw_i(w, p->pad[j]));
        c->ii_v[j] = kf_lw_local(w, loop, "ii", KIR_T_I64, i);
        cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_GE, kir_var(k, c->ii_v[j]), kf_lw_i(w, 0)),
                       kir_bin(k, KIR_LT, kir_var(k, c->ii_v[j]), kf_lw_i(w, p->I[j])));
    } else {
        /* t = o + pad - kk * dil; contributes when t >= 0, t % stride == 0, t / stride < I */
        kir_expr *t = kir_bin(k, KIR_SUB, kir_add(k, kir_var(k, c->os_v[j]), kf_lw_i(w, p->pad[j])),
                              kir_mul(k, kir_var(k, c->kk_v[j]), kf_lw_i(w, p->dil[j])));
        int tv = kf_lw_local(w, loop, "t", KIR_T_I64, t);
        cond = kir_bin(k, KIR_GE, kir_var(k, tv), kf_lw_i(w, 0));
        kir_stmt *pos = kir_if(k, cond);
        kir_append(k, loop, pos);
        loop = pos;
        kir_expr *i = p->stride[j] == 1 ? kir_var(k, tv) : kir_bin(k, KIR_DIV, kir_var(k, tv), kf_lw_i(w, p->stride[j]));
        c->ii_v[j] = kf_lw_local(w, loop, "ii", KIR_T_I64, i);
        cond = kir_bin(k, KIR_LT, kir_var(k, c->ii_v[j]), kf_lw_i(w, p->I[j]));
        if (p->stride[j] != 1)
            cond = kir_bin(k, KIR_AND, kir_bin(k, KIR_EQ, kir_bin(k, KIR_MOD, kir_var(k, tv), kf_lw_i(w, p->stride[j])),
                                                 kf_lw_i(w, 0)), cond);
    }
    kir_stmt *iff = kir_if(k, cond);
    kir_append(k, loop, iff);
    conv_taps(c, iff, j + 1);
}

/* One block of `width` outputs: row index var `row` over [N, Cout, outer spatial dims], block
 * start ow0 along the last dim. */
static void conv_block(conv_ctx *c, kir_stmt *parent, int row, kir_expr *ow0, int width) {
    kf_lw *w = c->w;
    kir_kernel *k = w->k;
    const conv_plan *p = c->p;
    int L = p->nsd - 1;
    int out = kf_lw_out(w, 0);
    kir_type t = kf_lw_type(w, out), acc_t = kf_lw_acc_type(t);
    int64_t rshape[KF_MAX_DIMS];
    rshape[0] = p->N;
    rshape[1] = p->Cout;
    for (int j = 0; j < L; j++) rshape[2 + j] = p->O[j];
    kir_expr *coords[KF_MAX_DIMS];
    kf_lw_unravel(w, kir_var(k, row), rshape, L + 2, coords);
    c->width = width;
    c->n_v = kf_lw_local(w, parent, "n", KIR_T_I64, coords[0]);
    c->oc_v = kf_lw_local(w, parent, "oc", KIR_T_I64, coords[1]);
    for (int j = 0; j < L; j++) c->os_v[j] = kf_lw_local(w, parent, "os", KIR_T_I64, coords[2 + j]);
    c->ow0_v = kf_lw_local(w, parent, "ow0", KIR_T_I64, ow0);
    int g_v = kf_lw_local(w, parent, "g", KIR_T_I64, kir_bin(k, KIR_DIV, kir_var(k, c->oc_v), kf_lw_i(w, p->cout_g)));
    for (int l = 0; l < width; l++)
        c->acc[l] = kf_lw_local(w, parent, "acc", acc_t, acc_t == KIR_T_F64 ? kir_flt(k, 0.0, KIR_T_F64) : kir_int(k, 0));
    int icv;
    kir_stmt *icl = kf_lw_loop(w, parent, "ic", p->cin_g, KIR_LOOP_SERIAL, &icv);
    c->c_v = kf_lw_local(w, icl, "c", KIR_T_I64,
                         kir_add(k, kir_mul(k, kir_var(k, g_v), kf_lw_i(w, p->cin_g)), kir_var(k, icv)));
    c->wc_v = p->transposed ? c->c_v : c->oc_v;
    conv_taps(c, icl, 0);
    int bias = -1;
    if (p->bias >= 0)
        bias = kf_lw_local(w, parent, "bias", acc_t, kf_lw_cvt(k, acc_t, kf_lw_load(w, p->bias, kir_var(k, c->oc_v))));
    for (int l = 0; l < width; l++) {
        kir_expr *y = kir_var(k, c->acc[l]);
        if (bias >= 0) y = kir_add(k, y, kir_var(k, bias));
        kir_expr *o = kir_add(k, kir_add(k, kir_mul(k, kir_var(k, row), kf_lw_i(w, p->O[L])), kir_var(k, c->ow0_v)),
                              kf_lw_i(w, l));
        kf_lw_put(w, parent, 0, o, kf_lw_cvt(k, t, y));
    }
}

static int build_conv(kf_lw *w, kf_err *err) {
    conv_plan p;
    int rc = conv_plan_make(w, &p, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    conv_ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.p = &p;
    int L = p.nsd - 1;
    int64_t rows = p.N * p.Cout;
    for (int j = 0; j < L; j++) rows *= p.O[j];
    int64_t width = p.O[L] < CONV_NB ? p.O[L] : CONV_NB;
    if (width < 1) return 0;
    int64_t full = p.O[L] / width, tail = p.O[L] % width;
    int ob;
    kir_stmt *loop = kf_lw_loop(w, NULL, "ob", rows * full, KIR_LOOP_PARALLEL, &ob);
    int row = kf_lw_local(w, loop, "row", KIR_T_I64, kir_bin(k, KIR_DIV, kir_var(k, ob), kf_lw_i(w, full)));
    kir_expr *ow0 = kir_mul(k, kir_bin(k, KIR_MOD, kir_var(k, ob), kf_lw_i(w, full)), kf_lw_i(w, width));
    conv_block(&c, loop, row, ow0, (int)width);
    if (tail > 0) {
        int r2;
        kir_stmt *l2 = kf_lw_loop(w, NULL, "row", rows, KIR_LOOP_PARALLEL, &r2);
        conv_block(&c, l2, r2, kf_lw_i(w, full * width), (int)tail);
    }
    return 0;
}

#define KERN(nm) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, build_conv, NULL}

const kf_lop kf_lops_conv[] = {
    KERN("convolution"), KERN("_convolution"), KERN("conv1d"), KERN("conv2d"), KERN("conv3d"),
    KERN("conv_transpose1d"), KERN("conv_transpose2d"), KERN("conv_transpose3d"),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
