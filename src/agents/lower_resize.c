/* lower_resize.c: resampling of the last 1 to 3 dims: upsample_nearest{1,2,3}d (torch's
 * "nearest": source = min(floor(dst * scale), in - 1) in float) and upsample_bilinear2d /
 * upsample_linear1d / upsample_trilinear3d (align_corners or half-pixel sources clamped at 0),
 * computed in float like torch's CPU kernels. One kernel, parallel over output elements. */
#include <string.h>
#include "agents/lower.h"

typedef struct rs_plan {
    int x, nsd;
    int64_t I[3], O[3];
    double scale[3];      /* source step per output step */
    int align;
} rs_plan;

static int rs_plan_make(kf_lw *w, rs_plan *p, kf_err *err) {
    memset(p, 0, sizeof *p);
    const char *d = strpbrk(w->op, "123");
    p->nsd = d ? *d - '0' : 0;
    p->x = kf_lw_arg_tensor(w->n, "input", 0);
    if (p->x < 0) p->x = kf_lw_arg_tensor(w->n, "self", 0);
    if (p->x < 0 || p->nsd < 1) return kf_lw_unsupported(err, w->n, "no input or dims");
    const kf_tdesc *xd = kf_lw_desc(w, p->x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    if (xd->ndim < p->nsd + 2 || od->ndim != xd->ndim) return kf_lw_unsupported(err, w->n, "input rank");
    p->align = (int)kf_lw_arg_int(w->n, "align_corners", -1, 0);
    double sf[3] = {0, 0, 0};
    /* scale factors: a list (".vec") or scales_d / scales_h / scales_w */
    const kf_arg *a = kf_lw_arg(w->n, "scale_factors", -1);
    if (a && a->kind == KF_ARG_LIST) {
        for (int j = 0; j < p->nsd && j < a->n_items; j++)
            sf[j] = a->items[j].kind == KF_ARG_FLOAT ? a->items[j].f : (double)a->items[j].i;
    } else {
        static const char *const names3[] = {"scales_d", "scales_h", "scales_w"};
        static const char *const names1[] = {"scales"};
        for (int j = 0; j < p->nsd; j++) {
            const char *nm = p->nsd == 1 ? names1[0] : names3[3 - p->nsd + j];
            sf[j] = kf_lw_arg_num(w->n, nm, -1, 0.0);
        }
    }
    for (int j = 0; j < p->nsd; j++) {
        p->I[j] = xd->shape[xd->ndim - p->nsd + j];
        p->O[j] = od->shape[od->ndim - p->nsd + j];
        if (p->align) p->scale[j] = p->O[j] > 1 ? (double)(p->I[j] - 1) / (double)(p->O[j] - 1) : 0.0;
        else p->scale[j] = sf[j] > 0 ? 1.0 / sf[j] : (double)p->I[j] / (double)p->O[j];
    }
    return 0;
}

static int build_nearest(kf_lw *w, kf_err *err) {
    rs_plan p;
    int rc = rs_plan_make(w, &p, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    const kf_tdesc *xd = kf_lw_desc(w, p.x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int o;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kf_lw_unravel(w, kir_var(k, o), od->shape, od->ndim, c);
    for (int j = 0; j < p.nsd; j++) {
        int d = od->ndim - p.nsd + j;
        if (p.I[j] == p.O[j]) continue;
        kir_expr *src = kir_cast(k, KIR_T_I64, kir_un(k, KIR_FLOOR,
                        kir_mul(k, kir_cast(k, KIR_T_F32, kf_lw_dup(w, c[d])), kir_flt(k, p.scale[j], KIR_T_F32))));
        c[d] = kir_bin(k, KIR_MIN, src, kf_lw_i(w, p.I[j] - 1));
    }
    int64_t s[KF_MAX_DIMS];
    kf_lw_strides(xd->shape, xd->ndim, s);
    kf_lw_put(w, loop, 0, kir_var(k, o), kf_lw_load(w, p.x, kf_lw_dot(w, c, s, xd->ndim, 0)));
    return 0;
}

static int build_linear(kf_lw *w, kf_err *err) {
    rs_plan p;
    int rc = rs_plan_make(w, &p, err);
    if (rc) return rc;
    if (!kf_lw_out_live(w, 0)) return 0;
    kir_kernel *k = w->k;
    const kf_tdesc *xd = kf_lw_desc(w, p.x), *od = kf_lw_desc(w, kf_lw_out(w, 0));
    int o;
    kir_expr *c[KF_MAX_DIMS];
    kir_stmt *loop = kf_lw_loop(w, NULL, "o", kf_tdesc_numel(od), KIR_LOOP_PARALLEL, &o);
    kf_lw_unravel(w, kir_var(k, o), od->shape, od->ndim, c);
    int i0[3], i1[3], l1[3];
    for (int j = 0; j < p.nsd; j++) {
        int d = od->ndim - p.nsd + j;
        kir_expr *dst = kir_cast(k, KIR_T_F32, kf_lw_dup(w, c[d]));
        kir_expr *src;
        if (p.align) {
            src = kir_mul(k, dst, kir_flt(k, p.scale[j], KIR_T_F32));
        } else {
            src = kir_bin(k, KIR_SUB, kir_mul(k, kir_add(k, dst, kir_flt(k, 0.5, KIR_T_F32)), kir_flt(k, p.scale[j], KIR_T_F32)),
                          kir_flt(k, 0.5, KIR_T_F32));
            src = kir_bin(k, KIR_MAX, src, kir_flt(k, 0.0, KIR_T_F32));
        }
        int sv = kf_lw_local(w, loop, "src", KIR_T_F32, src);
        i0[j] = kf_lw_local(w, loop, "i0", KIR_T_I64, kir_cast(k, KIR_T_I64, kir_var(k, sv)));
        i1[j] = kf_lw_local(w, loop, "i1", KIR_T_I64,
                            kir_add(k, kir_var(k, i0[j]), kir_select(k, kir_bin(k, KIR_LT, kir_var(k, i0[j]), kf_lw_i(w, p.I[j] - 1)),
                                                                  kf_lw_i(w, 1), kf_lw_i(w, 0))));
        l1[j] = kf_lw_local(w, loop, "l1", KIR_T_F32,
                            kir_bin(k, KIR_SUB, kir_var(k, sv), kir_cast(k, KIR_T_F32, kir_var(k, i0[j]))));
    }
    int64_t s[KF_MAX_DIMS];
    kf_lw_strides(xd->shape, xd->ndim, s);
    kir_expr *acc = NULL;
    for (int corner = 0; corner < (1 << p.nsd); corner++) {
        kir_expr *ic[KF_MAX_DIMS], *wgt = NULL;
        for (int d = 0; d < od->ndim - p.nsd; d++) ic[d] = c[d];
        for (int j = 0; j < p.nsd; j++) {
            int hi = corner >> (p.nsd - 1 - j) & 1;
            ic[od->ndim - p.nsd + j] = kir_var(k, hi ? i1[j] : i0[j]);
            kir_expr *f = hi ? kir_var(k, l1[j]) : kir_bin(k, KIR_SUB, kir_flt(k, 1.0, KIR_T_F32), kir_var(k, l1[j]));
            wgt = wgt ? kir_mul(k, wgt, f) : f;
        }
        kir_expr *v = kir_mul(k, wgt, kf_lw_cvt(k, KIR_T_F32, kf_lw_load(w, p.x, kf_lw_dot(w, ic, s, xd->ndim, 0))));
        acc = acc ? kir_add(k, acc, v) : v;
    }
    kf_lw_put(w, loop, 0, kir_var(k, o), acc);
    return 0;
}

#define KERN(nm, b) {nm, KF_LOP_KERNEL, NULL, {NULL}, 0, 0, b, NULL}

const kf_lop kf_lops_resize[] = {
    KERN("upsample_nearest1d", build_nearest), KERN("upsample_nearest2d", build_nearest),
    KERN("upsample_nearest3d", build_nearest), KERN("upsample_linear1d", build_linear),
    KERN("upsample_bilinear2d", build_linear), KERN("upsample_trilinear3d", build_linear),
    {NULL, 0, NULL, {NULL}, 0, 0, NULL, NULL}
};
