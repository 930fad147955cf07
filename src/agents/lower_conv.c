/* lower_conv.c: convolutions (aten.convolution, _convolution, conv1d/2d/3d and
 * conv_transpose1d/2d/3d) with 1 to 3 spatial dims, stride, padding, dilation, groups,
 * transposed with output_padding, bias or none. One kernel: parallel over output elements,
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

typedef struct conv_ctx {
    kf_lw *w;
    const conv_plan *p;
    int acc, n_v, oc_v, c_v, wc_v;        /* vars: accumulator, batch, out channel, in channel, weight row */
    int os_v[3];                          /* output spatial coords */
    int kk_v[3], ii_v[3];                 /* kernel taps and input coords */
} conv_ctx;

/* Loops over the kernel window from spatial dim j inward; the innermost body accumulates. */
static void conv_taps(conv_ctx *c, kir_stmt *parent, int j) {
    kf_lw *w = c->w;
    kir_kernel *k = w->k;
    const conv_plan *p = c->p;
    if (j == p->nsd) {
        kir_expr *xc[KF_MAX_DIMS], *wc[KF_MAX_DIMS];
        xc[0] = kir_var(k, c->n_v);
        xc[1] = kir_var(k, c->c_v);
        wc[0] = kir_var(k, c->wc_v);
        wc[1] = p->transposed
            ? kir_bin(k, KIR_MOD, kir_var(k, c->oc_v), kf_lw_i(w, p->cout_g))
            : kir_bin(k, KIR_MOD, kir_var(k, c->c_v), kf_lw_i(w, p->cin_g));
        for (int d = 0; d < p->nsd; d++) {
            xc[2 + d] = kir_var(k, c->ii_v[d]);
            wc[2 + d] = kir_var(k, c->kk_v[d]);
        }
        kir_type acc_t = k->vars[c->acc].type;
        kir_expr *xv = kf_lw_cvt(k, acc_t, kf_lw_load(w, p->x, kf_lw_dot(w, xc, p->xstr, p->nsd + 2, 0)));
        kir_expr *wv = kf_lw_cvt(k, acc_t, kf_lw_load(w, p->wt, kf_lw_dot(w, wc, p->wstr, p->nsd + 2, 0)));
        kir_append(k, parent, kir_assign(k, c->acc, kir_add(k, kir_var(k, c->acc), kir_mul(k, xv, wv))));
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

static int build_conv(kf_lw *w, kf_err *err) {
    conv_plan p;
    int rc = conv_plan_make(w, &p, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    int out = kf_lw_out(w, 0);
    const kf_tdesc *od = kf_lw_desc(w, out);
    kir_type t = kf_lw_type(w, out), acc_t = kf_lw_acc_type(t);
    conv_ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.p = &p;
    int o;
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kir_expr *coords[KF_MAX_DIMS];
    kf_lw_unravel(w, kir_var(k, o), od->shape, od->ndim, coords);
    c.n_v = kf_lw_local(w, loop, "n", KIR_T_I64, coords[0]);
    c.oc_v = kf_lw_local(w, loop, "oc", KIR_T_I64, coords[1]);
    for (int j = 0; j < p.nsd; j++) c.os_v[j] = kf_lw_local(w, loop, "os", KIR_T_I64, coords[2 + j]);
    kir_expr *g = kir_bin(k, KIR_DIV, kir_var(k, c.oc_v), kf_lw_i(w, p.cout_g));
    int g_v = kf_lw_local(w, loop, "g", KIR_T_I64, g);
    c.acc = kf_lw_local(w, loop, "acc", acc_t, acc_t == KIR_T_F64 ? kir_flt(k, 0.0, KIR_T_F64) : kir_int(k, 0));
    int icv;
    kir_stmt *icl = kf_lw_loop(w, loop, "ic", p.cin_g, KIR_LOOP_SERIAL, &icv);
    c.c_v = kf_lw_local(w, icl, "c", KIR_T_I64,
                        kir_add(k, kir_mul(k, kir_var(k, g_v), kf_lw_i(w, p.cin_g)), kir_var(k, icv)));
    c.wc_v = p.transposed ? c.c_v : c.oc_v;
    conv_taps(&c, icl, 0);
    kir_expr *y = kir_var(k, c.acc);
    if (p.bias >= 0) y = kir_add(k, y, kf_lw_cvt(k, acc_t, kf_lw_load(w, p.bias, kir_var(k, c.oc_v))));
    kf_lw_put(w, loop, 0, kir_var(k, o), kf_lw_cvt(k, t, y));
    return 0;
}

#define KERN(nm) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, build_conv, NULL}

const kf_lop kf_lops_conv[] = {
    KERN("convolution"), KERN("_convolution"), KERN("conv1d"), KERN("conv2d"), KERN("conv3d"),
    KERN("conv_transpose1d"), KERN("conv_transpose2d"), KERN("conv_transpose3d"),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
