/* kf_time.c: kf_harness_time, the timing protocol of DESIGN.md: rounds alternating PyTorch
 * eager (and torch.compile) in the oracle with the candidate in the worker, on the same inputs,
 * with the same warm-up and cache flush; medians over every run, min and max kept. On the
 * device data path (kf_session_dev.c) the inputs are staged on the device once and the timed
 * requests do not upload the arena. */
#include "harness/kf_session.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct kf_samples {
    double *v;
    int n, cap;
} kf_samples;

static int kf_samples_add(kf_samples *s, const double *v, int n) {
    if (s->n + n > s->cap) {
        int cap = s->cap ? s->cap : 32;
        while (cap < s->n + n) cap *= 2;
        double *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = cap;
    }
    memcpy(s->v + s->n, v, (size_t)n * sizeof *v);
    s->n += n;
    return 0;
}

static int kf_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median, min and max of the samples (sorts them). */
static void kf_samples_summary(kf_samples *s, double *med, double *mn, double *mx) {
    *med = *mn = *mx = 0;
    if (!s->n) return;
    qsort(s->v, (size_t)s->n, sizeof *s->v, kf_cmp_double);
    *mn = s->v[0];
    *mx = s->v[s->n - 1];
    *med = s->n % 2 ? s->v[s->n / 2] : 0.5 * (s->v[s->n / 2 - 1] + s->v[s->n / 2]);
}

/* One baseline mode for one round. *unavailable = 1 if this torch has no such mode. */
static int kf_time_baseline(kf_oracle *o, const char *mode, const char *precision,
                            unsigned long long seed, int runs, int warmup, long long flush,
                            kf_samples *out, int *unavailable, kf_err *err) {
    kf_timing tm;
    memset(&tm, 0, sizeof tm);
    int rc = kf_oracle_time_precision(o, mode, precision, seed, runs, warmup, flush, &tm, err);
    if (rc) {
        if (rc == KF_E_UNAVAILABLE || strncmp(err->msg, "unavailable", 11) == 0) {
            *unavailable = 1;
            kf_err_clear(err);
            return 0;
        }
        return kf_err_prefix(err, "harness: timing PyTorch %s (%s precision)", mode, precision);
    }
    if (kf_samples_add(out, tm.ms, tm.n)) rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    kf_timing_free(&tm);
    return rc;
}

/* Loads one case (inputs for `seed`) into the arena. *failed when the program does not fit. */
static int kf_time_fill(kf_session *s, kf_oracle *o, unsigned long long seed, kf_safetensors *cs,
                        kf_result *r, int *failed, kf_err *err) {
    char *path = kf_session_case_path(s);
    if (!path) return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    int rc = kf_oracle_case(o, seed, "default", path, err);
    if (!rc) rc = kf_st_open(path, cs, err);
    unlink(path);
    free(path);
    if (rc) return kf_err_prefix(err, "harness: timing inputs");
    kf_err e;
    kf_err_clear(&e);
    if (kf_arena_fill(&s->arena, cs, s->params_open ? &s->params : NULL, &e) != 0) {
        kf_result_set(r, KF_ST_INVALID, "invalid program: %s", e.msg);
        *failed = 1;
    }
    return 0;
}

/* The candidate's part of a round: warm-up (discarded) then `runs` timed runs. */
static int kf_time_candidate(kf_session *s, int warmup, int runs, kf_samples *out, kf_result *r,
                             int *failed, kf_err *err) {
    int (*timed)(kf_worker *, int, double *, kf_outcome *, kf_err *) =
        s->dev ? kf_worker_time_dev : kf_worker_time;
    int n = warmup > runs ? warmup : runs;
    double *ms = calloc((size_t)n, sizeof *ms);
    if (!ms) return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
    int rc = 0;
    if (warmup > 0) rc = timed(&s->worker, warmup, ms, &oc, err);
    if (!rc && oc.status == KF_ST_VERIFIED) rc = timed(&s->worker, runs, ms, &oc, err);
    if (!rc && oc.status != KF_ST_VERIFIED) {
        kf_result_from_outcome(r, &oc);
        *failed = 1;
    } else if (!rc && kf_samples_add(out, ms, runs)) {
        rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    }
    kf_outcome_clear(&oc);
    free(ms);
    return rc;
}

