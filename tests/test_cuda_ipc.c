/* test_cuda_ipc.c: the device data path of the harness on the cuda target (kf_devdata.h,
 * src/harness/kf_session_dev.c, kf_verify_dev.c, src/targets/cuda_ipc.c, cuda_compare.c).
 *
 * Everywhere: the oracle's IPC verbs refuse a problem on the CPU (ipc_unavailable, which the
 * harness takes as "host path"), and release is harmless.
 * With a GPU and a CUDA torch (skipped with the reason otherwise):
 * - the device checks give exactly what the host's kf_compare gives (first failing element,
 *   count, worst element, values and tolerances) on every dtype, with NaN/inf placements,
 *   ties and poison; byte checks give the first differing offset and the count;
 * - verification through IPC: a correct ReLU verifies on the device path; a ReLU wrong at one
 *   element, one that modifies its input and one that writes past its output fail with the
 *   same status and message as on the host path (numbers aside for the value mismatch); a
 *   problem with a param (constant_output.py) verifies and is marked degenerate on both
 *   paths; a double-accumulating matmul on matmul_cancel.py verifies against the float64
 *   reference on both; timing on the device path gives times. */
#include "kf_test.h"
#include "core/kf_str.h"
#include "harness/kf_harness.h"
#include "harness/kf_session.h"
#include "ir/kf_program.h"
#include "oracle/kf_oracle.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256], workdir[320], cachedir[320];
static const kf_target_ops *T;
static int g_gpu;
static char g_no_gpu[1024];
static kf_oracle *cpu_oracle, *gpu_oracle;
static char g_no_gpu_oracle[1400];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *python(void) {
    const char *p = getenv("KFORGE_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static kf_oracle *start_oracle(const char *device, char *why, size_t n) {
    kf_oracle_opts o = {.python = python(), .workdir = workdir, .threads = 2, .device = device,
                        .timeout_s = 300};
    if (access("python/kforge_oracle.py", R_OK) == 0) o.script = "python/kforge_oracle.py";
    kf_err err;
    kf_err_clear(&err);
    kf_oracle *orc = NULL;
    if (kf_oracle_start(&o, &orc, &err) != 0) {
        snprintf(why, n, "cannot start the oracle: %s", err.msg);
        return NULL;
    }
    kf_oracle_info info;
    if (kf_oracle_load(orc, "tests/problems/relu.py", 1, &info, &err) != 0) {
        snprintf(why, n, "the oracle cannot load a problem on %s: %s", device, err.msg);
        kf_oracle_stop(orc);
        return NULL;
    }
    return orc;
}

/* Writes dir/plan.json and dir/kernels.cu and loads the program. */
static int make_program(const char *name, const char *plan, const char *cu, kf_program *p) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/plan.json", dir);
    kf_write_file(path, plan, strlen(plan));
    snprintf(path, sizeof path, "%s/kernels.cu", dir);
    kf_write_file(path, cu, strlen(cu));
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_load(dir, p, &err);
    KF_CHECK_MSG(rc == 0, "loading %s: %s", name, err.msg);
    return rc;
}

/* ---- everywhere: the oracle's IPC verbs on a CPU problem ---- */

static void test_ipc_refused_on_cpu(void) {
    if (!cpu_oracle) KF_SKIP("no torch for %s", python());
    kf_err err;
    kf_err_clear(&err);
    kf_oracle_info info;
    KF_CHECK_EQ_INT(kf_oracle_load(cpu_oracle, "tests/problems/relu.py", 1, &info, &err), 0);
    kf_ipc_group g;
    int rc = kf_oracle_case_ipc(cpu_oracle, 5, "default", "f32", &g, &err);
    KF_CHECK_EQ_INT(rc, KF_E_UNSUPPORTED);
    KF_CHECK_MSG(strstr(err.msg, "ipc_unavailable: the problem runs on cpu, not cuda") != NULL, "%s", err.msg);
    KF_CHECK_EQ_INT(g.n, 0);
    rc = kf_oracle_params_ipc(cpu_oracle, &g, &err);
    KF_CHECK_EQ_INT(rc, KF_E_UNSUPPORTED);
    KF_CHECK_EQ_INT(kf_oracle_release(cpu_oracle, 12345, &err), 0);
    KF_CHECK_EQ_INT(kf_oracle_release(cpu_oracle, 0, &err), 0);
    /* the host path is untouched: a file case still works */
    char path[400];
    snprintf(path, sizeof path, "%s/c.safetensors", tmpdir);
    KF_CHECK_EQ_INT(kf_oracle_case(cpu_oracle, 5, "default", path, &err), 0);
    unlink(path);
}

