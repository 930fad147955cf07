/* test_harness.c: the harness end to end. First the isolated worker and the arena with a fake
 * in-process target (crash, hang, runaway allocation, stray grandchild, guard overruns); then
 * every hand-written program under tests/bad_programs through the real PyTorch oracle and the
 * real CPU target, in one process, checking each status and that the harness keeps working. */
#include "kf_test.h"
#include "harness/kf_harness.h"
#include "harness/kf_session.h"
#include "harness/kf_worker.h"
#include "ir/kf_program.h"
#include "oracle/kf_oracle.h"
#include "core/kf_str.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------- a fake target: behaviour chosen by the program's agent name ---------- */

#define FAKE_N 1000

typedef struct fake_rt {
    const kf_program *p;
    const kf_slot *slots;
    int n;
} fake_rt;

static int fake_available(kf_err *err) { return 0; }
static int fake_build(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err) {
    memset(b, 0, sizeof *b);
    return 0;
}
static int fake_open(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **rt,
                     kf_err *err) {
    if (!strcmp(p->agent, "open_fails")) return kf_fail(err, KF_E_COMPILE, "undefined symbol: k0");
    fake_rt *r = calloc(1, sizeof *r);
    r->p = p;
    *rt = r;
    return 0;
}
static int fake_bind(void *rt, const kf_slot *slots, int n, kf_err *err) {
    fake_rt *r = rt;
    r->slots = slots;
    r->n = n;
    return 0;
}
static int fake_noop(void *rt, int buf, kf_err *err) { return 0; }
static int fake_run(void *rt, kf_err *err) {
    fake_rt *r = rt;
    const char *a = r->p->agent;
    const float *x = (const float *)r->slots[0].data;
    float *y = (float *)r->slots[1].data;
    if (!strcmp(a, "segv")) {
        volatile int *null = NULL;
        *null = 1;
    } else if (!strcmp(a, "hang")) {
        for (;;) pause();
    } else if (!strcmp(a, "alloc")) {
        for (;;) {
            char *m = malloc(64 << 20);
            if (!m) abort();
            memset(m, 1, 64 << 20);
        }
    } else if (!strcmp(a, "reserve")) { /* address space only: RSS stays small */
        for (;;) {
            char *m = malloc(64 << 20);
            if (!m) abort();
            m[0] = 1;
        }
    } else if (!strcmp(a, "reserve_segv")) {
        for (;;) {
            volatile char *m = malloc(64 << 20);
            m[0] = 1; /* NULL once the address space is exhausted */
        }
    } else if (!strcmp(a, "exit")) {
        fprintf(stderr, "candidate says goodbye\n");
        exit(7);
    } else if (!strcmp(a, "abort")) {
        abort();
    } else if (!strcmp(a, "error")) {
        return kf_fail(err, KF_E_INVALID, "illegal address in kernel k0");
    } else if (!strcmp(a, "grandchild")) {
        pid_t g = fork();
        if (g == 0) {
            for (;;) pause();
        }
        memcpy(y, &g, sizeof g); /* tell the test which pid to look for */
        for (;;) pause();
    } else if (!strcmp(a, "oob_after")) {
        y[FAKE_N + 3] = 1.0f;
    } else if (!strcmp(a, "oob_before")) {
        y[-2] = 1.0f;
    } else if (!strcmp(a, "mod_input")) {
        ((float *)r->slots[0].data)[5] = 42.0f;
    }
    for (int i = 0; i < FAKE_N; i++) y[i] = x[i] > 0 ? x[i] : 0;
    return 0;
}
static int fake_time(void *rt, int n, void (*flush)(void *), void *ctx, double *ms, kf_err *err) {
    for (int i = 0; i < n; i++) {
        flush(ctx);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (fake_run(rt, err)) return err->code;
        clock_gettime(CLOCK_MONOTONIC, &b);
        ms[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) * 1e-6;
    }
    return 0;
}
static void fake_close(void *rt) { free(rt); }

static const kf_target_ops fake_target = {
    .name = "fake", .available = fake_available, .build = fake_build, .open = fake_open,
    .bind = fake_bind, .upload = fake_noop, .download = fake_noop, .run = fake_run,
    .time = fake_time, .close = fake_close,
};

