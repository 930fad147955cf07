/* kf_verify_dev.c: one trial of the verification protocol on the device data path. The
 * oracle keeps the trial's inputs and references on the GPU (CUDA IPC); one request to the
 * worker stages the buffers (guards, poison, inputs and params copied device-to-device), runs
 * the plan and checks on the device, in the order and with the messages of the host path
 * (kf_verify.c's kf_trial): guard bytes (kf_arena_check), inputs and params unchanged (bitwise
 * against the oracle's copies), every output against its reference (kf_compare's rule), and
 * the degenerate-problem bookkeeping (references all zero; every later trial's references equal to
 * trial 0's within tolerance). On a float32 mismatch the float64 case comes the same way and
 * a second request compares the outputs still in the worker's buffers with it. */
#include "harness/kf_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kf_jobs {
    kf_dev_job *v;
    int n, cap;
} kf_jobs;

static int kf_jobs_add(kf_jobs *j, const kf_dev_job *x, kf_err *err) {
    if (j->n == j->cap) {
        int cap = j->cap ? 2 * j->cap : 32;
        kf_dev_job *v = realloc(j->v, (size_t)cap * sizeof *v);
        if (!v) return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
        j->v = v;
        j->cap = cap;
    }
    j->v[j->n++] = *x;
    return 0;
}

static kf_dev_ref kf_ref_buf(int buf, int region) { kf_dev_ref r = {buf, -1, region}; return r; }
static kf_dev_ref kf_ref_mem(int mem) { kf_dev_ref r = {-1, mem, KF_DEV_DATA}; return r; }

static void kf_sum_to_mismatch(const kf_dev_sum *d, kf_mismatch *m) {
    memset(m, 0, sizeof *m);
    m->count = d->count;
    m->index = d->count ? d->index : -1;
    m->got = d->got;
    m->expected = d->expected;
    m->tol = d->tol;
    m->worst_index = d->count ? d->worst_index : -1;
    m->worst_got = d->worst_got;
    m->worst_expected = d->worst_expected;
    m->worst_tol = d->worst_tol;
    m->worst_ratio = d->worst_ratio;
}

/* CLOSE jobs of every output buffer against the "out.<index>" of group g (at mem base);
 * job_of[buf] = its job, or -1 where the reference is missing or does not fit (the
 * structural checks of kf_check_outputs report those). */
static int kf_output_jobs(const kf_session *s, const kf_ipc_group *g, int base, kf_jobs *jobs,
                          int *job_of, kf_err *err) {
    const kf_program *p = s->p;
    for (int j = 0; j < p->n_bufs; j++) {
        const kf_pbuf *b = &p->bufs[j];
        job_of[j] = -1;
        if (b->role != KF_BUF_OUTPUT) continue;
        char name[32];
        snprintf(name, sizeof name, "out.%d", b->index);
        const kf_ipc_tensor *ref = kf_ipc_find(g, name);
        if (!ref || ref->desc.dtype != b->desc.dtype || ref->nbytes != b->nbytes) continue;
        kf_dev_job x = {KF_DJ_CLOSE, kf_ref_buf(j, KF_DEV_DATA), kf_ref_mem(base + (int)(ref - g->t)),
                        b->desc.dtype, kf_tdesc_numel(&ref->desc), 0, 0,
                        kf_tol_for(s->opt.atol, b->desc.dtype), kf_tol_for(s->opt.rtol, b->desc.dtype)};
        job_of[j] = jobs->n;
        int rc = kf_jobs_add(jobs, &x, err);
        if (rc) return rc;
    }
    return 0;
}

/* Per-buffer mismatches from the jobs' results (count 0 where there was no job). */
static void kf_collect_outputs(const kf_session *s, const int *job_of, const kf_dev_sum *sums,
                               kf_mismatch *dev_m) {
    for (int j = 0; j < s->p->n_bufs; j++) {
        memset(&dev_m[j], 0, sizeof dev_m[j]);
        dev_m[j].index = dev_m[j].worst_index = -1;
        if (job_of[j] >= 0) kf_sum_to_mismatch(&sums[job_of[j]], &dev_m[j]);
    }
}