/* ---- GPU: device checks against kf_compare ---- */

#define DC_BYTES (8u << 20)

static const char dc_plan[] =
    "{\"format\": \"kforge-program/1\", \"target\": \"cuda\", \"agent\": \"test:dc\",\n"
    " \"sources\": [\"kernels.cu\"],\n"
    " \"kernels\": [{\"name\": \"touch\", \"params\": [{\"name\": \"y\", \"kind\": \"ptr\"}]}],\n"
    " \"buffers\": [{\"name\": \"a\", \"role\": \"input\", \"index\": 0, \"dtype\": \"u8\", \"shape\": [8388608]},\n"
    "             {\"name\": \"b\", \"role\": \"input\", \"index\": 1, \"dtype\": \"u8\", \"shape\": [8388608]},\n"
    "             {\"name\": \"y\", \"role\": \"output\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [1]}],\n"
    " \"steps\": [{\"op\": \"launch\", \"kernel\": \"touch\", \"args\": [\"y\"],\n"
    "            \"grid\": [1, 1, 1], \"block\": [1, 1, 1], \"shared_bytes\": 0}]}\n";
static const char dc_cu[] = "extern \"C\" __global__ void touch(float *y) { y[0] = 1.0f; }\n";

static unsigned long long rng_state = 88172645463325252ULL;
static unsigned long long rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static void put(unsigned char *p, kf_dtype dt, long long i, double v) {
    size_t es = kf_dtype_size(dt);
    unsigned char *q = p + (size_t)i * es;
    switch (dt) {
    case KF_F32: { float f = (float)v; memcpy(q, &f, 4); break; }
    case KF_F64: memcpy(q, &v, 8); break;
    case KF_I64: { int64_t x = (int64_t)v; memcpy(q, &x, 8); break; }
    case KF_I32: { int32_t x = (int32_t)v; memcpy(q, &x, 4); break; }
    case KF_I16: { int16_t x = (int16_t)v; memcpy(q, &x, 2); break; }
    case KF_I8: { int8_t x = (int8_t)v; memcpy(q, &x, 1); break; }
    default: q[0] = (unsigned char)(int)v; break;
    }
}

/* ref and got for one dtype: ref random, got = ref perturbed in a few places. */
static void dc_data(kf_dtype dt, long long n, unsigned char *got, unsigned char *ref) {
    size_t es = kf_dtype_size(dt);
    int is_float = kf_dtype_is_float(dt);
    for (long long i = 0; i < n; i++) {
        if (dt == KF_F16 || dt == KF_BF16) {
            uint16_t h = (uint16_t)rnd();
            if (dt == KF_F16 && ((h >> 10) & 0x1F) == 31 && (i % 7)) h &= 0xBFFF; /* few inf/NaN */
            memcpy(ref + (size_t)i * 2, &h, 2);
        } else if (is_float) {
            put(ref, dt, i, (urand() - 0.5) * 8.0);
        } else if (dt == KF_BOOL) {
            ref[i] = (unsigned char)(rnd() % 3);
        } else {
            put(ref, dt, i, (double)(long long)(rnd() % 201) - 100.0);
        }
    }
    memcpy(got, ref, (size_t)n * es);
    int k = (int)(rnd() % 40) + 3;
    for (int j = 0; j < k; j++) {
        long long i = (long long)(rnd() % (unsigned long long)n);
        int how = (int)(rnd() % 6);
        if (dt == KF_F16 || dt == KF_BF16) {
            got[(size_t)i * 2 + (how & 1)] ^= (unsigned char)(1u << (rnd() % 8));
        } else if (is_float) {
            double r = kf_elem_get(ref, dt, i);
            if (how == 0) put(got, dt, i, r + 1e-3);
            else if (how == 1) put(got, dt, i, NAN);
            else if (how == 2) { put(ref, dt, i, INFINITY); put(got, dt, i, -INFINITY); }
            else if (how == 3) { put(ref, dt, i, NAN); put(got, dt, i, NAN); } /* passes */
            else if (how == 4) memset(got + (size_t)i * es, 0xFF, es);          /* poison */
            else put(got, dt, i, r * 1.5 + 0.25);
        } else if (dt == KF_BOOL) {
            got[i] = ref[i] ? (how & 1 ? 0 : 7) : 1; /* 7 vs nonzero passes */
        } else {
            put(got, dt, i, kf_elem_get(ref, dt, i) + 1.0);
        }
    }
    if (is_float && n > 10) { /* a tie for the worst element: the lower index must win */
        double r0 = kf_elem_get(ref, dt, 3);
        put(ref, dt, n - 2, r0);
        put(got, dt, 3, r0 + 0.5);
        put(got, dt, n - 2, r0 + 0.5);
    }
}