/* x (input 0) and y (output 0), f32[FAKE_N]. */
static void fake_program(kf_program *p, kf_pbuf *bufs, const char *agent) {
    memset(p, 0, sizeof *p);
    memset(bufs, 0, 2 * sizeof *bufs);
    const char *names[2] = {"x", "y"};
    for (int i = 0; i < 2; i++) {
        bufs[i].name = (char *)names[i];
        bufs[i].role = i ? KF_BUF_OUTPUT : KF_BUF_INPUT;
        bufs[i].index = 0;
        bufs[i].desc.dtype = KF_F32;
        bufs[i].desc.ndim = 1;
        bufs[i].desc.shape[0] = FAKE_N;
        bufs[i].desc.strides[0] = 1;
        bufs[i].nbytes = FAKE_N * sizeof(float);
    }
    p->target = (char *)"fake";
    p->agent = (char *)agent;
    p->bufs = bufs;
    p->n_bufs = 2;
}

/* Fills x with a signed ramp directly (no safetensors), poisons y. */
static void fake_fill(kf_arena *a) {
    kf_slot *x = &a->slots[0], *y = &a->slots[1];
    memset(x->base, KF_GUARD_BYTE, KF_GUARD_BYTES);
    memset(y->base, KF_GUARD_BYTE, KF_GUARD_BYTES);
    memset(x->data + x->nbytes, KF_GUARD_BYTE, KF_GUARD_BYTES);
    memset(y->data + y->nbytes, KF_GUARD_BYTE, KF_GUARD_BYTES);
    float *xs = (float *)x->data;
    for (int i = 0; i < FAKE_N; i++) xs[i] = (float)(i - FAKE_N / 2);
    memset(y->data, KF_POISON_BYTE, y->nbytes);
}

typedef struct fake_case {
    kf_program p;
    kf_pbuf bufs[2];
    kf_arena arena;
    kf_worker w;
    kf_outcome oc;
    float *xcopy;
} fake_case;

static kf_worker_limits fake_limits(void) {
    kf_worker_limits lim = {2.0, 256LL << 20, 1 << 20, 1};
    return lim;
}

/* Starts a worker for a fake program; returns 0 and leaves it ready (or failed in oc). */
static int fake_start(fake_case *c, const char *agent) {
    memset(c, 0, sizeof *c);
    fake_program(&c->p, c->bufs, agent);
    kf_err err;
    kf_err_clear(&err);
    if (kf_arena_create(&c->arena, &c->p, &err)) return -1;
    fake_fill(&c->arena);
    c->xcopy = malloc(FAKE_N * sizeof(float));
    memcpy(c->xcopy, c->arena.slots[0].data, FAKE_N * sizeof(float));
    c->arena.written[0] = c->xcopy;
    kf_build b = {0};
    kf_build_opts bo = {0};
    kf_worker_limits lim = fake_limits();
    return kf_worker_start(&c->w, &fake_target, &c->p, &b, &bo, &c->arena, &lim, &c->oc, &err);
}

static void fake_end(fake_case *c) {
    kf_worker_stop(&c->w);
    kf_arena_destroy(&c->arena);
    kf_outcome_clear(&c->oc);
    free(c->xcopy);
}

