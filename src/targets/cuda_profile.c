/* cuda_profile.c: a development profile of a cuda plan. With $KFORGE_CUDA_PROFILE=FILE, the
 * first timing of a bound plan (5 runs or more) is followed by a few profile passes: the L2 is
 * flushed, then every step is launched on its own between two CUDA events. The median time of
 * each step, what the step is (kernel name and launch shape, gemm sizes, conv sizes) and its
 * share of the sum are appended to FILE, after the plan's own median over its timed runs. The
 * steps run without a graph here, so their sum includes launch gaps the graph replay avoids. */
#include "targets/cuda_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_PROF_PASSES 7

static int kf_prof_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static double kf_prof_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, kf_prof_cmp);
    return v[n / 2];
}

static void kf_prof_describe(const kf_program *p, const kf_step *s, char *out, size_t cap) {
    switch (s->kind) {
    case KF_STEP_LAUNCH:
        snprintf(out, cap, "launch %s grid %lld block %lld", p->kernels[s->kernel].name, (long long)s->grid[0],
                 (long long)s->block[0]);
        break;
    case KF_STEP_GEMM:
        snprintf(out, cap, "gemm m %lld n %lld k %lld batch %lld%s%s beta %g", (long long)s->m, (long long)s->n,
                 (long long)s->k, (long long)s->batch, s->trans_a ? " tA" : "", s->trans_b ? " tB" : "", s->beta);
        break;
    case KF_STEP_CONV:
        snprintf(out, cap, "conv%s n %lld c %lld->%lld in %lld kernel %lld stride %lld groups %lld",
                 s->conv.transposed ? "T" : "", (long long)s->conv.n, (long long)s->conv.c_in,
                 (long long)s->conv.c_out, (long long)s->conv.in[0], (long long)s->conv.kernel[0],
                 (long long)s->conv.stride[0], (long long)s->conv.groups);
        break;
    case KF_STEP_COPY: snprintf(out, cap, "copy %lld bytes", (long long)s->bytes); break;
    case KF_STEP_FILL: snprintf(out, cap, "fill %s", p->bufs[s->dst].name); break;
    default: snprintf(out, cap, "step kind %d", (int)s->kind);
    }
}

int kf_cuda_profile(kf_cu_rt *rt, const char *path, const double *ms, int n, kf_err *err) {
    kf_cu_api *a = &rt->cu;
    int ns = rt->p->n_steps, rc = 0;
    CUevent *ev = calloc((size_t)ns + 1, sizeof *ev);
    double *t = calloc((size_t)ns * KF_PROF_PASSES + 1, sizeof *t), *runs = malloc((size_t)n * sizeof *runs);
    if (!ev || !t || !runs) {
        free(ev);
        free(t);
        free(runs);
        return kf_fail(err, KF_E_NOMEM, "cuda profile: out of memory");
    }
    CUresult r = 0;
    for (int i = 0; i <= ns && !r; i++) r = a->EventCreate(&ev[i], 0);
    for (int pass = 0; pass < KF_PROF_PASSES && !r && !rc; pass++) {
        r = a->MemsetD8Async(rt->flush, (unsigned char)(pass * 11 + 3), rt->flush_bytes, rt->stream);
        if (!r) r = a->EventRecord(ev[0], rt->stream);
        for (int si = 0; si < ns && !r && !rc; si++) {
            rc = kf_cuda_enqueue_step(rt, si, err);
            if (!rc) r = a->EventRecord(ev[si + 1], rt->stream);
        }
        if (!r && !rc) r = a->EventSynchronize(ev[ns]);
        for (int si = 0; si < ns && !r && !rc; si++) {
            float ms_step = 0.0f;
            r = a->EventElapsedTime(&ms_step, ev[si], ev[si + 1]);
            t[si * KF_PROF_PASSES + pass] = ms_step;
        }
    }
    if (r && !rc) rc = kf_cuda_check(rt, r, "profiling the plan", err);
    FILE *f = rc ? NULL : fopen(path, "a");
    if (f) {
        double sum = 0, *med = malloc((size_t)ns * sizeof *med);
        for (int si = 0; med && si < ns; si++) {
            med[si] = kf_prof_median(&t[si * KF_PROF_PASSES], KF_PROF_PASSES);
            sum += med[si];
        }
        memcpy(runs, ms, (size_t)n * sizeof *runs);
        fprintf(f, "plan: %d steps, median of %d timed runs %.4f ms, sum of step medians %.4f ms\n", ns, n,
                kf_prof_median(runs, n), sum);
        for (int si = 0; med && si < ns; si++) {
            char what[400];
            kf_prof_describe(rt->p, &rt->p->steps[si], what, sizeof what);
            fprintf(f, "  %3d %8.4f ms %5.1f%%  %s\n", si, med[si], sum > 0 ? 100.0 * med[si] / sum : 0.0, what);
        }
        free(med);
        fclose(f);
    }
    for (int i = 0; i <= ns; i++)
        if (ev[i]) a->EventDestroy(ev[i]);
    free(ev);
    free(t);
    free(runs);
    return rc;
}