static int same_double(double a, double b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void check_sum(const char *what, const kf_dev_sum *d, const kf_mismatch *h) {
    KF_CHECK_MSG(d->count == h->count, "%s: count %lld vs host %lld", what, d->count, h->count);
    if (!h->count) return;
    KF_CHECK_MSG(d->index == h->index, "%s: first %lld vs host %lld", what, d->index, h->index);
    KF_CHECK_MSG(d->worst_index == h->worst_index, "%s: worst %lld vs host %lld", what, d->worst_index,
                 h->worst_index);
    KF_CHECK_MSG(same_double(d->got, h->got) && same_double(d->expected, h->expected) &&
                 same_double(d->tol, h->tol),
                 "%s: first got %.17g exp %.17g tol %.17g vs host %.17g %.17g %.17g", what, d->got, d->expected,
                 d->tol, h->got, h->expected, h->tol);
    KF_CHECK_MSG(same_double(d->worst_got, h->worst_got) && same_double(d->worst_expected, h->worst_expected) &&
                 same_double(d->worst_tol, h->worst_tol) && same_double(d->worst_ratio, h->worst_ratio),
                 "%s: worst got %.17g exp %.17g tol %.17g ratio %.17g vs host %.17g %.17g %.17g %.17g", what,
                 d->worst_got, d->worst_expected, d->worst_tol, d->worst_ratio, h->worst_got, h->worst_expected,
                 h->worst_tol, h->worst_ratio);
}

static void test_device_checks_match_host(void) {
    if (!g_gpu) KF_SKIP("no GPU here: %s", g_no_gpu);
    kf_program p;
    if (make_program("dc", dc_plan, dc_cu, &p)) return;
    kf_err err;
    kf_err_clear(&err);
    kf_build_opts bo = {0};
    bo.cache_dir = cachedir;
    bo.threads = 1;
    bo.timeout_s = 120;
    kf_build b = {0};
    kf_arena arena;
    kf_worker w;
    kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
    int rc = T->build(&p, &bo, &b, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) rc = kf_arena_create(&arena, &p, &err);
    kf_worker_limits lim = {60, 4LL << 30, 1 << 20, 1};
    if (!rc) rc = kf_worker_start(&w, T, &p, &b, &bo, &arena, &lim, &oc, &err);
    KF_CHECK_MSG(rc == 0 && oc.status == KF_ST_VERIFIED, "%s %s", err.msg, oc.message ? oc.message : "");
    if (rc || oc.status != KF_ST_VERIFIED) return;
    const kf_dtype dts[] = {KF_F32, KF_F64, KF_F16, KF_BF16, KF_I64, KF_I32, KF_I16, KF_I8, KF_U8, KF_BOOL};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0] && !kf_test_case_failed; d++) {
        kf_dtype dt = dts[d];
        long long n = (long long)((DC_BYTES - 8) / kf_dtype_size(dt)) - (long long)(rnd() % 1000);
        unsigned char *got = arena.slots[0].data, *ref = arena.slots[1].data;
        dc_data(dt, n, got, ref);
        memset(arena.slots[2].data, KF_POISON_BYTE, 4);
        KF_CHECK_EQ_INT(kf_worker_run(&w, &oc, &err), 0); /* uploads a and b */
        KF_CHECK_EQ_INT(oc.status, KF_ST_VERIFIED);
        kf_dev_job jobs[5];
        kf_dev_ref ra = {0, -1, KF_DEV_DATA}, rb = {1, -1, KF_DEV_DATA};
        double tol = kf_default_tol(dt) > 0 ? kf_default_tol(dt) : 0;
        jobs[0] = (kf_dev_job){KF_DJ_CLOSE, ra, rb, dt, n, 0, 0, tol, tol};
        jobs[1] = (kf_dev_job){KF_DJ_NONZERO, ra, ra, dt, n, 0, 0, 0, 0};
        jobs[2] = (kf_dev_job){KF_DJ_BYTES_EQ, ra, rb, KF_U8, 0, (unsigned long long)n * kf_dtype_size(dt) + 3, 0, 0, 0};
        jobs[3] = (kf_dev_job){KF_DJ_BYTES_CONST, (kf_dev_ref){2, -1, KF_DEV_GUARD_AFTER},
                               (kf_dev_ref){2, -1, KF_DEV_GUARD_AFTER}, KF_U8, 0, KF_GUARD_BYTES, KF_GUARD_BYTE, 0, 0};
        jobs[4] = (kf_dev_job){KF_DJ_BYTES_CONST, ra, ra, KF_U8, 0, 1001, 0x5A, 0, 0};
        kf_dev_sum sums[5];
        kf_dev_request q = {0, NULL, 0, NULL, 0, jobs, 5};
        int unavailable = 0;
        char why[600];
        double t0 = now_s();
        rc = kf_worker_dev(&w, &q, sums, &unavailable, why, sizeof why, &oc, &err);
        double dt_s = now_s() - t0;
        KF_CHECK_MSG(rc == 0 && oc.status == KF_ST_VERIFIED && !unavailable, "%s %s %s", err.msg,
                     oc.message ? oc.message : "", why);
        if (rc || oc.status != KF_ST_VERIFIED || unavailable) break;
        char what[64];
        snprintf(what, sizeof what, "%s close", kf_dtype_name(dt));
        kf_mismatch h;
        kf_compare(got, ref, dt, n, tol, tol, &h);
        check_sum(what, &sums[0], &h);
        long long nz = 0;
        for (long long i = 0; i < n; i++) nz += kf_elem_get(got, dt, i) != 0.0;
        KF_CHECK_MSG(sums[1].count == nz, "%s nonzero %lld vs %lld", kf_dtype_name(dt), sums[1].count, nz);
        size_t nbytes = (size_t)n * kf_dtype_size(dt) + 3, first = 0, cnt = 0;
        for (size_t k = 0; k < nbytes; k++)
            if (got[k] != ref[k]) {
                if (!cnt) first = k;
                cnt++;
            }
        KF_CHECK_MSG(sums[2].count == (long long)cnt && (!cnt || sums[2].index == (long long)first),
                     "%s bytes: %lld at %lld vs %zu at %zu", kf_dtype_name(dt), sums[2].count, sums[2].index, cnt, first);
        KF_CHECK_EQ_INT(sums[3].count, 0);
        size_t c5 = 0, f5 = 0;
        for (size_t k = 0; k < 1001; k++)
            if (got[k] != 0x5A) {
                if (!c5) f5 = k;
                c5++;
            }
        KF_CHECK_MSG(sums[4].count == (long long)c5 && sums[4].index == (long long)f5 && (int)sums[4].got == got[f5],
                     "bytes vs 0x5A: %lld at %lld (0x%02X)", sums[4].count, sums[4].index, (int)sums[4].got);
        fprintf(stderr, "    %s: %lld elements, %lld fail (first %lld, worst %lld), checks %.1f ms\n",
                kf_dtype_name(dt), n, h.count, h.index, h.worst_index, dt_s * 1e3);
    }
    kf_outcome_clear(&oc);
    kf_worker_stop(&w);
    kf_arena_destroy(&arena);
    kf_build_free(&b);
    kf_program_free(&p);
}

