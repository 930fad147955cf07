/* test_cuda_conv.c: conv steps. Everywhere: the reference convolution (kf_conv_reference,
 * what the cpu target runs) against hand-computed values, and its transposed form as the
 * adjoint of the forward one (<conv(x), y> = <x, conv_transpose(y)> with the same weight);
 * the cpu target running a conv step in its worker. With a GPU: the cuda target's conv
 * steps (cuDNN) in the harness's worker, 1-d, 2-d with stride / padding / dilation / groups /
 * bias / offsets, 3-d and transposed, against the reference within 1e-4, plus timing (the
 * plan replayed as a CUDA graph). GPU cases SKIP with the reason where no GPU or no cuDNN is
 * present. */
#include "kf_test.h"
#include "harness/kf_arena.h"
#include "harness/kf_worker.h"
#include "targets/kf_target.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char g_cache[64];
static int g_gpu;
static char g_no_gpu[1024];

/* deterministic data in [-2, 2) */
static void fill(float *x, int64_t n, unsigned seed) {
    unsigned s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xFFFF) / 16384.0f - 2.0f;
    }
}

static int64_t prod(const int64_t *v, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= v[i];
    return p;
}

static int64_t conv_out_numel(const kf_conv_step *c) {
    int64_t o = c->n * c->c_out;
    for (int j = 0; j < c->nsd; j++) o *= kf_conv_step_out(c, j);
    return o;
}

static int64_t conv_w_numel(const kf_conv_step *c) {
    return c->c_in * (c->c_out / c->groups) * prod(c->kernel, c->nsd);
}

static kf_conv_step conv_make(int nsd, int64_t n, int64_t cin, int64_t cout, int64_t groups, const int64_t *in,
                              const int64_t *k, const int64_t *s, const int64_t *p, const int64_t *d, int transposed,
                              const int64_t *op) {
    kf_conv_step c;
    memset(&c, 0, sizeof c);
    c.bias = -1;
    c.nsd = nsd, c.n = n, c.c_in = cin, c.c_out = cout, c.groups = groups, c.transposed = transposed;
    for (int j = 0; j < 3; j++) {
        c.in[j] = j < nsd ? in[j] : 1;
        c.kernel[j] = j < nsd ? k[j] : 1;
        c.stride[j] = j < nsd ? s[j] : 1;
        c.padding[j] = j < nsd ? p[j] : 0;
        c.dilation[j] = j < nsd ? d[j] : 1;
        c.output_padding[j] = j < nsd && op ? op[j] : 0;
    }
    return c;
}

/* A 1-d case by hand: x = [1 2 3 4], w = [1 -1] (pad 1, stride 2): y = [-1, 1, 4]; with
 * bias 0.5 added. */
static void test_reference_by_hand(void) {
    int64_t in[1] = {4}, k[1] = {2}, s[1] = {2}, p[1] = {1}, d[1] = {1};
    kf_conv_step c = conv_make(1, 1, 1, 1, 1, in, k, s, p, d, 0, NULL);
    KF_CHECK_EQ_INT(kf_conv_step_out(&c, 0), 3);
    float x[4] = {1, 2, 3, 4}, w[2] = {1, -1}, b[1] = {0.5f}, y[3] = {0};
    /* o=0: taps at -1 (pad), 0 -> -x0 = -1; o=1: x1 - x2 = -1; o=2: x3 - pad = 4 */
    kf_conv_reference(&c, x, w, NULL, y);
    KF_CHECK_NEAR(y[0], -1.0, 1e-6);
    KF_CHECK_NEAR(y[1], -1.0, 1e-6);
    KF_CHECK_NEAR(y[2], 4.0, 1e-6);
    kf_conv_reference(&c, x, w, b, y);
    KF_CHECK_NEAR(y[2], 4.5, 1e-6);
    /* transposed, stride 2, no padding: x = [1 2], w = [1 10 100] -> y[0..4] =
     * [1, 10, 100 + 2, 20, 200] */
    int64_t in2[1] = {2}, k2[1] = {3}, p2[1] = {0};
    kf_conv_step t = conv_make(1, 1, 1, 1, 1, in2, k2, s, p2, d, 1, NULL);
    KF_CHECK_EQ_INT(kf_conv_step_out(&t, 0), 5);
    float xt[2] = {1, 2}, wt[3] = {1, 10, 100}, yt[5] = {0};
    kf_conv_reference(&t, xt, wt, NULL, yt);
    const float want[5] = {1, 10, 102, 20, 200};
    for (int i = 0; i < 5; i++) KF_CHECK_NEAR(yt[i], want[i], 1e-6);
}