static kf_status fake_run_status(const char *agent, fake_case *c) {
    kf_err err;
    kf_err_clear(&err);
    if (fake_start(c, agent) != 0) return KF_ST_ERROR;
    if (c->oc.status == KF_ST_VERIFIED && kf_worker_run(&c->w, &c->oc, &err) != 0)
        return KF_ST_ERROR;
    if (c->oc.status != KF_ST_VERIFIED)
        fprintf(stderr, "    %s -> %s: %s\n", agent, kf_status_name(c->oc.status), c->oc.message);
    return c->oc.status;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_status_names_and_defaults(void) {
    KF_CHECK_STR(kf_status_name(KF_ST_VERIFIED), "verified");
    KF_CHECK_STR(kf_status_name(KF_ST_COMPILE_ERROR), "compile_error");
    KF_CHECK_STR(kf_status_name(KF_ST_OOM), "oom");
    KF_CHECK_STR(kf_status_name(KF_ST_INVALID), "invalid");
    for (int s = 0; s < KF_ST_COUNT; s++) KF_CHECK(strcmp(kf_status_name((kf_status)s), "unknown"));
    kf_harness_opts o;
    kf_harness_opts_default(&o, &fake_target);
    KF_CHECK(o.target == &fake_target);
    KF_CHECK_EQ_INT(o.trials, 5);
    KF_CHECK_EQ_INT(o.warmup, 3);
    KF_CHECK_EQ_INT(o.timed_runs, 20);
    KF_CHECK_EQ_INT(o.rounds, 4);
    KF_CHECK(o.run_timeout_s == 30);
    KF_CHECK(o.build.threads >= 1);
    long long llc = kf_harness_llc_bytes();
    KF_CHECK(o.flush_bytes == (llc > 0 ? 2 * llc : 64LL << 20));
    KF_CHECK(o.flush_bytes >= (1 << 20));
    unsigned long long h1 = kf_harness_hidden_base(o.seed), h2 = kf_harness_hidden_base(o.seed);
    KF_CHECK(h1 != h2); /* mixed with fresh randomness every time */
    KF_CHECK(kf_harness_trial_seed(h1, 0) != kf_harness_trial_seed(h1, 1));
    KF_CHECK(kf_harness_trial_seed(h1, 3) <= 0xFFFFFFFFULL);
}

static void test_compare(void) {
    float ref[4] = {1.0f, NAN, INFINITY, -2.0f};
    float got[4] = {1.00005f, NAN, INFINITY, -2.0f};
    kf_mismatch m;
    KF_CHECK_EQ_INT(kf_compare(got, ref, KF_F32, 4, 1e-4, 1e-4, &m), 0);
    got[0] = 1.01f;
    got[1] = 0.0f;
    KF_CHECK_EQ_INT(kf_compare(got, ref, KF_F32, 4, 1e-4, 1e-4, &m), 1);
    KF_CHECK_EQ_INT(m.index, 0);
    KF_CHECK_EQ_INT(m.count, 2);
    KF_CHECK_NEAR(m.got, 1.01, 1e-6);
    got[0] = 1.0f;
    got[1] = NAN;
    got[2] = -INFINITY;
    KF_CHECK_EQ_INT(kf_compare(got, ref, KF_F32, 4, 1e-4, 1e-4, &m), 1);
    KF_CHECK_EQ_INT(m.index, 2);
    got[2] = INFINITY;
    got[3] = NAN;
    KF_CHECK_EQ_INT(kf_compare(got, ref, KF_F32, 4, 1e-4, 1e-4, &m), 1);
    KF_CHECK_EQ_INT(m.index, 3);
    int64_t ia[3] = {1, 2, 3}, ib[3] = {1, 2, 4};
    KF_CHECK_EQ_INT(kf_compare(ia, ib, KF_I64, 3, 1, 1, &m), 1); /* integers are exact */
    KF_CHECK_EQ_INT(m.index, 2);
    uint16_t h[2] = {0x3C00, 0xC000}; /* f16 1.0, -2.0 */
    KF_CHECK_NEAR(kf_elem_get(h, KF_F16, 0), 1.0, 0);
    KF_CHECK_NEAR(kf_elem_get(h, KF_F16, 1), -2.0, 0);
    kf_tdesc d = {KF_F32, 3, {2, 3, 4}, {12, 4, 1}};
    char buf[64];
    KF_CHECK_STR(kf_format_multi_index(&d, 17, buf, sizeof buf), "[1, 1, 1]");
    KF_CHECK_NEAR(kf_default_tol(KF_BF16), 1e-2, 0);
}

static void test_arena_layout_and_checks(void) {
    kf_program p;
    kf_pbuf bufs[2];
    fake_program(&p, bufs, "ok");
    kf_arena a;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_arena_create(&a, &p, &err), 0);
    for (int i = 0; i < 2; i++) {
        KF_CHECK(((uintptr_t)a.slots[i].data & 63) == 0);
        KF_CHECK(a.slots[i].data == a.slots[i].base + KF_GUARD_BYTES);
        KF_CHECK(a.slots[i].base[0] == KF_GUARD_BYTE);
        KF_CHECK(a.slots[i].data[a.slots[i].nbytes + KF_GUARD_BYTES - 1] == KF_GUARD_BYTE);
    }
    KF_CHECK(a.slots[1].base >= a.slots[0].data + a.slots[0].nbytes + KF_GUARD_BYTES);
    /* fill from a safetensors-like set: in.0 only */
    static float xin[FAKE_N];
    for (int i = 0; i < FAKE_N; i++) xin[i] = (float)i;
    kf_st_tensor t = {(char *)"in.0", bufs[0].desc, xin, sizeof xin};
    kf_safetensors st = {NULL, 0, &t, 1};
    KF_CHECK_EQ_INT(kf_arena_fill(&a, &st, NULL, &err), 0);
    KF_CHECK(!memcmp(a.slots[0].data, xin, sizeof xin));
    KF_CHECK(a.slots[1].data[0] == KF_POISON_BYTE && a.slots[1].data[a.slots[1].nbytes - 1] == KF_POISON_BYTE);
    int what = -1;
    KF_CHECK_EQ_INT(kf_arena_check(&a, &what, &err), 0);
    KF_CHECK_EQ_INT(what, 0);
    a.slots[1].data[a.slots[1].nbytes + 5] = 0;
    KF_CHECK(kf_arena_check(&a, &what, &err) != 0);
    KF_CHECK_EQ_INT(what, 1);
    KF_CHECK_MSG(strstr(err.msg, "guard bytes after buffer 'y'") && strstr(err.msg, "offset 4005"),
                 "%s", err.msg);
    KF_CHECK_EQ_INT(kf_arena_fill(&a, &st, NULL, &err), 0); /* guards rewritten */
    a.slots[0].data[-1] = 0;
    KF_CHECK(kf_arena_check(&a, &what, &err) != 0);
    KF_CHECK_MSG(strstr(err.msg, "guard bytes before buffer 'x'") && strstr(err.msg, "offset -1"),
                 "%s", err.msg);
    KF_CHECK_EQ_INT(kf_arena_fill(&a, &st, NULL, &err), 0);
    a.slots[0].data[100] ^= 1;
    KF_CHECK(kf_arena_check(&a, &what, &err) != 0);
    KF_CHECK_EQ_INT(what, 2);
    KF_CHECK_MSG(strstr(err.msg, "input 'x' was modified") && strstr(err.msg, "offset 100"), "%s",
                 err.msg);
    /* wrong size and missing tensors are caught by name */
    kf_st_tensor small = {(char *)"in.0", bufs[0].desc, xin, 8};
    kf_safetensors st2 = {NULL, 0, &small, 1};
    KF_CHECK(kf_arena_fill(&a, &st2, NULL, &err) != 0);
    KF_CHECK_MSG(strstr(err.msg, "'x'"), "%s", err.msg);
    kf_safetensors none = {NULL, 0, NULL, 0};
    KF_CHECK(kf_arena_fill(&a, &none, NULL, &err) != 0);
    KF_CHECK_MSG(strstr(err.msg, "in.0"), "%s", err.msg);
    kf_arena_destroy(&a);
}