/* ---- GPU: verification through IPC vs the host path ---- */

static const char relu_plan[] =
    "{\"format\": \"kforge-program/1\", \"target\": \"cuda\", \"agent\": \"test:ipc\",\n"
    " \"sources\": [\"kernels.cu\"],\n"
    " \"kernels\": [{\"name\": \"relu\", \"params\": [{\"name\": \"x\", \"kind\": \"ptr\"}, {\"name\": \"y\", \"kind\": \"ptr\"},\n"
    "                                          {\"name\": \"n\", \"kind\": \"i64\"}]}],\n"
    " \"buffers\": [{\"name\": \"x\", \"role\": \"input\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [4, 32]},\n"
    "             {\"name\": \"y\", \"role\": \"output\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [4, 32]}],\n"
    " \"steps\": [{\"op\": \"launch\", \"kernel\": \"relu\", \"args\": [\"x\", \"y\", {\"i64\": 128}],\n"
    "            \"grid\": [1, 1, 1], \"block\": [128, 1, 1], \"shared_bytes\": 0}]}\n";

static const char relu_good[] =
    "extern \"C\" __global__ void relu(float *x, float *y, long long n) {\n"
    "    long long i = threadIdx.x; if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n}\n";
static const char relu_wrong[] =
    "extern \"C\" __global__ void relu(float *x, float *y, long long n) {\n"
    "    long long i = threadIdx.x; if (i < n) y[i] = (x[i] > 0.0f ? x[i] : 0.0f) + (i == 37 ? 1.0f : 0.0f);\n}\n";
