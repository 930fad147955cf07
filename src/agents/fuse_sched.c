/* fuse_sched.c: per-group schedules: the defaults, the automatic first choice (library gemm
 * for matrix products the gemm step can run, the library conv step for convolutions where
 * the target has one (cuda), else the direct kernels for convolutions, pooling,
 * softmax and reductions where they apply, gemm + col2im for transposed convolutions, serial
 * loops for tiny groups) and which implementations a group admits. */
#include "agents/fuse.h"

void kf_gsched_default(kf_gsched *s) {
    s->impl = KF_IMPL_AUTO;
    s->parallel = 1;
    s->vec = 2;
    s->chunk = 0;
    s->tile = 0;
    s->unroll = 0;
    s->block = 0;
    s->gpu = 0;
}

int kf_fuse_impl_ok(const kf_graph *g, const kf_fplan *plan, int gi, kf_impl impl) {
    if (gi < 0 || gi >= plan->n_groups) return 0;
    int a = plan->groups[gi].anchor;
    switch (impl) {
    case KF_IMPL_AUTO:
    case KF_IMPL_KIR:
        return 1;
    case KF_IMPL_LIB:
        return a >= 0 && (kf_fl_gemm_ok(g, plan, gi) || kf_fl_conv_lib_ok(g, plan, gi));
    case KF_IMPL_IM2COL:
        return a >= 0 && (kf_fl_conv_ok(g, plan, gi) || kf_fl_convt_ok(g, plan, gi));
    case KF_IMPL_TILED:
        return a >= 0 && (kf_fl_convtile_ok(g, plan, gi) || kf_fl_gemmrow_ok(g, plan, gi));
    case KF_IMPL_DIRECT:
        return a >= 0 && (kf_fl_direct_ok(g, plan, gi) || kf_fl_reduce_ok(g, plan, gi) || kf_fl_softmax_ok(g, plan, gi) ||
                          kf_fl_pool_ok(g, plan, gi) || kf_fl_bnorm_ok(g, plan, gi));
    default:
        return 0;
    }
}

void kf_gsched_auto(const kf_graph *g, const kf_fplan *plan, int gi, kf_gsched *s) {
    kf_gsched_default(s);
    const kf_fgroup *gr = &plan->groups[gi];
    s->impl = KF_IMPL_KIR;
    if (gr->anchor >= 0) {
        kf_fnode_kind k = plan->kind[gr->anchor];
        if (k == KF_FN_GEMM && kf_fuse_impl_ok(g, plan, gi, KF_IMPL_LIB)) s->impl = KF_IMPL_LIB;
        if ((k == KF_FN_CONV || k == KF_FN_OP) && kf_fuse_impl_ok(g, plan, gi, KF_IMPL_DIRECT)) s->impl = KF_IMPL_DIRECT;
        /* transposed convolutions: gemm + col2im (the direct kernel does not take them) */
        if (k == KF_FN_CONV && kf_fl_convt_ok(g, plan, gi)) s->impl = KF_IMPL_IM2COL;
        /* where the target has a library convolution (cuDNN), it comes first */
        if (k == KF_FN_CONV && kf_fl_conv_lib_ok(g, plan, gi)) s->impl = KF_IMPL_LIB;
    }
    /* threads cost a few microseconds to wake: not worth it below ~32k simple operations */
    if (gr->flops + gr->bytes / 4.0 < 32768.0) s->parallel = 0;
}