/* Sends one request; 0 with *ok = 1 when it answered, else the outcome or the fallback set. */
static int kf_dev_send(kf_session *s, const kf_dev_request *q, kf_dev_sum *sums, kf_result *r,
                       int *failed, int *fallback, int *ok, kf_err *err) {
    *ok = 0;
    kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
    int unavailable = 0;
    char why[600];
    int rc = kf_worker_dev(&s->worker, q, sums, &unavailable, why, sizeof why, &oc, err);
    if (rc) {
        kf_outcome_clear(&oc);
        return rc;
    }
    if (oc.status != KF_ST_VERIFIED) {
        kf_result_from_outcome(r, &oc);
        *failed = 1;
    } else if (unavailable) {
        kf_session_dev_off(s, why);
        *fallback = 1;
    } else {
        *ok = 1;
    }
    kf_outcome_clear(&oc);
    return 0;
}

/* The float64 second look (kf_verify.c's kf_second_look_f64) with the outputs still in the
 * worker's buffers. */
static int kf_second_look_dev(kf_session *s, kf_oracle *o, int t, unsigned long long seed,
                              const char *dist, const kf_ipc_group *cg, kf_result *r,
                              int *matched, int *failed, kf_err *err) {
    *matched = 0;
    kf_ipc_group g64;
    kf_err e;
    kf_err_clear(&e);
    int rc = kf_oracle_case_ipc(o, seed, dist, "f64", &g64, &e);
    if (rc == KF_E_UNAVAILABLE) {
        kf_result_set(r, KF_ST_MISMATCH, "%s; no float64 reference to compare with (%s)",
                      r->message ? r->message : "mismatch", e.msg);
        return 0;
    }
    if (rc) {
        if (err) *err = e;
        return kf_err_prefix(err, "harness: trial %d: float64 reference case", t + 1);
    }
    /* the same inputs as the float32 case: names, dtypes and sizes here, bytes on the device */
    kf_dev_mem *mems = NULL;
    int n = 0, base32 = 0, base64 = 0, differ = 0, n_in32 = 0, n_in64 = 0;
    kf_jobs jobs = {0};
    int *job_of = calloc(s->p->n_bufs ? (size_t)s->p->n_bufs : 1, sizeof *job_of);
    kf_mismatch *dev_m = calloc(s->p->n_bufs ? (size_t)s->p->n_bufs : 1, sizeof *dev_m);
    kf_dev_sum *sums = NULL;
    kf_safetensors c64;
    memset(&c64, 0, sizeof c64);
    if (!job_of || !dev_m) rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    if (!rc) rc = kf_dev_mems_add(&mems, &n, cg, &base32, err);
    if (!rc) rc = kf_dev_mems_add(&mems, &n, &g64, &base64, err);
    int first_in_job = 0;
    for (int i = 0; i < cg->n && !rc; i++)
        if (!strncmp(cg->t[i].name, "in.", 3)) n_in32++;
    for (int i = 0; i < g64.n && !rc; i++) {
        const kf_ipc_tensor *x = &g64.t[i];
        if (strncmp(x->name, "in.", 3) != 0) continue;
        n_in64++;
        const kf_ipc_tensor *y = kf_ipc_find(cg, x->name);
        if (!y || y->desc.dtype != x->desc.dtype || y->nbytes != x->nbytes) {
            differ = 1;
            continue;
        }
        kf_dev_job jb = {KF_DJ_BYTES_EQ, kf_ref_mem(base64 + i), kf_ref_mem(base32 + (int)(y - cg->t)),
                         KF_U8, 0, x->nbytes, 0, 0, 0};
        rc = kf_jobs_add(&jobs, &jb, err);
    }
    int n_in_jobs = jobs.n;
    (void)first_in_job;
    if (!rc) rc = kf_output_jobs(s, &g64, base64, &jobs, job_of, err);
    if (!rc && !(sums = calloc(jobs.n ? (size_t)jobs.n : 1, sizeof *sums)))
        rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    int ok = 0, fallback = 0;
    if (!rc && !differ && n_in32 == n_in64) {
        kf_dev_request q = {0, mems, n, NULL, 0, jobs.v, jobs.n};
        rc = kf_dev_send(s, &q, sums, r, failed, &fallback, &ok, err);
        if (!rc && fallback) {
            rc = kf_fail(err, KF_E_INTERNAL, "harness: trial %d: the device data path went away "
                         "during the float64 second look", t + 1);
        }
    }
    if (!rc && ok) {
        for (int k = 0; k < n_in_jobs; k++)
            if (sums[k].count) differ = 1;
    }
    if (!rc && (differ || n_in32 != n_in64)) {
        rc = kf_fail(err, KF_E_INTERNAL,
                     "harness: trial %d: the oracle's float64 case has other inputs than its "
                     "float32 case for the same seed", t + 1);
    } else if (!rc && ok) {
        kf_collect_outputs(s, job_of, sums, dev_m);
        rc = kf_ipc_as_st(&g64, &c64, err);
        if (!rc) kf_f64_verdict(s, &c64, dev_m, r, matched);
    }
    kf_st_close(&c64);
    free(sums);
    free(jobs.v);
    free(mems);
    free(job_of);
    free(dev_m);
    kf_session_dev_release(s, o, &g64);
    return rc;
}