static const char relu_modifies[] =
    "extern \"C\" __global__ void relu(float *x, float *y, long long n) {\n"
    "    long long i = threadIdx.x; if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
    "    __syncthreads(); if (i == 5) x[5] = -x[5];\n}\n";
static const char relu_overrun[] =
    "extern \"C\" __global__ void relu(float *x, float *y, long long n) {\n"
    "    long long i = threadIdx.x; if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
    "    if (i == 0) y[n] = 1.0f;\n}\n";

static const char const_plan[] =
    "{\"format\": \"kforge-program/1\", \"target\": \"cuda\", \"agent\": \"test:ipc\",\n"
    " \"sources\": [\"kernels.cu\"],\n"
    " \"kernels\": [{\"name\": \"twice\", \"params\": [{\"name\": \"w\", \"kind\": \"ptr\"}, {\"name\": \"y\", \"kind\": \"ptr\"}]}],\n"
    " \"buffers\": [{\"name\": \"x\", \"role\": \"input\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [4, 4]},\n"
    "             {\"name\": \"w\", \"role\": \"param\", \"param\": \"PARAM\", \"dtype\": \"f32\", \"shape\": [4, 4]},\n"
    "             {\"name\": \"y\", \"role\": \"output\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [4, 4]}],\n"
    " \"steps\": [{\"op\": \"launch\", \"kernel\": \"twice\", \"args\": [\"w\", \"y\"],\n"
    "            \"grid\": [1, 1, 1], \"block\": [16, 1, 1], \"shared_bytes\": 0}]}\n";
static const char const_cu[] =
    "extern \"C\" __global__ void twice(const float *w, float *y) { y[threadIdx.x] = w[threadIdx.x] * 2.0f; }\n";

static const char mm_plan[] =
    "{\"format\": \"kforge-program/1\", \"target\": \"cuda\", \"agent\": \"test:ipc\",\n"
    " \"sources\": [\"kernels.cu\"],\n"
    " \"kernels\": [{\"name\": \"mm\", \"params\": [{\"name\": \"x\", \"kind\": \"ptr\"}, {\"name\": \"w\", \"kind\": \"ptr\"},\n"
    "                                        {\"name\": \"y\", \"kind\": \"ptr\"}]}],\n"
    " \"buffers\": [{\"name\": \"x\", \"role\": \"input\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [32, 2048]},\n"
    "             {\"name\": \"w\", \"role\": \"input\", \"index\": 1, \"dtype\": \"f32\", \"shape\": [2048, 32]},\n"
    "             {\"name\": \"y\", \"role\": \"output\", \"index\": 0, \"dtype\": \"f32\", \"shape\": [32, 32]}],\n"
    " \"steps\": [{\"op\": \"launch\", \"kernel\": \"mm\", \"args\": [\"x\", \"w\", \"y\"],\n"
    "            \"grid\": [32, 1, 1], \"block\": [32, 1, 1], \"shared_bytes\": 0}]}\n";
static const char mm_cu[] =
    "extern \"C\" __global__ void mm(const float *x, const float *w, float *y) {\n"
    "    int i = blockIdx.x, j = threadIdx.x; double acc = 0.0;\n"
    "    for (int p = 0; p < 2048; p++) acc += (double)x[i * 2048 + p] * (double)w[p * 32 + j];\n"
    "    y[i * 32 + j] = (float)acc;\n}\n";

static kf_harness_opts hopts(void) {
    kf_harness_opts o;
    kf_harness_opts_default(&o, T);
    o.build.threads = 2;
    o.build.cache_dir = cachedir;
    o.run_timeout_s = 30;
    o.flush_bytes = 4LL << 20;
    o.workdir = workdir;
    o.timed_runs = 4;
    o.rounds = 2;
    o.warmup = 1;
    return o;
}

