/* fuse_run.h: what the fusion tests share (test_fuse.c, test_fuse_convlib.c): running a
 * program on the cpu target with inputs and params drawn from a seed (so two programs for one
 * graph see the same values), comparing a fused program's outputs with the naive lowering's,
 * and counting a program's steps. Static functions, included once per test program; the
 * including test sets cache_dir (a private compile cache) before running anything. */
#ifndef KF_TEST_FUSE_RUN_H
#define KF_TEST_FUSE_RUN_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agents/lower.h"
#include "targets/kf_target.h"

static char cache_dir[256];


static void fill_random(unsigned char *data, const kf_pbuf *b, unsigned *seed) {
    int64_t n = kf_tdesc_numel(&b->desc);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        double u = (double)((*seed >> 8) & 0xFFFF) / 65536.0;
        if (b->desc.dtype == KF_F32) ((float *)data)[i] = (float)(u * 2.0 - 1.0);
        else if (b->desc.dtype == KF_I64) ((int64_t *)data)[i] = (int64_t)(u * 4);
    }
}

/* Runs p with inputs/params drawn from seed (by buffer role and index/param name, so two
 * programs for one graph see the same values); outputs are copied into outs[i] (malloc'd). */
static int run_program(const kf_program *p, unsigned seed, float **outs, int max_outs) {
    const kf_target_ops *t = kf_target_cpu();
    kf_build_opts bo;
    memset(&bo, 0, sizeof bo);
    bo.cache_dir = cache_dir;
    bo.threads = 2;
    kf_build b;
    kf_err err;
    kf_err_clear(&err);
    if (t->build(p, &bo, &b, &err)) {
        fprintf(stderr, "  build: %s\n", err.msg);
        return -1;
    }
    void *rt = NULL;
    int rc = t->open(p, &b, &bo, &rt, &err);
    kf_slot *slots = calloc((size_t)p->n_bufs + 1, sizeof *slots);
    for (int i = 0; !rc && i < p->n_bufs; i++) {
        const kf_pbuf *pb = &p->bufs[i];
        slots[i].base = calloc(1, pb->nbytes + 2 * KF_GUARD_BYTES);
        slots[i].data = slots[i].base + KF_GUARD_BYTES;
        slots[i].nbytes = pb->nbytes;
        unsigned s = seed;
        if (pb->role == KF_BUF_INPUT) s += 1000u * (unsigned)(pb->index + 1);
        if (pb->role == KF_BUF_PARAM) for (const char *c = pb->param; c && *c; c++) s = s * 31u + (unsigned)*c;
        if (pb->role == KF_BUF_INPUT || pb->role == KF_BUF_PARAM) fill_random(slots[i].data, pb, &s);
        else memset(slots[i].data, 0xFF, pb->nbytes);
    }
    if (!rc) rc = t->bind(rt, slots, p->n_bufs, &err);
    if (!rc) rc = t->run(rt, &err);
    if (rc) fprintf(stderr, "  run: %s\n", err.msg);
    for (int i = 0; !rc && i < p->n_bufs; i++) {
        const kf_pbuf *pb = &p->bufs[i];
        if (pb->role != KF_BUF_OUTPUT || pb->index >= max_outs) continue;
        outs[pb->index] = malloc(pb->nbytes);
        memcpy(outs[pb->index], slots[i].data, pb->nbytes);
    }
    if (rt) t->close(rt);
    for (int i = 0; i < p->n_bufs; i++) free(slots[i].base);
    free(slots);
    kf_build_free(&b);
    return rc;
}

/* Max relative difference of output 0..n-1 between the fused and the naive program. */
static double compare_with_naive(const kf_graph *g, const kf_program *fused) {
    kf_program naive;
    kf_err err;
    if (kf_lower_naive(g, "cpu", &naive, &err)) {
        fprintf(stderr, "  naive: %s\n", err.msg);
        return 1e30;
    }
    float *a[8] = {0}, *b[8] = {0};
    double worst = 1e30;
    if (run_program(&naive, 7, a, 8) == 0 && run_program(fused, 7, b, 8) == 0) {
        worst = 0;
        for (int o = 0; o < g->n_outputs && o < 8; o++) {
            int64_t n = kf_tdesc_numel(&g->values[g->outputs[o]].desc);
            if (!a[o] || !b[o]) {
                worst = 1e30;
                continue;
            }
            const kf_tdesc *od = &g->values[g->outputs[o]].desc;
            if (od->dtype != KF_F32) {
                if (memcmp(a[o], b[o], kf_tdesc_nbytes(od)) != 0) worst = 1e30;
                continue;
            }
            for (int64_t i = 0; i < n; i++) {
                double d = fabs((double)a[o][i] - (double)b[o][i]) / (1e-3 + fabs((double)a[o][i]));
                if (!(d <= worst)) worst = d;
            }
        }
    }
    for (int o = 0; o < 8; o++) {
        free(a[o]);
        free(b[o]);
    }
    kf_program_free(&naive);
    return worst;
}

/* Steps of a kind, not counting the kernel that writes the vector math's constant table. */
static int count_steps(const kf_program *p, kf_step_kind k) {
    int n = 0;
    for (int i = 0; i < p->n_steps; i++)
        n += p->steps[i].kind == k &&
             !(k == KF_STEP_LAUNCH && strcmp(p->kernels[p->steps[i].kernel].name, "kconsts") == 0);
    return n;
}

#endif