int kf_harness_time(kf_oracle *o, const kf_graph *g, const char *params_file,
                    const kf_program *p, const kf_harness_opts *opt, int with_baselines,
                    int with_compile, kf_result *r, kf_err *err) {
    kf_session s;
    int ready = 0;
    double build_s = r->build_s;
    int rc = kf_session_open(&s, g, params_file, p, opt, r, &ready, err);
    if (build_s > 0) r->build_s = build_s; /* keep the first (uncached) build time */
    if (rc || !ready) {
        kf_session_close(&s);
        return rc;
    }
    unsigned long long seed = kf_harness_trial_seed(s.hidden, 1000);
    kf_samples cand = {0}, eager = {0}, comp = {0}, eager_d = {0}, comp_d = {0};
    kf_safetensors cs;
    int failed = 0, cs_open = 0, compile_unavailable = 0;
    int fallback = 0;
    rc = kf_session_dev_start(&s, o, r, &failed, err);
    if (!rc && !failed && s.dev) rc = kf_session_dev_stage(&s, o, seed, r, &failed, &fallback, err);
    if (!rc && !failed && !s.dev) {
        rc = kf_time_fill(&s, o, seed, &cs, r, &failed, err);
        if (!rc) cs_open = 1;
    }
    int per_round = (s.opt.timed_runs + s.opt.rounds - 1) / s.opt.rounds;
    for (int round = 0; round < s.opt.rounds && !rc && !failed; round++) {
        int warm = round == 0 ? s.opt.warmup : 0;
        int unavailable = 0;
        if (with_baselines)
            rc = kf_time_baseline(o, "eager", "strict", seed, per_round, warm, s.opt.flush_bytes,
                                  &eager, &unavailable, err);
        if (!rc && with_baselines && with_compile && !compile_unavailable)
            rc = kf_time_baseline(o, "compile", "strict", seed, per_round, warm, s.opt.flush_bytes,
                                  &comp, &compile_unavailable, err);
        if (!rc && with_baselines && s.opt.time_defaults && !unavailable)
            rc = kf_time_baseline(o, "eager", "default", seed, per_round, warm, s.opt.flush_bytes,
                                  &eager_d, &unavailable, err);
        if (!rc && with_baselines && with_compile && s.opt.time_defaults && !compile_unavailable)
            rc = kf_time_baseline(o, "compile", "default", seed, per_round, warm,
                                  s.opt.flush_bytes, &comp_d, &compile_unavailable, err);
        if (!rc && unavailable)
            rc = kf_fail(err, KF_E_ORACLE, "harness: PyTorch eager timing is unavailable");
        if (!rc) rc = kf_time_candidate(&s, warm, per_round, &cand, r, &failed, err);
    }
    if (cs_open) kf_st_close(&cs);
    r->device_data = s.dev;
    kf_session_close(&s);
    if (rc) {
        kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
    } else if (!failed) {
        kf_samples_summary(&cand, &r->ms, &r->min_ms, &r->max_ms);
        double mn, mx;
        r->eager_ms = r->compile_ms = r->eager_default_ms = r->compile_default_ms = 0;
        if (with_baselines) kf_samples_summary(&eager, &r->eager_ms, &mn, &mx);
        if (with_baselines && with_compile) {
            if (compile_unavailable) r->compile_ms = -1;
            else kf_samples_summary(&comp, &r->compile_ms, &mn, &mx);
        }
        if (with_baselines && s.opt.time_defaults) {
            kf_samples_summary(&eager_d, &r->eager_default_ms, &mn, &mx);
            if (with_compile && !compile_unavailable)
                kf_samples_summary(&comp_d, &r->compile_default_ms, &mn, &mx);
        }
    }
    free(cand.v);
    free(eager.v);
    free(comp.v);
    free(eager_d.v);
    free(comp_d.v);
    return rc;
}