/* Verifies the program (plan, cu) on problem through the device path (dev = 1) or the host
 * path. The param placeholder PARAM in plan is replaced by the graph's first param name. */
static kf_status verify(const char *problem, const char *plan, const char *cu, int dev, int with_time,
                        kf_result *r) {
    memset(r, 0, sizeof *r);
    kf_err err;
    kf_err_clear(&err);
    kf_oracle_info info;
    kf_graph g;
    char *params = NULL;
    int rc = kf_oracle_load(gpu_oracle, problem, 3, &info, &err);
    if (!rc) rc = kf_oracle_graph(gpu_oracle, &g, &params, &err);
    KF_CHECK_MSG(rc == 0, "%s: %s", problem, err.msg);
    if (rc) return KF_ST_COUNT;
    char *pl = kf_strdup(plan);
    char *at = strstr(pl, "PARAM");
    if (at && g.n_params > 0) {
        char *q = kf_asprintf("%.*s%s%s", (int)(at - pl), pl, g.values[g.params[0]].name, at + 5);
        free(pl);
        pl = q;
    }
    kf_program p;
    static int k;
    char name[32];
    snprintf(name, sizeof name, "prog%d", k++);
    rc = make_program(name, pl, cu, &p);
    free(pl);
    if (rc) {
        kf_graph_free(&g);
        free(params);
        return KF_ST_COUNT;
    }
    setenv("KFORGE_DEVICE_DATA", dev ? "1" : "0", 1);
    kf_harness_opts o = hopts();
    double t0 = now_s();
    rc = kf_harness_verify(gpu_oracle, &g, params, &p, &o, r, &err);
    fprintf(stderr, "    %s path: %s -> %s in %.2f s%s: %s\n", dev ? "device" : "host", problem,
            kf_status_name(r->status), now_s() - t0, r->degenerate ? " (degenerate)" : "",
            r->message ? r->message : "");
    KF_CHECK_MSG(rc == 0, "harness error: %s", err.msg);
    KF_CHECK_EQ_INT(r->device_data, dev);
    if (!rc && with_time && r->status == KF_ST_VERIFIED) {
        rc = kf_harness_time(gpu_oracle, &g, params, &p, &o, 1, 0, r, &err);
        fprintf(stderr, "    timed: %.4f ms (eager %.4f ms)\n", r->ms, r->eager_ms);
        KF_CHECK_MSG(rc == 0, "timing: %s", err.msg);
        KF_CHECK(r->ms > 0 && r->eager_ms > 0);
        KF_CHECK_EQ_INT(r->device_data, dev);
    }
    unsetenv("KFORGE_DEVICE_DATA");
    kf_program_free(&p);
    kf_graph_free(&g);
    free(params);
    return rc ? KF_ST_COUNT : r->status;
}

/* The message with every value after "got ", "expected " and "error " replaced by one '#'
 * (the trial seeds differ between runs, so the values and their lengths do). */
static char *blank_values(const char *m) {
    kf_str out;
    kf_str_init(&out);
    const char *keys[] = {"got ", "expected ", "error "};
    const char *p = m ? m : "";
    while (*p) {
        size_t kl = 0;
        for (size_t k = 0; k < 3 && !kl; k++)
            if (!strncmp(p, keys[k], strlen(keys[k]))) kl = strlen(keys[k]);
        if (!kl) {
            kf_str_appendn(&out, p++, 1);
            continue;
        }
        kf_str_appendn(&out, p, kl);
        p += kl;
        while (*p && *p != ',' && *p != ')' && *p != ';') p++;
        kf_str_append(&out, "#");
    }
    return kf_str_take(&out);
}

#define NEED_GPU_ORACLE() do { if (!gpu_oracle) KF_SKIP("%s", g_no_gpu_oracle); } while (0)

static void test_verify_correct(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_good, 1, 1, &d), KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_good, 0, 1, &h), KF_ST_VERIFIED);
    KF_CHECK_STR(d.message, h.message);
    KF_CHECK_EQ_INT(d.degenerate, 0);
    kf_result_free(&d);
    kf_result_free(&h);
}