int kf_trial_dev(kf_session *s, kf_oracle *o, int t, kf_ipc_group *first, int *allzero,
                 int *same, kf_result *r, int *failed, int *by_f64, int *got_case,
                 int *fallback, kf_err *err) {
    const kf_program *p = s->p;
    *by_f64 = *got_case = *fallback = 0;
    const char *dist = kf_trial_dist(t, s->opt.trials);
    unsigned long long seed = kf_harness_trial_seed(s->hidden, t);
    kf_ipc_group cg;
    kf_err e;
    kf_err_clear(&e);
    int rc = kf_oracle_case_ipc(o, seed, dist, "f32", &cg, &e);
    if (rc == KF_E_UNSUPPORTED) {
        kf_session_dev_off(s, e.msg);
        *fallback = 1;
        return 0;
    }
    if (rc) {
        if (err) *err = e;
        return kf_err_prefix(err, "harness: trial %d: reference case", t + 1);
    }
    size_t nb = p->n_bufs ? (size_t)p->n_bufs : 1;
    kf_dev_mem *mems = NULL;
    int n = 0, bad = 0, first_base = 0;
    int *src = calloc(nb, sizeof *src), *job_of = calloc(nb, sizeof *job_of);
    kf_mismatch *dev_m = calloc(nb, sizeof *dev_m);
    kf_jobs jobs = {0};
    kf_dev_sum *sums = NULL;
    kf_safetensors cst;
    memset(&cst, 0, sizeof cst);
    if (!src || !job_of || !dev_m) rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    /* mems: the case (0..), the params, then trial 0's case on later trials */
    if (!rc) rc = kf_dev_plan_sources(s, &cg, &mems, &n, src, &cst, &bad, &e);
    if (!rc && t >= 1 && first->id && *same) rc = kf_dev_mems_add(&mems, &n, first, &first_base, err);
    /* reference bookkeeping (kf_note_refs): which jobs say what */
    int ref_lo = 0, ref_hi = 0, same_broken = 0;
    for (int i = 0; i < cg.n && !rc; i++) {
        int k;
        if (!kf_is_output_name(cg.t[i].name, &k)) continue;
        const kf_ipc_tensor *x = &cg.t[i];
        if (*allzero) {
            kf_dev_job jz = {KF_DJ_NONZERO, kf_ref_mem(i), kf_ref_mem(i), x->desc.dtype,
                             kf_tdesc_numel(&x->desc), 0, 0, 0, 0};
            rc = kf_jobs_add(&jobs, &jz, err);
        }
        if (rc || !(t >= 1 && first->id && *same)) continue;
        const kf_ipc_tensor *f = kf_ipc_find(first, x->name);
        if (!f || f->desc.dtype != x->desc.dtype || f->nbytes != x->nbytes) {
            same_broken = 1;
            continue;
        }
        kf_dev_job js = {KF_DJ_CLOSE, kf_ref_mem(i), kf_ref_mem(first_base + (int)(f - first->t)),
                         x->desc.dtype, kf_tdesc_numel(&x->desc), 0, 0,
                         kf_tol_for(s->opt.atol, x->desc.dtype), kf_tol_for(s->opt.rtol, x->desc.dtype)};
        rc = kf_jobs_add(&jobs, &js, err);
    }
    ref_hi = jobs.n;
    /* guards, then inputs and params unchanged (kf_arena_check's order), then outputs */
    int guard_lo = jobs.n;
    for (int j = 0; j < p->n_bufs && !rc; j++) {
        kf_dev_job g0 = {KF_DJ_BYTES_CONST, kf_ref_buf(j, KF_DEV_GUARD_BEFORE), kf_ref_buf(j, KF_DEV_GUARD_BEFORE),
                         KF_U8, 0, KF_GUARD_BYTES, KF_GUARD_BYTE, 0, 0};
        kf_dev_job g1 = g0;
        g1.a = g1.b = kf_ref_buf(j, KF_DEV_GUARD_AFTER);
        rc = kf_jobs_add(&jobs, &g0, err);
        if (!rc) rc = kf_jobs_add(&jobs, &g1, err);
    }
    int in_lo = jobs.n;
    int *in_job = calloc(nb, sizeof *in_job);
    if (!in_job && !rc) rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    for (int j = 0; j < p->n_bufs && !rc; j++) {
        in_job[j] = -1;
        if (src[j] < 0 || !p->bufs[j].nbytes) continue;
        kf_dev_job jb = {KF_DJ_BYTES_EQ, kf_ref_buf(j, KF_DEV_DATA), kf_ref_mem(src[j]), KF_U8, 0,
                         p->bufs[j].nbytes, 0, 0, 0};
        in_job[j] = jobs.n;
        rc = kf_jobs_add(&jobs, &jb, err);
    }
    (void)in_lo;
    if (!rc) rc = kf_output_jobs(s, &cg, 0, &jobs, job_of, err);
    if (!rc && !(sums = calloc(jobs.n ? (size_t)jobs.n : 1, sizeof *sums)))
        rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    if (rc) goto done;
    *got_case = 1;
    /* the references count before the run, whatever the run does, as on the host path */
    int ok = 0;
    if (ref_hi > 0) {
        kf_dev_request q0 = {0, mems, n, NULL, 0, jobs.v, ref_hi};
        rc = kf_dev_send(s, &q0, sums, r, failed, fallback, &ok, err);
        if (rc || !ok) {
            if (*fallback) *got_case = 0;
            goto done;
        }
        for (int k = ref_lo; k < ref_hi; k++) {
            if (jobs.v[k].kind == KF_DJ_NONZERO && sums[k].count) *allzero = 0;
            if (jobs.v[k].kind == KF_DJ_CLOSE && sums[k].count) *same = 0;
        }
    }
    if (same_broken) *same = 0;
    if (bad) {
        kf_result_set(r, KF_ST_INVALID, "invalid program: %s", e.msg);
        *failed = 1;
        goto done;
    }
    kf_dev_request q = {KF_DEV_STAGE | KF_DEV_RUN, mems, n, src, p->n_bufs, jobs.v + ref_hi,
                        jobs.n - ref_hi};
    rc = kf_dev_send(s, &q, sums + ref_hi, r, failed, fallback, &ok, err);
    if (*fallback) *got_case = 0;
    if (rc || !ok) goto done;
    r->trial = t;
    /* guards */
    int what = 0;
    for (int j = 0; j < p->n_bufs && !what; j++) {
        for (int side = 0; side < 2 && !what; side++) {
            const kf_dev_sum *g = &sums[guard_lo + 2 * j + side];
            if (!g->count) continue;
            kf_arena_guard_fail(p, j, side, (long)g->index, (int)g->got, (size_t)g->count, &e);
            what = 1;
        }
    }
    for (int j = 0; j < p->n_bufs && !what; j++) {
        if (in_job[j] < 0 || !sums[in_job[j]].count) continue;
        kf_arena_changed_fail(p, j, (size_t)sums[in_job[j]].index, (size_t)sums[in_job[j]].count, &e);
        what = 2;
    }
    if (what) {
        kf_result_set(r, what == 1 ? KF_ST_CRASHED : KF_ST_MISMATCH, "%s (trial %d of %d)", e.msg, t + 1,
                      s->opt.trials);
        *failed = 1;
        goto done;
    }
    kf_collect_outputs(s, job_of, sums, dev_m);
    int cr = kf_check_outputs(s, &cst, t, dist, r, dev_m);
    if (cr == 2) rc = kf_second_look_dev(s, o, t, seed, dist, &cg, r, by_f64, failed, err);
    if (!rc && cr && !*by_f64) *failed = 1;
done:
    free(in_job);
    kf_st_close(&cst);
    free(sums);
    free(jobs.v);
    free(mems);
    free(src);
    free(job_of);
    free(dev_m);
    /* trial 0's case stays for the later trials' comparison (the caller releases it after
     * the last trial); the rest goes back to the oracle */
    if (t == 0 && !rc && !*fallback && !*failed) {
        *first = cg;
    } else {
        kf_session_dev_release(s, o, &cg);
    }
    return rc;
}
