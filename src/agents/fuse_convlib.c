/* fuse_convlib.c: convolutions through the target's library conv step (cuDNN on cuda): the
 * LIB implementation of CONV groups, offered only where the plan says the target has one
 * (kf_fplan.lib_conv). The conv step writes the anchor's result (forward or transposed,
 * any groups, stride, padding, dilation) into the group's output or a scratch buffer; the
 * group's elementwise epilogue (bias first, then whatever the group fused: activations,
 * scales, residual adds, ...) follows as one kernel over that buffer, the same kernel the
 * library gemm and im2col lowerings use. With no epilogue the step writes the output
 * directly and adds the bias itself. */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

int kf_fl_conv_lib_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    if (!plan->lib_conv) return 0;
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    kf_conv_attr a;
    if (!kf_fl_conv_attr(g, &g->nodes[an], &a)) return 0;
    /* cuDNN's legacy descriptors take int sizes */
    double xs = (double)a.N * (double)a.Cin, ys = (double)a.N * (double)a.Cout;
    for (int j = 0; j < a.nsd; j++) {
        xs *= (double)a.I[j];
        ys *= (double)a.O[j];
    }
    return xs < 2147483647.0 && ys < 2147483647.0;
}

int kf_fl_conv_lib(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    kf_conv_attr a;
    if (!kf_fl_conv_lib_ok(c->g, c->plan, gi) || !kf_fl_conv_attr(c->g, n, &a))
        return kf_lw_unsupported(err, n, "not a convolution the target's conv step can run");
    int xb = kf_fl_materialise(c, a.x, s, err);
    if (xb < 0) return xb;
    int wb = kf_fl_materialise(c, a.w, s, err);
    if (wb < 0) return wb;
    int yb = kf_fl_gemm_out(c, gi);
    if (yb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int out = n->outs[0];
    int direct = !kf_fl_has_epilogue(c, gi) && (!c->plan->stored[out] || kf_fl_value_pbuf(c, out) == yb);
    int bb = -1;
    kf_tdesc bd;
    memset(&bd, 0, sizeof bd);
    if (a.bias >= 0) kf_fl_chan_desc(&bd, c->g->values[a.bias].desc.dtype, a.Cout, a.nsd);
    int deferred = 0;
    if (direct && a.bias >= 0) { /* the readers of the result add the bias (no pass of its own) */
        deferred = kf_fl_defer_bias(c, out, a.bias, &bd, 1.0, err);
        if (deferred < 0) return deferred;
    }
    if (direct && a.bias >= 0 && !deferred) {
        bb = kf_fl_materialise(c, a.bias, s, err);
        if (bb < 0) return bb;
    }
    kf_step *st = kf_program_add_step(c->p, KF_STEP_CONV);
    if (!st) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add a step");
    kf_conv_step *cv = &st->conv;
    cv->x = xb;
    cv->w = wb;
    cv->y = yb;
    cv->bias = bb;
    cv->nsd = a.nsd;
    cv->transposed = a.transposed;
    cv->n = a.N;
    cv->c_in = a.Cin;
    cv->c_out = a.Cout;
    cv->groups = a.groups;
    for (int j = 0; j < a.nsd; j++) {
        cv->in[j] = a.I[j];
        cv->kernel[j] = a.Kd[j];
        cv->stride[j] = a.stride[j];
        cv->padding[j] = a.pad[j];
        cv->dilation[j] = a.dil[j];
        cv->output_padding[j] = a.transposed ? a.opad[j] : 0;
    }
    if (direct) return 0;
    return kf_fl_ew_loop(c, gi, yb, a.bias, a.bias >= 0 ? &bd : NULL, 1.0, s, err);
}