static void test_wrong_value_same_message(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_wrong, 1, 0, &d), KF_ST_MISMATCH);
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_wrong, 0, 0, &h), KF_ST_MISMATCH);
    char *bd = blank_values(d.message), *bh = blank_values(h.message);
    KF_CHECK_STR(bd, bh);
    KF_CHECK_MSG(strstr(bd, "element 37 [1, 5]") && strstr(bd, "1 of 128 elements differ") &&
                 strstr(bd, "against the float64 reference too"), "%s", bd);
    KF_CHECK_EQ_INT(d.trial, 0);
    KF_CHECK_EQ_INT(d.index, 37);
    KF_CHECK_NEAR(d.got - d.expected, 1.0, 1e-6);
    free(bd);
    free(bh);
    kf_result_free(&d);
    kf_result_free(&h);
}

static void test_modified_input_caught(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_modifies, 1, 0, &d), KF_ST_MISMATCH);
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_modifies, 0, 0, &h), KF_ST_MISMATCH);
    KF_CHECK_STR(d.message, h.message);
    KF_CHECK_MSG(d.message && strstr(d.message, "input 'x' was modified (first changed byte at offset 23"),
                 "%s", d.message);
    kf_result_free(&d);
    kf_result_free(&h);
}

static void test_overrun_caught(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_overrun, 1, 0, &d), KF_ST_CRASHED);
    KF_CHECK_EQ_INT(verify("tests/problems/relu.py", relu_plan, relu_overrun, 0, 0, &h), KF_ST_CRASHED);
    KF_CHECK_STR(d.message, h.message);
    KF_CHECK_MSG(d.message && strstr(d.message, "guard bytes after buffer 'y' overwritten at offset 512"), "%s",
                 d.message);
    kf_result_free(&d);
    kf_result_free(&h);
}

static void test_param_and_degenerate(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/constant_output.py", const_plan, const_cu, 1, 1, &d), KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(verify("tests/problems/constant_output.py", const_plan, const_cu, 0, 0, &h), KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(d.degenerate, 1);
    KF_CHECK_EQ_INT(h.degenerate, 1);
    kf_result_free(&d);
    kf_result_free(&h);
}

static void test_float64_second_look(void) {
    NEED_GPU_ORACLE();
    kf_result d, h;
    KF_CHECK_EQ_INT(verify("tests/problems/matmul_cancel.py", mm_plan, mm_cu, 1, 0, &d), KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(verify("tests/problems/matmul_cancel.py", mm_plan, mm_cu, 0, 0, &h), KF_ST_VERIFIED);
    KF_CHECK_MSG(d.message && strstr(d.message, "matched the float64 reference"), "%s", d.message);
    KF_CHECK_MSG(h.message && strstr(h.message, "matched the float64 reference"), "%s", h.message);
    kf_result_free(&d);
    kf_result_free(&h);
}

int main(void) {
    char pattern[7];
    memset(pattern, 'X', 6);
    pattern[6] = '\0';
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kf-test-ipc-%s", pattern);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(workdir, sizeof workdir, "%s/work", tmpdir);
    snprintf(cachedir, sizeof cachedir, "%s/cache", tmpdir);
    setenv("KFORGE_DEBUG", "1", 1); /* the data path's choice and reasons in the log */
    T = kf_target_find("cuda");
    kf_err err;
    kf_err_clear(&err);
    g_gpu = T && T->available(&err) == 0;
    if (!g_gpu) snprintf(g_no_gpu, sizeof g_no_gpu, "%s", T ? err.msg : "no cuda target");
    char cmd[600], why[1200];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", python());
    int torch_ok = system(cmd) == 0;
    if (torch_ok) cpu_oracle = start_oracle("cpu", why, sizeof why);
    if (!g_gpu) snprintf(g_no_gpu_oracle, sizeof g_no_gpu_oracle, "no GPU here: %s", g_no_gpu);
    else if (!torch_ok) snprintf(g_no_gpu_oracle, sizeof g_no_gpu_oracle, "%s cannot import torch", python());
    else if (!(gpu_oracle = start_oracle("cuda", why, sizeof why)))
        snprintf(g_no_gpu_oracle, sizeof g_no_gpu_oracle, "%s", why);
    KF_RUN(test_ipc_refused_on_cpu);
    KF_RUN(test_device_checks_match_host);
    KF_RUN(test_verify_correct);
    KF_RUN(test_wrong_value_same_message);
    KF_RUN(test_modified_input_caught);
    KF_RUN(test_overrun_caught);
    KF_RUN(test_param_and_degenerate);
    KF_RUN(test_float64_second_look);
    if (cpu_oracle) kf_oracle_stop(cpu_oracle);
    if (gpu_oracle) kf_oracle_stop(gpu_oracle);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return kf_test_report();
}