/* The transposed convolution is the adjoint of the forward one with the same weight (the
 * forward weight [c_out, c_in/g, k] read as the transposed one's [c_in', c_out'/g, k] with
 * c_in' = c_out, c_out' = c_in): <conv(x), y> = <x, convT(y)>. */
static void test_reference_adjoint(void) {
    int64_t in[2] = {9, 8}, k[2] = {3, 2}, s[2] = {2, 1}, p[2] = {1, 1}, d[2] = {1, 2};
    kf_conv_step f = conv_make(2, 2, 4, 6, 2, in, k, s, p, d, 0, NULL);
    int64_t out[2] = {kf_conv_step_out(&f, 0), kf_conv_step_out(&f, 1)};
    /* the transposed conv from f's output shape back to f's input shape */
    int64_t op[2] = {(in[0] + 2 * p[0] - d[0] * (k[0] - 1) - 1) % s[0], (in[1] + 2 * p[1] - d[1] * (k[1] - 1) - 1) % s[1]};
    kf_conv_step t = conv_make(2, 2, 6, 4, 2, out, k, s, p, d, 1, op);
    KF_CHECK_EQ_INT(kf_conv_step_out(&t, 0), in[0]);
    KF_CHECK_EQ_INT(kf_conv_step_out(&t, 1), in[1]);
    int64_t nx = 2 * 4 * in[0] * in[1], ny = conv_out_numel(&f), nw = conv_w_numel(&f);
    KF_CHECK_EQ_INT(nw, conv_w_numel(&t));
    float *x = malloc(sizeof *x * (size_t)nx), *y = malloc(sizeof *y * (size_t)ny), *w = malloc(sizeof *w * (size_t)nw);
    float *fx = malloc(sizeof *fx * (size_t)ny), *ty = malloc(sizeof *ty * (size_t)nx);
    fill(x, nx, 1), fill(y, ny, 2), fill(w, nw, 3);
    kf_conv_reference(&f, x, w, NULL, fx);
    kf_conv_reference(&t, y, w, NULL, ty);
    double a = 0, b = 0;
    for (int64_t i = 0; i < ny; i++) a += (double)fx[i] * y[i];
    for (int64_t i = 0; i < nx; i++) b += (double)x[i] * ty[i];
    KF_CHECK_MSG(fabs(a - b) <= 1e-4 * (1 + fabs(a)), "<conv(x), y> = %.9g but <x, convT(y)> = %.9g", a, b);
    free(x), free(y), free(w), free(fx), free(ty);
}

/* ---- one conv step as a program, run in the harness's worker ---- */

typedef struct cprog {
    kf_program p;
    kf_pbuf bufs[4];
    kf_step step;
    float *ref;        /* expected y */
    int64_t nx, nw, ny;
} cprog;

static void cp_buf(cprog *t, const char *name, kf_buf_role role, int64_t numel) {
    kf_pbuf *b = &t->bufs[t->p.n_bufs++];
    b->name = (char *)name;
    b->role = role;
    b->index = role == KF_BUF_INPUT || role == KF_BUF_OUTPUT ? 0 : -1;
    b->param = role == KF_BUF_PARAM ? (char *)(t->p.n_bufs == 2 ? "p0" : "p1") : NULL;
    b->desc.dtype = KF_F32;
    b->desc.ndim = 1;
    b->desc.shape[0] = numel;
    kf_tdesc_set_contiguous(&b->desc);
    b->nbytes = (size_t)numel * 4;
}

/* x (input), w (param), [bias (param)], y (output); x and y with x_off / y_off elements in
 * front, so offsets are exercised. */