static void test_worker_ok_and_time(void) {
    fake_case c;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(fake_run_status("ok", &c), KF_ST_VERIFIED);
    const float *y = (const float *)c.arena.slots[1].data;
    KF_CHECK(y[0] == 0.0f && y[FAKE_N - 1] == (float)(FAKE_N - 1 - FAKE_N / 2));
    int what;
    KF_CHECK_EQ_INT(kf_arena_check(&c.arena, &what, &err), 0);
    double ms[7] = {0};
    KF_CHECK_EQ_INT(kf_worker_time(&c.w, 7, ms, &c.oc, &err), 0);
    KF_CHECK_EQ_INT(c.oc.status, KF_ST_VERIFIED);
    for (int i = 0; i < 7; i++) KF_CHECK(ms[i] > 0 && ms[i] < 1000);
    KF_CHECK_EQ_INT(kf_worker_run(&c.w, &c.oc, &err), 0); /* still serving */
    KF_CHECK_EQ_INT(c.oc.status, KF_ST_VERIFIED);
    pid_t pid = c.w.pid;
    fake_end(&c);
    KF_CHECK(kill(pid, 0) != 0); /* reaped */
}

static void test_worker_failures(void) {
    fake_case c;
    double t0 = now_s();
    KF_CHECK_EQ_INT(fake_run_status("segv", &c), KF_ST_CRASHED);
    KF_CHECK_EQ_INT(c.oc.signal, SIGSEGV);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "SIGSEGV"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("abort", &c), KF_ST_CRASHED);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "SIGABRT"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("exit", &c), KF_ST_CRASHED);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "status 7") &&
                 strstr(c.oc.message, "candidate says goodbye"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("error", &c), KF_ST_CRASHED);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "illegal address"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("open_fails", &c), KF_ST_COMPILE_ERROR);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "undefined symbol"), "%s", c.oc.message);
    fake_end(&c);

    double h0 = now_s();
    KF_CHECK_EQ_INT(fake_run_status("hang", &c), KF_ST_TIMEOUT);
    double took = now_s() - h0;
    KF_CHECK_MSG(took >= 1.9 && took < 4.0, "timeout took %.2f s", took);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "timeout"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("alloc", &c), KF_ST_OOM);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "out of memory"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("reserve", &c), KF_ST_OOM);
    KF_CHECK_MSG(c.oc.message && strstr(c.oc.message, "SIGABRT"), "%s", c.oc.message);
    fake_end(&c);

    KF_CHECK_EQ_INT(fake_run_status("reserve_segv", &c), KF_ST_OOM);
    KF_CHECK_EQ_INT(c.oc.signal, SIGSEGV);
    fake_end(&c);

    KF_CHECK(now_s() - t0 < 20);
}

