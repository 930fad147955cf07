/* cpu_conv.c: the cpu target's conv step, a plain reference loop nest (double accumulators,
 * one output element at a time): correct for every shape the step allows, forward and
 * transposed, but not fast. The search agent never emits conv steps for the cpu (it lowers
 * convolutions to generated kernels there); hand-written plans and tests may use them. */
#include "targets/kf_target.h"

#include <stdint.h>

/* Spatial dims padded to 3 (leading dims of size 1), so one loop nest serves 1-d to 3-d. */
typedef struct kf_cv3 { int64_t in[3], out[3], k[3], s[3], p[3], d[3]; } kf_cv3;

static void kf_cv3_make(const kf_conv_step *c, kf_cv3 *v) {
    int lead = 3 - c->nsd;
    for (int j = 0; j < 3; j++) {
        int q = j - lead;
        v->in[j] = q < 0 ? 1 : c->in[q];
        v->out[j] = q < 0 ? 1 : kf_conv_step_out(c, q);
        v->k[j] = q < 0 ? 1 : c->kernel[q];
        v->s[j] = q < 0 ? 1 : c->stride[q];
        v->p[j] = q < 0 ? 0 : c->padding[q];
        v->d[j] = q < 0 ? 1 : c->dilation[q];
    }
}

/* Input position along dim j that tap t reaches from output o, or -1 when none. */
static int64_t kf_cv_src(const kf_cv3 *v, int j, int transposed, int64_t o, int64_t t) {
    if (!transposed) {
        int64_t i = o * v->s[j] - v->p[j] + t * v->d[j];
        return i >= 0 && i < v->in[j] ? i : -1;
    }
    int64_t num = o + v->p[j] - t * v->d[j]; /* = i * stride */
    if (num < 0 || num % v->s[j]) return -1;
    int64_t i = num / v->s[j];
    return i < v->in[j] ? i : -1;
}

void kf_conv_reference(const kf_conv_step *c, const float *x, const float *w, const float *bias, float *y) {
    kf_cv3 v;
    kf_cv3_make(c, &v);
    int64_t cin_g = c->c_in / c->groups, cout_g = c->c_out / c->groups;
    int64_t isp = v.in[0] * v.in[1] * v.in[2], osp = v.out[0] * v.out[1] * v.out[2], taps = v.k[0] * v.k[1] * v.k[2];
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t co = 0; co < c->c_out; co++) {
            int64_t g = co / cout_g, col = co % cout_g;
            for (int64_t o0 = 0; o0 < v.out[0]; o0++)
                for (int64_t o1 = 0; o1 < v.out[1]; o1++)
                    for (int64_t o2 = 0; o2 < v.out[2]; o2++) {
                        double acc = bias ? (double)bias[co] : 0.0;
                        for (int64_t cl = 0; cl < cin_g; cl++) {
                            int64_t ci = g * cin_g + cl;
                            const float *xp = x + (n * c->c_in + ci) * isp;
                            /* forward: w[co][cl][taps]; transposed: w[ci][col][taps] */
                            const float *wp = c->transposed ? w + (ci * cout_g + col) * taps : w + (co * cin_g + cl) * taps;
                            for (int64_t t0 = 0; t0 < v.k[0]; t0++) {
                                int64_t i0 = kf_cv_src(&v, 0, c->transposed, o0, t0);
                                if (i0 < 0) continue;
                                for (int64_t t1 = 0; t1 < v.k[1]; t1++) {
                                    int64_t i1 = kf_cv_src(&v, 1, c->transposed, o1, t1);
                                    if (i1 < 0) continue;
                                    for (int64_t t2 = 0; t2 < v.k[2]; t2++) {
                                        int64_t i2 = kf_cv_src(&v, 2, c->transposed, o2, t2);
                                        if (i2 < 0) continue;
                                        acc += (double)xp[(i0 * v.in[1] + i1) * v.in[2] + i2] *
                                               (double)wp[(t0 * v.k[1] + t1) * v.k[2] + t2];
                                    }
                                }
                            }
                        }
                        y[(n * c->c_out + co) * osp + (o0 * v.out[1] + o1) * v.out[2] + o2] = (float)acc;
                    }
        }
}