static void cp_init(cprog *t, const char *target, const kf_conv_step *c, int bias, int64_t x_off, int64_t y_off) {
    memset(t, 0, sizeof *t);
    t->p.target = (char *)target;
    t->p.agent = (char *)"test";
    t->p.bufs = t->bufs;
    t->p.steps = &t->step;
    t->p.n_steps = 1;
    t->nx = c->n * c->c_in * prod(c->in, c->nsd);
    t->nw = conv_w_numel(c);
    t->ny = conv_out_numel(c);
    cp_buf(t, "x", KF_BUF_INPUT, x_off + t->nx);
    cp_buf(t, "w", KF_BUF_PARAM, t->nw);
    if (bias) cp_buf(t, "b", KF_BUF_PARAM, c->c_out);
    cp_buf(t, "y", KF_BUF_OUTPUT, y_off + t->ny);
    t->step.kind = KF_STEP_CONV;
    t->step.conv = *c;
    t->step.conv.x = 0, t->step.conv.w = 1, t->step.conv.bias = bias ? 2 : -1, t->step.conv.y = bias ? 3 : 2;
    t->step.conv.x_offset = x_off, t->step.conv.y_offset = y_off;
}

static void cp_fill(kf_arena *a, void *u) {
    cprog *t = u;
    const kf_conv_step *c = &t->step.conv;
    float *x = (float *)a->slots[c->x].data, *w = (float *)a->slots[c->w].data;
    fill(x, (int64_t)(a->slots[c->x].nbytes / 4), 21);
    fill(w, t->nw, 22);
    float *b = c->bias >= 0 ? (float *)a->slots[c->bias].data : NULL;
    if (b) fill(b, c->c_out, 23);
    /* the reference loop is slow: big timing-only cases skip it */
    double work = (double)t->ny * (double)(c->c_in / c->groups) * (double)prod(c->kernel, c->nsd);
    t->ref = work < 2e9 ? malloc(sizeof *t->ref * (size_t)t->ny) : NULL;
    if (t->ref) kf_conv_reference(c, x + c->x_offset, w, b, t->ref);
}

/* Runs the program on target T; checks y against the reference (and that the elements in
 * front of y's offset keep the poison), then, when timed, times it. */
static void cp_check(const kf_target_ops *T, cprog *t, int timed) {
    kf_err err = {0};
    KF_CHECK_MSG(kf_program_validate(&t->p, NULL, &err) == 0, "%s", err.msg);
    kf_build_opts o = {0};
    o.cache_dir = g_cache;
    o.threads = 1;
    o.timeout_s = 120;
    kf_build b = {0};
    kf_arena arena;
    kf_worker w;
    kf_outcome oc;
    memset(&oc, 0, sizeof oc);
    int rc = T->build(&t->p, &o, &b, &err);
    KF_CHECK_MSG(rc == 0, "build: %s", err.msg);
    if (rc) return;
    rc = kf_arena_create(&arena, &t->p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) {
        kf_build_free(&b);
        return;
    }
    int yb = t->step.conv.y;
    memset(arena.slots[yb].data, KF_POISON_BYTE, arena.slots[yb].nbytes);
    cp_fill(&arena, t);
    kf_worker_limits lim = {120, 4LL << 30, 1 << 20, 1};
    rc = kf_worker_start(&w, T, &t->p, &b, &o, &arena, &lim, &oc, &err);
    KF_CHECK_MSG(rc == 0 && oc.status == KF_ST_VERIFIED, "start: %s %s", err.msg, oc.message ? oc.message : "");
    if (rc == 0 && oc.status == KF_ST_VERIFIED) {
        rc = kf_worker_run(&w, &oc, &err);
        KF_CHECK_MSG(rc == 0 && oc.status == KF_ST_VERIFIED, "run: %s %s", err.msg, oc.message ? oc.message : "");
        if (rc == 0 && oc.status == KF_ST_VERIFIED && !t->ref) fprintf(stderr, "    (too big for the reference: timing only)\n");
        if (rc == 0 && oc.status == KF_ST_VERIFIED) {
            const float *y = (const float *)arena.slots[yb].data;
            int64_t off = t->step.conv.y_offset, bad = 0;
            double worst = 0;
            for (int64_t i = 0; t->ref && i < t->ny; i++) {
                double r = t->ref[i], e = fabs((double)y[off + i] - r);
                if (!(e <= 1e-4 + 1e-4 * fabs(r))) {
                    if (bad < 3) fprintf(stderr, "  y[%lld] = %.9g, reference %.9g\n", (long long)i, (double)y[off + i], r);
                    bad++;
                }
                if (e > worst) worst = e;
            }
            for (int64_t i = 0; i < off; i++) bad += !isnan(y[i]); /* untouched before the offset */
            KF_CHECK_EQ_INT(bad, 0);
            if (t->ref)
                fprintf(stderr, "    %s: %lld outputs within 1e-4 (largest difference %.3g)\n", T->name,
                        (long long)t->ny, worst);
            int what = 0;
            KF_CHECK_MSG(kf_arena_check(&arena, &what, &err) == 0, "%s", err.msg);
            if (timed) {
                double ms[10];
                rc = kf_worker_time(&w, 10, ms, &oc, &err);
                KF_CHECK_MSG(rc == 0 && oc.status == KF_ST_VERIFIED, "time: %s", err.msg);
                if (rc == 0) {
                    double best = ms[0];
                    for (int i = 1; i < 10; i++) best = ms[i] < best ? ms[i] : best;
                    KF_CHECK(best > 0);
                    fprintf(stderr, "    timed: best of 10 %.4f ms\n", best);
                }
            }
        }
        kf_worker_stop(&w);
    }
    kf_outcome_clear(&oc);
    kf_arena_destroy(&arena);
    kf_build_free(&b);
    free(t->ref);
    t->ref = NULL;
}