static int pid_alive(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_worker_kills_grandchildren(void) {
    fake_case c;
    KF_CHECK_EQ_INT(fake_run_status("grandchild", &c), KF_ST_TIMEOUT);
    pid_t g;
    memcpy(&g, c.arena.slots[1].data, sizeof g);
    KF_CHECK(g > 0);
    for (int i = 0; i < 100 && g > 0 && pid_alive(g); i++) usleep(10000);
    KF_CHECK_MSG(g > 0 && !pid_alive(g), "grandchild %d outlived the worker", (int)g);
    fake_end(&c);
}

static void test_worker_guard_and_input_checks(void) {
    fake_case c;
    kf_err err;
    kf_err_clear(&err);
    int what;
    const char *agents[3] = {"oob_after", "oob_before", "mod_input"};
    const char *want[3] = {"guard bytes after buffer 'y'", "guard bytes before buffer 'y'",
                           "input 'x' was modified"};
    for (int i = 0; i < 3; i++) {
        KF_CHECK_EQ_INT(fake_run_status(agents[i], &c), KF_ST_VERIFIED);
        KF_CHECK(kf_arena_check(&c.arena, &what, &err) != 0);
        KF_CHECK_EQ_INT(what, i == 2 ? 2 : 1);
        KF_CHECK_MSG(strstr(err.msg, want[i]), "%s", err.msg);
        fake_end(&c);
    }
}

/* ---------- the real thing: bad programs through the oracle and the CPU target ---------- */

/* The shared oracle with tests/problems/relu.py loaded (NULL when torch is missing). */
static kf_oracle *oracle;
static kf_graph relu_graph;
static char *relu_params;
static char tmpdir[256];
static char workdir[320], cachedir[320];
static int test_threads = 2;
static int fds_at_start;

static kf_harness_opts real_opts(void) {
    kf_harness_opts o;
    kf_harness_opts_default(&o, kf_target_cpu());
    o.build.threads = test_threads;
    o.build.cache_dir = cachedir;
    o.run_timeout_s = 3;
    o.mem_limit = 512LL << 20;
    o.flush_bytes = 4LL << 20;
    o.workdir = workdir;
    return o;
}

static int load_bad(const char *name, kf_program *p) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/bad_programs/%s", name);
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_load(dir, p, &err);
    KF_CHECK_MSG(rc == 0, "loading %s: %s", dir, err.msg);
    return rc;
}

/* Verifies tests/bad_programs/<name> on relu.py with options o; returns its status
 * (KF_ST_COUNT if not run). */
static kf_status verify_bad_opts(const char *name, kf_harness_opts o, kf_result *r) {
    memset(r, 0, sizeof *r);
    kf_program p;
    if (load_bad(name, &p)) return KF_ST_COUNT;
    kf_err err;
    kf_err_clear(&err);
    double t0 = now_s();
    int rc = kf_harness_verify(oracle, &relu_graph, relu_params, &p, &o, r, &err);
    fprintf(stderr, "    %s -> %s in %.2f s: %s\n", name, kf_status_name(r->status), now_s() - t0,
            r->message ? r->message : "(no message)");
    KF_CHECK_MSG(rc == 0, "%s: harness error: %s", name, err.msg);
    kf_program_free(&p);
    return r->status;
}

static kf_status verify_bad(const char *name, kf_result *r) {
    return verify_bad_opts(name, real_opts(), r);
}

static int has(const kf_result *r, const char *part) {
    return r->message && strstr(r->message, part) != NULL;
}

static void test_real_good(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("good", &r), KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(r.degenerate, 0);
    KF_CHECK(r.build_s > 0);
    kf_result_free(&r);
}

static void test_real_good_openmp(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("good_openmp", &r), KF_ST_VERIFIED);
    kf_result_free(&r);
    /* With no workdir the harness makes (and removes) its own private folder. */
    kf_program p;
    if (load_bad("good", &p)) return;
    kf_harness_opts o = real_opts();
    o.workdir = NULL;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_harness_verify(oracle, &relu_graph, relu_params, &p, &o, &r, &err), 0);
    KF_CHECK_MSG(r.status == KF_ST_VERIFIED, "%s", r.message);
    kf_result_free(&r);
    kf_program_free(&p);
}

static void test_real_writes_nothing(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("writes_nothing", &r), KF_ST_MISMATCH);
    KF_CHECK_EQ_INT(r.trial, 0);
    KF_CHECK_EQ_INT(r.output, 0);
    KF_CHECK_EQ_INT(r.index, 0);
    KF_CHECK(isnan(r.got) && !isnan(r.expected));
    KF_CHECK_MSG(has(&r, "never written") && has(&r, "128 of 128 elements differ"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_out_of_bounds(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("out_of_bounds", &r), KF_ST_CRASHED);
    KF_CHECK_MSG(has(&r, "out-of-bounds write: guard bytes after buffer 'y'") &&
                 has(&r, "offset 512"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_modifies_input(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("modifies_input", &r), KF_ST_MISMATCH);
    KF_CHECK_MSG(has(&r, "input 'x' was modified"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_returns_nan(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("returns_nan", &r), KF_ST_MISMATCH);
    KF_CHECK_EQ_INT(r.index, 37);
    KF_CHECK(isnan(r.got));
    KF_CHECK_MSG(has(&r, "[1, 5]") && has(&r, "1 of 128 elements differ"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_constant_output(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("constant_output", &r), KF_ST_MISMATCH);
    KF_CHECK_EQ_INT(r.trial, 1); /* right on the first trial, caught on the second */
    KF_CHECK_MSG(has(&r, "trial 2 of 5"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_identity_caught_by_redraw(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    /* relu.py draws torch.rand (non-negative): identity passes those trials, not the redraws. */
    KF_CHECK_EQ_INT(verify_bad("identity", &r), KF_ST_MISMATCH);
    KF_CHECK(r.trial >= 2);
    KF_CHECK_MSG(has(&r, "'normal'"), "%s", r.message);
    KF_CHECK(r.got < 0 && r.expected == 0);
    kf_result_free(&r);
}

static void test_real_segfault(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("segfault", &r), KF_ST_CRASHED);
    KF_CHECK_EQ_INT(r.signal, SIGSEGV);
    KF_CHECK_MSG(has(&r, "SIGSEGV"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_never_returns(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    double t0 = now_s();
    KF_CHECK_EQ_INT(verify_bad("never_returns", &r), KF_ST_TIMEOUT);
    KF_CHECK(now_s() - t0 < 15);
    KF_CHECK_MSG(has(&r, "within 3 s"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_allocates_without_bound(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    /* Page faults are slow on a loaded VM: a smaller limit and more time, so the memory limit
     * and not the clock is what stops it. */
    kf_harness_opts o = real_opts();
    o.mem_limit = 256LL << 20;
    o.run_timeout_s = 20;
    double t0 = now_s();
    KF_CHECK_EQ_INT(verify_bad_opts("allocates_without_bound", o, &r), KF_ST_OOM);
    KF_CHECK(now_s() - t0 < 20);
    KF_CHECK_MSG(has(&r, "out of memory"), "%s", r.message);
    kf_result_free(&r);
}

static void test_real_does_not_compile(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("does_not_compile", &r), KF_ST_COMPILE_ERROR);
    KF_CHECK_MSG(has(&r, "kernels.c") && has(&r, "error") && has(&r, "undeclared_thing"), "%s",
                 r.message);
    kf_result_free(&r);
}

static void test_real_missing_buffer(void) {
    if (!oracle) KF_SKIP("no torch");
    /* The loader refuses the plan and names the buffer. */
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK(kf_program_load("tests/bad_programs/missing_buffer", &p, &err) != 0);
    KF_CHECK_MSG(strstr(err.msg, "'z'"), "%s", err.msg);
    /* A program built in memory with a dangling buffer reference: invalid before compiling. */
    if (load_bad("good", &p)) return;
    p.steps[0].args[1].buf = 7;
    kf_harness_opts o = real_opts();
    kf_result r;
    KF_CHECK_EQ_INT(kf_harness_verify(oracle, &relu_graph, relu_params, &p, &o, &r, &err), 0);
    KF_CHECK_EQ_INT(r.status, KF_ST_INVALID);
    KF_CHECK(r.build_s == 0); /* never reached the compiler */
    fprintf(stderr, "    dangling buffer -> %s: %s\n", kf_status_name(r.status), r.message);
    kf_result_free(&r);
    /* The wrong shape for the problem's output: invalid too. */
    p.steps[0].args[1].buf = 1;
    p.bufs[1].desc.shape[1] = 31;
    p.bufs[1].nbytes = 4 * 31 * sizeof(float);
    KF_CHECK_EQ_INT(kf_harness_verify(oracle, &relu_graph, relu_params, &p, &o, &r, &err), 0);
    KF_CHECK_EQ_INT(r.status, KF_ST_INVALID);
    fprintf(stderr, "    wrong shape -> %s: %s\n", kf_status_name(r.status), r.message);
    kf_result_free(&r);
    kf_program_free(&p);
}

static void test_real_good_again_and_time(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_result r;
    KF_CHECK_EQ_INT(verify_bad("good", &r), KF_ST_VERIFIED);
    kf_program p;
    if (load_bad("good", &p)) return;
    kf_harness_opts o = real_opts();
    kf_err err;
    kf_err_clear(&err);
    double t0 = now_s();
    int rc = kf_harness_time(oracle, &relu_graph, relu_params, &p, &o, 1, 1, &r, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    fprintf(stderr, "    time in %.2f s: candidate %.4f ms [%.4f, %.4f], eager %.4f ms, compile %.4f ms\n",
            now_s() - t0, r.ms, r.min_ms, r.max_ms, r.eager_ms, r.compile_ms);
    KF_CHECK_EQ_INT(r.status, KF_ST_VERIFIED);
    KF_CHECK(r.ms > 0 && r.eager_ms > 0);
    KF_CHECK(r.min_ms <= r.ms && r.ms <= r.max_ms);
    KF_CHECK(r.compile_ms != 0); /* measured, or -1 where this torch has no torch.compile */
    kf_result_free(&r);
    kf_program_free(&p);
}

/* A module whose output ignores its input (tests/problems/constant_output.py: w * 2 + 0 * sum(x))
 * is marked degenerate; the program reads the param w, so params travel too, and a program that
 * writes to its param is caught. */
static void test_real_degenerate_and_params(void) {
    if (!oracle) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_oracle_load(oracle, "tests/problems/constant_output.py", 7, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    kf_graph g;
    char *params = NULL;
    if (rc || kf_oracle_graph(oracle, &g, &params, &err) != 0) {
        KF_CHECK_MSG(0, "%s", err.msg);
        return;
    }
    KF_CHECK_EQ_INT(g.n_params, 1);
    if (g.n_params != 1) return;
    const kf_value *wv = &g.values[g.params[0]];
    const kf_value *xv = &g.values[g.inputs[0]];
    const kf_value *yv = &g.values[g.outputs[0]];
    for (int variant = 0; variant < 2; variant++) {
        kf_program p;
        memset(&p, 0, sizeof p);
        p.target = kf_strdup("cpu");
        p.agent = kf_strdup("test");
        kf_program_add_buf(&p, "x", KF_BUF_INPUT, 0, NULL, &xv->desc);
        kf_program_add_buf(&p, "w", KF_BUF_PARAM, -1, wv->name, &wv->desc);
        kf_program_add_buf(&p, "y", KF_BUF_OUTPUT, 0, NULL, &yv->desc);
        kf_kparam kp[3] = {{(char *)"w", KF_KP_PTR}, {(char *)"y", KF_KP_PTR}, {(char *)"n", KF_KP_I64}};
        kf_program_add_kernel(&p, "twice", kp, 3);
        kf_program_add_source(&p, "kernels.c",
                              variant == 0
                                  ? "#include <stdint.h>\n"
                                    "void twice(const float *w, float *y, int64_t n) {\n"
                                    "    for (int64_t i = 0; i < n; i++) y[i] = w[i] * 2.0f;\n}\n"
                                  : "#include <stdint.h>\n"
                                    "void twice(float *w, float *y, int64_t n) {\n"
                                    "    for (int64_t i = 0; i < n; i++) { y[i] = w[i] * 2.0f; w[i] = 0; }\n}\n");
        kf_step *s = kf_program_add_step(&p, KF_STEP_LAUNCH);
        kf_karg args[3] = {{KF_KP_PTR, 1, 0, 0}, {KF_KP_PTR, 2, 0, 0},
                           {KF_KP_I64, -1, kf_tdesc_numel(&yv->desc), 0}};
        kf_step_set_args(s, args, 3);
        kf_harness_opts o = real_opts();
        kf_result r;
        rc = kf_harness_verify(oracle, &g, params, &p, &o, &r, &err);
        KF_CHECK_MSG(rc == 0, "%s", err.msg);
        fprintf(stderr, "    constant_output variant %d -> %s (degenerate %d): %s\n", variant,
                kf_status_name(r.status), r.degenerate, r.message);
        if (variant == 0) {
            KF_CHECK_EQ_INT(r.status, KF_ST_VERIFIED);
            KF_CHECK_EQ_INT(r.degenerate, 1);
        } else {
            KF_CHECK_EQ_INT(r.status, KF_ST_MISMATCH);
            KF_CHECK_MSG(has(&r, "param 'w' was modified"), "%s", r.message);
        }
        kf_result_free(&r);
        kf_program_free(&p);
    }
    kf_graph_free(&g);
    free(params);
    /* Back to relu.py for whatever runs next. */
    kf_oracle_load(oracle, "tests/problems/relu.py", 1, &info, &err);
}

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Runs after every oracle case: the harness left no descriptors, children or files behind. */
static void test_real_nothing_left_behind(void) {
    if (!oracle) KF_SKIP("no torch");
    KF_CHECK_EQ_INT(count_fds(), fds_at_start);
    int st;
    pid_t z = waitpid(-1, &st, WNOHANG); /* only the oracle may be our child, and it is alive */
    KF_CHECK_EQ_INT(z, 0);
    DIR *d = opendir(workdir);
    int cases = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "hcase-", 6)) cases++;
    if (d) closedir(d);
    KF_CHECK_EQ_INT(cases, 0); /* reference cases are removed as soon as they are mapped */
}

static int torch_importable(void) {
    return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static void real_setup(void) {
    char pattern[7]; /* mkdtemp's six placeholder characters */
    memset(pattern, 'X', 6);
    pattern[6] = '\0';
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kf-test-harness-%s", pattern);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return;
    }
    snprintf(workdir, sizeof workdir, "%s/work", tmpdir);
    snprintf(cachedir, sizeof cachedir, "%s/cache", tmpdir);
    if (!torch_importable()) {
        fprintf(stderr, "SKIP oracle cases: /usr/bin/python3 cannot import torch\n");
        return;
    }
    kf_oracle_opts opts = {.python = "/usr/bin/python3", .workdir = workdir,
                           .threads = test_threads, .device = "cpu", .timeout_s = 300};
    if (access("python/kforge_oracle.py", R_OK) == 0) opts.script = "python/kforge_oracle.py";
    kf_err err;
    kf_err_clear(&err);
    kf_oracle_info info;
    if (kf_oracle_start(&opts, &oracle, &err) != 0) {
        fprintf(stderr, "SKIP oracle cases: cannot start the oracle: %s\n", err.msg);
        oracle = NULL;
        return;
    }
    if (kf_oracle_load(oracle, "tests/problems/relu.py", 1, &info, &err) != 0 ||
        kf_oracle_graph(oracle, &relu_graph, &relu_params, &err) != 0) {
        fprintf(stderr, "oracle cannot load tests/problems/relu.py: %s\n", err.msg);
        kf_oracle_stop(oracle);
        oracle = NULL;
        kf_test_failed_cases++; /* torch is there, so this is a failure, not a skip */
        return;
    }
    fprintf(stderr, "oracle: torch %s, %d threads\n", info.torch_version, info.threads);
    fds_at_start = count_fds();
}

static void real_teardown(void) {
    if (oracle) {
        kf_oracle_stop(oracle);
        kf_graph_free(&relu_graph);
        free(relu_params);
    }
    if (tmpdir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int main(void) {
    KF_RUN(test_status_names_and_defaults);
    KF_RUN(test_compare);
    KF_RUN(test_arena_layout_and_checks);
    KF_RUN(test_worker_ok_and_time);
    KF_RUN(test_worker_failures);
    KF_RUN(test_worker_kills_grandchildren);
    KF_RUN(test_worker_guard_and_input_checks);
    real_setup();
    KF_RUN(test_real_good);
    KF_RUN(test_real_good_openmp);
    KF_RUN(test_real_writes_nothing);
    KF_RUN(test_real_out_of_bounds);
    KF_RUN(test_real_modifies_input);
    KF_RUN(test_real_returns_nan);
    KF_RUN(test_real_constant_output);
    KF_RUN(test_real_identity_caught_by_redraw);
    KF_RUN(test_real_segfault);
    KF_RUN(test_real_never_returns);
    KF_RUN(test_real_allocates_without_bound);
    KF_RUN(test_real_does_not_compile);
    KF_RUN(test_real_missing_buffer);
    KF_RUN(test_real_degenerate_and_params);
    KF_RUN(test_real_good_again_and_time);
    KF_RUN(test_real_nothing_left_behind);
    real_teardown();
    return kf_test_report();
}