/* The cpu target runs conv steps with the reference loop. */
static void test_cpu_conv_step(void) {
    int64_t in[2] = {7, 6}, k[2] = {3, 3}, s[2] = {2, 1}, p[2] = {1, 0}, d[2] = {1, 1};
    kf_conv_step c = conv_make(2, 2, 4, 6, 2, in, k, s, p, d, 0, NULL);
    cprog t;
    cp_init(&t, "cpu", &c, 1, 5, 3);
    cp_check(kf_target_cpu(), &t, 0);
}

#define NEED_GPU() do { if (!g_gpu) KF_SKIP("%s", g_no_gpu); } while (0)

static void test_gpu_conv2d(void) {
    NEED_GPU();
    /* stride 2 x 1, padding 1 x 2, dilation 1 x 2, 2 groups, bias, offsets */
    int64_t in[2] = {11, 9}, k[2] = {3, 3}, s[2] = {2, 1}, p[2] = {1, 2}, d[2] = {1, 2};
    kf_conv_step c = conv_make(2, 2, 4, 6, 2, in, k, s, p, d, 0, NULL);
    cprog t;
    cp_init(&t, "cuda", &c, 1, 7, 5);
    cp_check(kf_target_cuda(), &t, 1);
    /* a bigger one, no bias, as a ResNet layer: 8 x 64 x 28 x 28, 3x3, 64 -> 64 */
    int64_t in2[2] = {28, 28}, k2[2] = {3, 3}, s2[2] = {1, 1}, p2[2] = {1, 1}, d2[2] = {1, 1};
    c = conv_make(2, 8, 64, 64, 1, in2, k2, s2, p2, d2, 0, NULL);
    cp_init(&t, "cuda", &c, 0, 0, 0);
    cp_check(kf_target_cuda(), &t, 1);
}

static void test_gpu_conv1d_3d(void) {
    NEED_GPU();
    int64_t in[1] = {40}, k[1] = {5}, s[1] = {1}, p[1] = {2}, d[1] = {1};
    kf_conv_step c = conv_make(1, 3, 5, 7, 1, in, k, s, p, d, 0, NULL);
    cprog t;
    cp_init(&t, "cuda", &c, 1, 0, 0);
    cp_check(kf_target_cuda(), &t, 0);
    int64_t in3[3] = {6, 7, 8}, k3[3] = {3, 3, 3}, s3[3] = {1, 2, 1}, p3[3] = {1, 1, 0}, d3[3] = {1, 1, 1};
    c = conv_make(3, 2, 3, 4, 1, in3, k3, s3, p3, d3, 0, NULL);
    cp_init(&t, "cuda", &c, 0, 3, 0);
    cp_check(kf_target_cuda(), &t, 0);
}

static void test_gpu_conv_transposed(void) {
    NEED_GPU();
    /* 2-d: stride 2, padding 1, output_padding 1, 2 groups, bias */
    int64_t in[2] = {5, 6}, k[2] = {3, 3}, s[2] = {2, 2}, p[2] = {1, 1}, d[2] = {1, 1}, op[2] = {1, 1};
    kf_conv_step c = conv_make(2, 2, 6, 4, 2, in, k, s, p, d, 1, op);
    cprog t;
    cp_init(&t, "cuda", &c, 1, 0, 2);
    cp_check(kf_target_cuda(), &t, 1);
    /* 3-d, stride 2, no padding */
    int64_t in3[3] = {3, 4, 5}, k3[3] = {3, 3, 3}, s3[3] = {2, 2, 2}, p3[3] = {0, 0, 0}, d3[3] = {1, 1, 1};
    c = conv_make(3, 2, 4, 3, 1, in3, k3, s3, p3, d3, 1, NULL);
    cp_init(&t, "cuda", &c, 0, 0, 0);
    cp_check(kf_target_cuda(), &t, 0);
}

/* The convolutions of problems_gpu (level1 conv2d, the ResNet basic block's three), timed
 * as single conv steps: the conv step's own time. Only with KF_TEST_CONV_TIMING set (a
 * GPU benchmark, not a check). */
static void test_gpu_conv_timing(void) {
    NEED_GPU();
    if (!getenv("KF_TEST_CONV_TIMING")) KF_SKIP("set KF_TEST_CONV_TIMING=1 to time the benchmark's convolutions");
    static const struct { const char *name; int64_t n, cin, cout, hw, k, s, p, bias; } shapes[] = {
        {"level1 conv2d 16x64x128x128 3x3 +bias", 16, 64, 64, 128, 3, 1, 1, 1},
        {"resnet conv1 16x64x112x112 3x3 s2 -> 128", 16, 64, 128, 112, 3, 2, 1, 0},
        {"resnet conv2 16x128x56x56 3x3", 16, 128, 128, 56, 3, 1, 1, 0},
        {"resnet shortcut 16x64x112x112 1x1 s2 -> 128", 16, 64, 128, 112, 1, 2, 0, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        fprintf(stderr, "    %s\n", shapes[i].name);
        int64_t in[2] = {shapes[i].hw, shapes[i].hw}, k[2] = {shapes[i].k, shapes[i].k}, s[2] = {shapes[i].s, shapes[i].s};
        int64_t p[2] = {shapes[i].p, shapes[i].p}, d[2] = {1, 1};
        kf_conv_step c = conv_make(2, shapes[i].n, shapes[i].cin, shapes[i].cout, 1, in, k, s, p, d, 0, NULL);
        cprog t;
        cp_init(&t, "cuda", &c, (int)shapes[i].bias, 0, 0);
        cp_check(kf_target_cuda(), &t, 1);
    }
}

int main(void) {
    snprintf(g_cache, sizeof g_cache, "/tmp/kf_test_cuda_conv_%ld", (long)getpid());
    kf_err err = {0};
    g_gpu = kf_target_cuda()->available(&err) == 0;
    if (!g_gpu) snprintf(g_no_gpu, sizeof g_no_gpu, "no GPU here: %.900s", err.msg);
    kf_err_clear(&err);
    if (g_gpu && !kf_cuda_cudnn_available(&err)) {
        g_gpu = 0;
        snprintf(g_no_gpu, sizeof g_no_gpu, "no cuDNN here: %.900s", err.msg);
    }
    KF_RUN(test_reference_by_hand);
    KF_RUN(test_reference_adjoint);
    KF_RUN(test_cpu_conv_step);
    KF_RUN(test_gpu_conv2d);
    KF_RUN(test_gpu_conv1d_3d);
    KF_RUN(test_gpu_conv_transposed);
    KF_RUN(test_gpu_conv_timing);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_cache);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_cache);
    return kf_test_report();
}
