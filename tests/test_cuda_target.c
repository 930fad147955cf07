/* test_cuda_target.c: the cuda target. Without a GPU: the target says clearly why it is
 * unavailable, the CUDA renderer's text (grid-stride loops, promotion, grid barriers, launch
 * geometry, cooperative rows of kir_sched_gpu with their warp and block reductions) and, where
 * NVRTC is installed, compiling rendered and lowered programs for sm_90.
 * With a GPU (everything below runs in the harness's forked worker, as kforge runs it):
 * hand-written KIR kernels rendered and run against a CPU reference, gemm steps (cuBLAS, and
 * cuBLASLt's measured choice: transposes, batches, alpha/beta, a choice made once), copy and
 * fill steps, timing, the naive lowering of small graphs, softmax and batch-norm statistics
 * with a thread, a warp and a block per row against plain C, and the bad-program suite: an
 * out-of-bounds write caught by the guard bytes after download, a write through a wild
 * pointer contained in the worker as crashed, a kernel that never ends stopped by the time
 * limit, compile errors and a kernel missing from the module. GPU cases SKIP with the reason
 * where no GPU is present. */
#include "kf_test.h"
#include "agents/lower.h"
#include "agents/search.h"
#include "harness/kf_arena.h"
#include "harness/kf_worker.h"
#include "ir/kf_graph.h"
#include "oracle/kf_oracle.h"
#include "kir/kir.h"
#include "kir/kir_sched.h"
#include "targets/kf_target.h"
#include "targets/cuda_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char g_cache[64];
static const kf_target_ops *T;
static int g_gpu;          /* a GPU is usable here */
static int g_nvrtc;        /* programs can be compiled (GPU, or NVRTC with KFORGE_CUDA_ARCH) */
static char g_no_gpu[1024];
static char g_no_nvrtc[1024];

/* ---- programs as plain structs ---- */

typedef struct tprog {
    kf_program p;
    kf_source src[2];
    kf_pkernel kern[4];
    kf_kparam params[4][16];
    kf_pbuf bufs[16];
    kf_step steps[8];
    kf_karg args[8][16];
    char *text;
} tprog;

static void tp_init(tprog *t) {
    memset(t, 0, sizeof *t);
    t->p.target = "cuda";
    t->p.agent = "test";
    t->p.sources = t->src;
    t->p.kernels = t->kern;
    t->p.bufs = t->bufs;
    t->p.steps = t->steps;
}

static void tp_source(tprog *t, const char *text) {
    free(t->text);
    t->text = kf_strdup(text);
    t->src[0] = (kf_source){(char *)"kernels.cu", t->text};
    t->p.n_sources = 1;
}

static int tp_kernel(tprog *t, const char *name, const kf_kparam_kind *kinds, int n) {
    kf_pkernel *pk = &t->kern[t->p.n_kernels];
    pk->name = (char *)name;
    pk->params = t->params[t->p.n_kernels];
    pk->n_params = n;
    for (int i = 0; i < n; i++) pk->params[i] = (kf_kparam){(char *)"p", kinds[i]};
    return t->p.n_kernels++;
}

/* Renders KIR kernels as the program's source; launch geometry into geo. */
static int tp_kir(tprog *t, kir_kernel **ks, int n, kir_launch *geo) {
    kf_str s;
    kf_str_init(&s);
    kf_err err = {0};
    int rc = kir_render_cuda(ks, n, &s, geo, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    tp_source(t, kf_str_cstr(&s));
    kf_str_free(&s);
    for (int i = 0; i < n && !rc; i++) {
        kf_kparam_kind kinds[16];
        for (int b = 0; b < ks[i]->n_bufs; b++) kinds[b] = KF_KP_PTR;
        tp_kernel(t, ks[i]->name, kinds, ks[i]->n_bufs);
    }
    return rc;
}

static int tp_buf(tprog *t, const char *name, kf_buf_role role, kf_dtype dt, int64_t numel) {
    kf_pbuf *b = &t->bufs[t->p.n_bufs];
    b->name = (char *)name;
    b->role = role;
    b->index = role == KF_BUF_INPUT || role == KF_BUF_OUTPUT ? 0 : -1;
    b->desc.dtype = dt;
    b->desc.ndim = 1;
    b->desc.shape[0] = numel;
    kf_tdesc_set_contiguous(&b->desc);
    b->nbytes = (size_t)numel * kf_dtype_size(dt);
    return t->p.n_bufs++;
}

static kf_step *tp_step(tprog *t, kf_step_kind kind) {
    kf_step *s = &t->steps[t->p.n_steps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    for (int i = 0; i < 3; i++) s->grid[i] = s->block[i] = 1;
    s->alpha = 1;
    s->batch = 1;
    t->p.n_steps++;
    return s;
}

static kf_step *tp_launch(tprog *t, int kernel, const kf_karg *args, int n, const kir_launch *geo) {
    int si = t->p.n_steps;
    kf_step *s = tp_step(t, KF_STEP_LAUNCH);
    s->kernel = kernel;
    s->args = t->args[si];
    s->n_args = n;
    for (int i = 0; i < n; i++) s->args[i] = args[i];
    if (geo) {
        memcpy(s->grid, geo->grid, sizeof s->grid);
        memcpy(s->block, geo->block, sizeof s->block);
    }
    return s;
}

#define PTR(b) ((kf_karg){.kind = KF_KP_PTR, .buf = (b)})
#define I64(v) ((kf_karg){.kind = KF_KP_I64, .i = (v)})

static void tp_free(tprog *t) { free(t->text); }

static kf_build_opts opts(void) {
    kf_build_opts o = {0};
    o.cache_dir = g_cache;
    o.threads = 1;
    o.timeout_s = 120;
    return o;
}

/* ---- running in the harness's worker ---- */

typedef struct gcase {
    kf_arena arena;
    kf_worker w;
    kf_outcome oc;
    kf_build b;
    int built, arena_up, worker_up;
} gcase;

static void gc_end(gcase *c) {
    if (c->worker_up) kf_worker_stop(&c->w);
    if (c->arena_up) kf_arena_destroy(&c->arena);
    if (c->built) kf_build_free(&c->b);
    kf_outcome_clear(&c->oc);
    memset(c, 0, sizeof *c);
}

/* Builds p and starts a worker on it (with a fresh arena: guards everywhere, outputs and
 * scratch poisoned, inputs from init). The status of loading, or KF_ST_COMPILE_ERROR. */
static kf_status gc_start(gcase *c, const kf_program *p, void (*init)(kf_arena *a, void *u), void *u,
                          double timeout_s, kf_err *err) {
    memset(c, 0, sizeof *c);
    kf_build_opts o = opts();
    if (T->build(p, &o, &c->b, err) != 0) {
        if (c->b.log) fprintf(stderr, "  compiler log:\n%s\n", c->b.log);
        return KF_ST_COMPILE_ERROR;
    }
    c->built = 1;
    if (kf_arena_create(&c->arena, p, err) != 0) return KF_ST_ERROR;
    c->arena_up = 1;
    for (int i = 0; i < p->n_bufs; i++)
        if (p->bufs[i].role == KF_BUF_OUTPUT || p->bufs[i].role == KF_BUF_SCRATCH)
            memset(c->arena.slots[i].data, KF_POISON_BYTE, c->arena.slots[i].nbytes);
    if (init) init(&c->arena, u);
    kf_worker_limits lim = {timeout_s, 4LL << 30, 1 << 20, 1};
    if (kf_worker_start(&c->w, T, p, &c->b, &o, &c->arena, &lim, &c->oc, err) != 0) return KF_ST_ERROR;
    c->worker_up = 1;
    if (c->oc.status != KF_ST_VERIFIED && c->oc.message) fprintf(stderr, "  loading: %s\n", c->oc.message);
    return c->oc.status;
}

static kf_status gc_run(gcase *c, kf_err *err) {
    if (kf_worker_run(&c->w, &c->oc, err) != 0) return KF_ST_ERROR;
    if (c->oc.status != KF_ST_VERIFIED && c->oc.message) fprintf(stderr, "  run: %s\n", c->oc.message);
    return c->oc.status;
}

#define F32(c, i) ((float *)(c).arena.slots[i].data)

static int gc_guards_ok(gcase *c, int *what, kf_err *err) {
    *what = 0;
    return kf_arena_check(&c->arena, what, err) == 0;
}

/* deterministic data in [-2, 2) */
static void fill(float *x, int64_t n, unsigned seed) {
    unsigned s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xFFFF) / 16384.0f - 2.0f;
    }
}

static int64_t mismatches(const float *a, const double *b, int64_t n, double tol) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * (1.0 + fabs(b[i])))) {
            if (bad < 3) fprintf(stderr, "  [%lld] got %.9g want %.9g\n", (long long)i, (double)a[i], b[i]);
            bad++;
        }
    return bad;
}

#define NEED_GPU() do { if (!g_gpu) KF_SKIP("no GPU here: %s", g_no_gpu); } while (0)
#define NEED_NVRTC() do { if (!g_nvrtc) KF_SKIP("cannot compile CUDA here: %s", g_no_nvrtc); } while (0)

/* ---- KIR kernels ---- */

/* y[i] = tanh(x[i]) * exp(-x[i]^2) + sigmoid(x[i]) */
static kir_kernel *k_ew(int64_t n) {
    kir_kernel *k = kir_kernel_new("ew");
    int y = kir_add_buf(k, "y", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0);
    int i = kir_add_var(k, "i", KIR_T_I64);
    kir_stmt *l = kir_for(k, i, kir_int(k, 0), kir_int(k, n), 1, KIR_LOOP_PARALLEL);
    kir_expr *xv = kir_load(k, x, kir_var(k, i));
    kir_expr *sq = kir_mul(k, kir_expr_clone(k, xv), kir_expr_clone(k, xv));
    kir_expr *v = kir_add(k, kir_mul(k, kir_un(k, KIR_TANH, kir_expr_clone(k, xv)), kir_un(k, KIR_EXP, kir_un(k, KIR_NEG, sq))),
                          kir_un(k, KIR_SIGMOID, xv));
    kir_append(k, l, kir_store(k, y, kir_var(k, i), v));
    kir_append(k, k->body, l);
    return k;
}

/* t[r] = sum_c x[r][c] (parallel rows, serial columns), then y[r][c] = x[r][c] - t[r] / C
 * (parallel over both): the second loop reads what the first wrote, so a grid barrier. */
static kir_kernel *k_center(int64_t R, int64_t C) {
    kir_kernel *k = kir_kernel_new("center");
    int y = kir_add_buf(k, "y", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0), t = kir_add_buf(k, "t", KF_F32, 1);
    int r = kir_add_var(k, "r", KIR_T_I64), c = kir_add_var(k, "c", KIR_T_I64), acc = kir_add_var(k, "acc", KIR_T_F64);
    int r2 = kir_add_var(k, "r2", KIR_T_I64), c2 = kir_add_var(k, "c2", KIR_T_I64);
    kir_stmt *lr = kir_for(k, r, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_append(k, lr, kir_decl(k, acc, kir_flt(k, 0, KIR_T_F64)));
    kir_stmt *lc = kir_for(k, c, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_SERIAL);
    kir_expr *v = kir_load(k, x, kir_add(k, kir_mul(k, kir_var(k, r), kir_int(k, C)), kir_var(k, c)));
    kir_append(k, lc, kir_assign(k, acc, kir_add(k, kir_var(k, acc), kir_cast(k, KIR_T_F64, v))));
    kir_append(k, lr, lc);
    kir_append(k, lr, kir_store(k, t, kir_var(k, r), kir_var(k, acc)));
    kir_append(k, k->body, lr);
    kir_stmt *l1 = kir_for(k, r2, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_stmt *l2 = kir_for(k, c2, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_PARALLEL);
    kir_expr *flat = kir_add(k, kir_mul(k, kir_var(k, r2), kir_int(k, C)), kir_var(k, c2));
    kir_expr *mean = kir_bin(k, KIR_DIV, kir_load(k, t, kir_var(k, r2)), kir_flt(k, (double)C, KIR_T_F32));
    kir_append(k, l2, kir_store(k, y, flat, kir_bin(k, KIR_SUB, kir_load(k, x, kir_expr_clone(k, flat)), mean)));
    kir_append(k, l1, l2);
    kir_append(k, k->body, l1);
    return k;
}

/* A matrix product as the naive lowering writes it: parallel over column blocks of 4,
 * serial over rows, accumulators per column. c[m][n] = sum_k a[m][k] b[k][n]. */
static kir_kernel *k_mm(int64_t M, int64_t N, int64_t K) {
    kir_kernel *k = kir_kernel_new("mm");
    int cb = kir_add_buf(k, "c", KF_F32, 1), ab = kir_add_buf(k, "a", KF_F32, 0), bb = kir_add_buf(k, "b", KF_F32, 0);
    int nb = kir_add_var(k, "nb", KIR_T_I64), m = kir_add_var(k, "m", KIR_T_I64), kk = kir_add_var(k, "k", KIR_T_I64);
    int n0 = kir_add_var(k, "n0", KIR_T_I64), row = kir_add_var(k, "row", KIR_T_I64);
    int acc[4];
    for (int j = 0; j < 4; j++) acc[j] = kir_add_var(k, "acc", KIR_T_F64);
    kir_stmt *outer = kir_for(k, nb, kir_int(k, 0), kir_int(k, N / 4), 1, KIR_LOOP_PARALLEL);
    kir_append(k, outer, kir_decl(k, n0, kir_mul(k, kir_var(k, nb), kir_int(k, 4))));
    kir_stmt *ml = kir_for(k, m, kir_int(k, 0), kir_int(k, M), 1, KIR_LOOP_SERIAL);
    kir_append(k, ml, kir_decl(k, row, kir_mul(k, kir_var(k, m), kir_int(k, N))));
    for (int j = 0; j < 4; j++) kir_append(k, ml, kir_decl(k, acc[j], kir_flt(k, 0, KIR_T_F64)));
    kir_stmt *kl = kir_for(k, kk, kir_int(k, 0), kir_int(k, K), 1, KIR_LOOP_SERIAL);
    for (int j = 0; j < 4; j++) {
        kir_expr *a = kir_load(k, ab, kir_add(k, kir_mul(k, kir_var(k, m), kir_int(k, K)), kir_var(k, kk)));
        kir_expr *b = kir_load(k, bb, kir_add(k, kir_add(k, kir_mul(k, kir_var(k, kk), kir_int(k, N)), kir_var(k, n0)),
                                              kir_int(k, j)));
        kir_append(k, kl, kir_assign(k, acc[j], kir_add(k, kir_var(k, acc[j]),
                                                        kir_cast(k, KIR_T_F64, kir_mul(k, a, b)))));
    }
    kir_append(k, ml, kl);
    for (int j = 0; j < 4; j++)
        kir_append(k, ml, kir_store(k, cb, kir_add(k, kir_add(k, kir_var(k, row), kir_var(k, n0)), kir_int(k, j)),
                                    kir_var(k, acc[j])));
    kir_append(k, outer, ml);
    kir_append(k, k->body, outer);
    return k;
}

/* ---- cases without a GPU ---- */

static void test_unavailable_message(void) {
    KF_CHECK(kf_target_find("cuda") == T);
    KF_CHECK_STR(T->name, "cuda");
    KF_CHECK(T->unlimited_address_space == 1);
    const char *old = getenv("KFORGE_LIBCUDA");
    char *saved = old ? kf_strdup(old) : NULL;
    setenv("KFORGE_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    kf_err err = {0};
    int rc = T->available(&err);
    KF_CHECK_EQ_INT(rc, KF_E_UNAVAILABLE);
    KF_CHECK_MSG(strstr(err.msg, "cuda target unavailable: cannot load the CUDA driver") != NULL, "%s", err.msg);
    fprintf(stderr, "  message: %s\n", err.msg);
    if (saved) setenv("KFORGE_LIBCUDA", saved, 1);
    else unsetenv("KFORGE_LIBCUDA");
    free(saved);
    /* here: available or a clear reason */
    kf_err_clear(&err);
    rc = T->available(&err);
    if (rc) {
        KF_CHECK_MSG(strstr(err.msg, "cuda target unavailable: ") == err.msg, "%s", err.msg);
        fprintf(stderr, "  this machine: %s\n", err.msg);
    }
    KF_CHECK_EQ_INT(rc == 0, g_gpu);
}

static void test_render_text(void) {
    kir_kernel *ks[3] = {k_ew(1000), k_center(300, 777), k_mm(64, 40, 16)};
    kir_launch geo[3];
    kf_str s;
    kf_str_init(&s);
    kf_err err = {0};
    int rc = kir_render_cuda(ks, 3, &s, geo, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    const char *t = kf_str_cstr(&s);
    KF_CHECK(strstr(t, "extern \"C\" __global__ void __launch_bounds__(256) ew(float *__restrict__ y, "
                       "const float *__restrict__ x)") != NULL);
    KF_CHECK(strstr(t, "tanhf(") != NULL && strstr(t, "expf(") != NULL);
    KF_CHECK(strstr(t, "__expf") == NULL && strstr(t, "__tanhf") == NULL);
    KF_CHECK_EQ_INT(geo[0].grid[0], (1000 + 255) / 256);
    KF_CHECK_EQ_INT(geo[0].block[0], 256);
    KF_CHECK_EQ_INT(geo[0].grid_sync, 0);
    /* center: a barrier between the row sums and their use */
    KF_CHECK_EQ_INT(geo[1].grid_sync, 1);
    KF_CHECK(strstr(t, "__device__ unsigned int kf_gridbar_center[2];") != NULL);
    KF_CHECK(strstr(t, "kf_grid_sync(kf_gridbar_center);") != NULL);
    KF_CHECK_EQ_INT(geo[1].grid[0], (300 * 777 + 255) / 256);
    /* mm: the row loop joins the column blocks (10 x 64 threads) */
    KF_CHECK(strstr(t, "promoted parallel loops over nb, m") != NULL);
    KF_CHECK_EQ_INT(geo[2].grid[0], (10 * 64 + 255) / 256);
    KF_CHECK_EQ_INT(geo[2].grid_sync, 0);
    if (rc) fprintf(stderr, "%s\n", t);
    kf_str_free(&s);
    /* a store whose rows can collide is not promoted: c[m / 2] */
    kir_kernel *k = kir_kernel_new("nopromo");
    int cb = kir_add_buf(k, "c", KF_F32, 1);
    int p = kir_add_var(k, "p", KIR_T_I64), m = kir_add_var(k, "m", KIR_T_I64);
    kir_stmt *outer = kir_for(k, p, kir_int(k, 0), kir_int(k, 8), 1, KIR_LOOP_PARALLEL);
    kir_stmt *ml = kir_for(k, m, kir_int(k, 0), kir_int(k, 16), 1, KIR_LOOP_SERIAL);
    kir_append(k, ml, kir_store(k, cb, kir_add(k, kir_mul(k, kir_var(k, p), kir_int(k, 8)),
                                               kir_bin(k, KIR_DIV, kir_var(k, m), kir_int(k, 2))),
                                kir_flt(k, 1, KIR_T_F32)));
    kir_append(k, outer, ml);
    kir_append(k, k->body, outer);
    kf_str_init(&s);
    kir_launch g1;
    KF_CHECK_EQ_INT(kir_render_cuda(&k, 1, &s, &g1, &err), 0);
    KF_CHECK(strstr(kf_str_cstr(&s), "promoted") == NULL);
    KF_CHECK_EQ_INT(g1.grid[0], 1);
    kf_str_free(&s);
    kir_kernel_free(k);
    for (int i = 0; i < 3; i++) kir_kernel_free(ks[i]);
}

static void test_compile_and_cache(void) {
    NEED_NVRTC();
    kir_kernel *ks[3] = {k_ew(1000), k_center(30, 77), k_mm(64, 40, 16)};
    tprog t;
    tp_init(&t);
    kir_launch geo[3];
    tp_kir(&t, ks, 3, geo);
    kf_build_opts o = opts();
    kf_build b = {0};
    kf_err err = {0};
    int rc = T->build(&t.p, &o, &b, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc && b.log) fprintf(stderr, "%s\n%s\n", b.log, t.text);
    KF_CHECK(b.artifact && access(b.artifact, R_OK) == 0);
    kf_build b2 = {0};
    KF_CHECK_EQ_INT(T->build(&t.p, &o, &b2, &err), 0);
    KF_CHECK_EQ_INT(b2.cached, 1);
    KF_CHECK_STR(b.artifact, b2.artifact);
    kf_build_free(&b);
    kf_build_free(&b2);
    /* a compile error names NVRTC and the line */
    tp_source(&t, "extern \"C\" __global__ void ew(float *y, const float *x) { y[0] = x[0] +; }\n");
    rc = T->build(&t.p, &o, &b, &err);
    KF_CHECK_EQ_INT(rc, KF_E_COMPILE);
    KF_CHECK_MSG(strstr(err.msg, "NVRTC") && strstr(err.msg, "error"), "%s", err.msg);
    KF_CHECK(b.artifact == NULL);
    kf_build_free(&b);
    /* a cpu program is refused */
    t.p.target = "cpu";
    KF_CHECK_EQ_INT(T->build(&t.p, &o, &b, &err), KF_E_INVALID);
    tp_free(&t);
    for (int i = 0; i < 3; i++) kir_kernel_free(ks[i]);
}

/* ---- graphs through the naive lowering ---- */

static char *unquote(const char *j) {
    char *s = kf_strdup(j);
    for (char *c = s; *c; c++)
        if (*c == '\'') *c = '"';
    return s;
}

typedef struct graph_data { const kf_program *p; const kf_graph *g; const float *const *in, *const *prm; } graph_data;

static int graph_param_index(const kf_graph *g, const char *name) {
    for (int i = 0; i < g->n_params; i++)
        if (!strcmp(g->values[g->params[i]].name, name)) return i;
    return -1;
}

static void graph_init(kf_arena *a, void *u) {
    const graph_data *d = u;
    for (int i = 0; i < d->p->n_bufs; i++) {
        const kf_pbuf *b = &d->p->bufs[i];
        if (b->role == KF_BUF_INPUT) memcpy(a->slots[i].data, d->in[b->index], b->nbytes);
        if (b->role == KF_BUF_PARAM) memcpy(a->slots[i].data, d->prm[graph_param_index(d->g, b->param)], b->nbytes);
    }
}

/* Lowers json for cuda, builds it, and on a GPU runs it: out[i] = output i (malloc'd). */
/* Lowers json for cuda (the naive agent, or the search agent's point key when key is given),
 * builds it and runs it on the GPU with the given inputs and params; out[i] gets output i
 * (malloc'd). 1: compiled only (no GPU here), 0: ran, else a failure (already reported). */
static int lower_run_key(const char *json, const char *key, const float *const *in, const float *const *prm,
                         float **out, int n_out) {
    kf_graph g;
    kf_program p;
    kf_err err = {0};
    char *js = unquote(json);
    int rc = kf_graph_from_json(js, &g, &err);
    free(js);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return rc;
    if (key) {
        kf_search_space sp;
        rc = kf_search_space_init(&sp, &g, &err);
        if (!rc) {
            kf_search_space_set_target(&sp, "cuda", 0);
            rc = kf_search_build(&sp, key, &p, &err);
            kf_search_space_free(&sp);
        }
    } else {
        rc = kf_lower_naive(&g, "cuda", &p, &err);
    }
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) rc = kf_program_validate(&p, &g, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) KF_CHECK_STR(p.sources[0].file, "kernels.cu");
    if (!rc && !g_gpu) { /* compile only */
        kf_build_opts o = opts();
        kf_build b = {0};
        rc = T->build(&p, &o, &b, &err);
        KF_CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc) fprintf(stderr, "%s\n%s\n", b.log ? b.log : "", p.sources[0].text);
        kf_build_free(&b);
        rc = rc ? rc : 1;
    } else if (!rc) {
        gcase c;
        graph_data d = {&p, &g, in, prm};
        kf_status st = gc_start(&c, &p, graph_init, &d, 60, &err);
        if (st == KF_ST_VERIFIED) st = gc_run(&c, &err);
        KF_CHECK_EQ_INT(st, KF_ST_VERIFIED);
        int what = 0;
        if (st == KF_ST_VERIFIED) KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
        for (int i = 0; i < p.n_bufs && st == KF_ST_VERIFIED; i++)
            if (p.bufs[i].role == KF_BUF_OUTPUT && p.bufs[i].index < n_out) {
                out[p.bufs[i].index] = malloc(p.bufs[i].nbytes);
                memcpy(out[p.bufs[i].index], c.arena.slots[i].data, p.bufs[i].nbytes);
            }
        if (st != KF_ST_VERIFIED) rc = -1;
        gc_end(&c);
    }
    kf_program_free(&p);
    kf_graph_free(&g);
    return rc;
}

static int lower_run(const char *json, const float *const *in, const float *const *prm, float **out, int n_out) {
    return lower_run_key(json, NULL, in, prm, out, n_out);
}

/* y = conv2d(x, w, b) (stride 1) against a float64 loop; relu after it when relu. */
static void conv_ref(const float *x, const float *w, const float *b, int N, int C, int O, int H, int W, int K, int pad,
                     int relu, double *ref) {
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy + ky - pad, ix = ox + kx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)x[((n * C + c) * H + iy) * W + ix] * w[((o * C + c) * K + ky) * K + kx];
                            }
                    ref[((n * O + o) * OH + oy) * OW + ox] = relu && acc < 0 ? 0 : acc;
                }
}

/* The search agent's tiled convolution (a CUDA template, KF_IMPL_TILED): 3 x 5 x 37 x 37 into
 * 20 channels (3x3, padding 1, bias, then relu: a masked channel block and tails in both
 * tile dims; 16, 32 and 48 channels per block), and 2 x 3 x 20 x 41 into 8 channels (5x5, no padding, no bias: fewer input
 * channels than a round stages) agree with float64 loops. */
static void test_lowered_conv_tiled(void) {
    NEED_NVRTC();
    static float x1[3 * 5 * 37 * 37], w1[20 * 5 * 9], b1[20], x2[2 * 3 * 20 * 41], w2[8 * 3 * 25];
    fill(x1, 3 * 5 * 37 * 37, 41);
    fill(w1, 20 * 5 * 9, 42);
    fill(b1, 20, 43);
    fill(x2, 2 * 3 * 20 * 41, 44);
    fill(w2, 8 * 3 * 25, 45);
    const char *j1 =
        "{'inputs':['x'],'params':['w','b'],'outputs':['r'],"
        "'values':{'x':{'dtype':'f32','shape':[3,5,37,37]},'w':{'dtype':'f32','shape':[20,5,3,3]},"
        "'b':{'dtype':'f32','shape':[20]},'y':{'dtype':'f32','shape':[3,20,37,37]},'r':{'dtype':'f32','shape':[3,20,37,37]}},"
        "'nodes':[{'op':'aten.convolution.default','outputs':['y'],'args':[{'name':'input','tensor':'x'},"
        "{'name':'weight','tensor':'w'},{'name':'bias','tensor':'b'},{'name':'stride','list':[{'int':1},{'int':1}]},"
        "{'name':'padding','list':[{'int':1},{'int':1}]},{'name':'dilation','list':[{'int':1},{'int':1}]},"
        "{'name':'transposed','bool':false},{'name':'output_padding','list':[{'int':0},{'int':0}]},{'name':'groups','int':1}]},"
        "{'op':'aten.relu.default','outputs':['r'],'args':[{'name':'self','tensor':'y'}]}]}";
    const char *j2 =
        "{'inputs':['x'],'params':['w'],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[2,3,20,41]},'w':{'dtype':'f32','shape':[8,3,5,5]},"
        "'y':{'dtype':'f32','shape':[2,8,16,37]}},"
        "'nodes':[{'op':'aten.convolution.default','outputs':['y'],'args':[{'name':'input','tensor':'x'},"
        "{'name':'weight','tensor':'w'},{'name':'bias','none':true},{'name':'stride','list':[{'int':1},{'int':1}]},"
        "{'name':'padding','list':[{'int':0},{'int':0}]},{'name':'dilation','list':[{'int':1},{'int':1}]},"
        "{'name':'transposed','bool':false},{'name':'output_padding','list':[{'int':0},{'int':0}]},{'name':'groups','int':1}]}]}";
    float *out[1] = {NULL};
    int rc = 0;
    /* 32 (automatic), 16 and 48 output channels per block (8, 8 and 12 per thread) */
    static const char *const keys[] = {"P0;T11.0.0.0.0", "P0;T11.0.0.0.16", "P0;T11.0.0.0.48"};
    for (int q = 0; q < 3; q++) {
        rc = lower_run_key(j1, keys[q], (const float *[]){x1}, (const float *[]){w1, b1}, out, 1);
        if (rc == 0 && out[0]) {
            double *ref = malloc(sizeof(double) * 3 * 20 * 37 * 37);
            conv_ref(x1, w1, b1, 3, 5, 20, 37, 37, 3, 1, 1, ref);
            KF_CHECK_MSG(mismatches(out[0], ref, 3 * 20 * 37 * 37, 1e-5) == 0, "%s", keys[q]);
            free(ref);
            free(out[0]);
            out[0] = NULL;
        }
    }
    int rc2 = lower_run_key(j2, "P0;T11.0.0.0.0", (const float *[]){x2}, (const float *[]){w2}, out, 1);
    if (rc2 == 0 && out[0]) {
        double *ref = malloc(sizeof(double) * 2 * 8 * 16 * 37);
        conv_ref(x2, w2, NULL, 2, 3, 8, 20, 41, 5, 0, 0, ref);
        KF_CHECK_EQ_INT(mismatches(out[0], ref, 2 * 8 * 16 * 37, 1e-5), 0);
        free(ref);
        free(out[0]);
    }
    if (rc == 1 && rc2 == 1) KF_SKIP("compiled only: %s", g_no_gpu);
}

/* Row softmax of s (rows x n, in place, float64): log-softmax when log_form. */
static void softmax_ref(double *s, int rows, int n, int log_form) {
    for (int i = 0; i < rows; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) mx = fmax(mx, s[i * n + j]);
        for (int j = 0; j < n; j++) sum += exp(s[i * n + j] - mx);
        for (int j = 0; j < n; j++)
            s[i * n + j] = log_form ? s[i * n + j] - mx - log(sum) : exp(s[i * n + j] - mx) / sum;
    }
}

/* The search agent's product fused with its row softmax (fuse_gemmrow.c, KF_IMPL_TILED of a
 * GEMM group) against float64 loops: attention scores softmax(bmm(q, k^T) * 0.25) of 3 x 37 x 19
 * by 19 x 200 (B read transposed, a K tail, masked columns, float4 stores), and a linear layer with
 * bias then log-softmax over 700 columns (12 per thread, 4 rows per thread) or softmax over 51
 * (one warp per row, scalar stores), each divided by 2 first; and A stored transposed with B
 * untransposed (200 and 50 columns). */
static void test_lowered_gemm_softmax(void) {
    NEED_NVRTC();
    enum { B = 3, M = 37, K = 19, N = 200, LM = 70, LK = 33 };
    static float q[B * M * K], kk[B * N * K], x[LM * LK], w[700 * LK], bias[700];
    fill(q, B * M * K, 51);
    fill(kk, B * N * K, 52);
    fill(x, LM * LK, 53);
    fill(w, 700 * LK, 54);
    fill(bias, 700, 55);
    const char *j1 =
        "{'inputs':['q','k'],'params':[],'outputs':['o'],"
        "'values':{'q':{'dtype':'f32','shape':[3,37,19]},'k':{'dtype':'f32','shape':[3,200,19]},"
        "'kt':{'dtype':'f32','shape':[3,19,200]},'s':{'dtype':'f32','shape':[3,37,200]},"
        "'m':{'dtype':'f32','shape':[3,37,200]},'o':{'dtype':'f32','shape':[3,37,200]}},"
        "'nodes':[{'op':'aten.transpose.int','outputs':['kt'],'args':[{'name':'self','tensor':'k'},"
        "{'name':'dim0','int':1},{'name':'dim1','int':2}]},"
        "{'op':'aten.bmm.default','outputs':['s'],'args':[{'name':'self','tensor':'q'},{'name':'mat2','tensor':'kt'}]},"
        "{'op':'aten.mul.Tensor','outputs':['m'],'args':[{'name':'self','tensor':'s'},{'name':'other','float':0.25}]},"
        "{'op':'aten._softmax.default','outputs':['o'],'args':[{'name':'self','tensor':'m'},"
        "{'name':'dim','int':-1},{'name':'half_to_float','bool':false}]}]}";
    float *out[1] = {NULL};
    int compiled_only = 0;
    int rc = lower_run_key(j1, "P0;T11.0.0.0.0;K11.0.0.0.0", (const float *[]){q, kk}, NULL, out, 1);
    compiled_only += rc == 1;
    if (rc == 0 && out[0]) {
        double *ref = malloc(sizeof(double) * B * M * N);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double acc = 0;
                    for (int t = 0; t < K; t++) acc += (double)q[(b * M + i) * K + t] * kk[(b * N + j) * K + t];
                    ref[(b * M + i) * N + j] = acc * 0.25;
                }
        softmax_ref(ref, B * M, N, 0);
        KF_CHECK_EQ_INT(mismatches(out[0], ref, B * M * N, 1e-5), 0);
        free(ref);
        free(out[0]);
        out[0] = NULL;
    }
    static const int ns[] = {700, 51};
    for (int c = 0; c < 2; c++) {
        int n = ns[c], log_form = c == 0;
        char json[2048];
        snprintf(json, sizeof json,
                 "{'inputs':['x'],'params':['w','b'],'outputs':['o'],"
                 "'values':{'x':{'dtype':'f32','shape':[70,33]},'w':{'dtype':'f32','shape':[%d,33]},"
                 "'b':{'dtype':'f32','shape':[%d]},'wt':{'dtype':'f32','shape':[33,%d]},"
                 "'y':{'dtype':'f32','shape':[70,%d]},'d':{'dtype':'f32','shape':[70,%d]},'o':{'dtype':'f32','shape':[70,%d]}},"
                 "'nodes':[{'op':'aten.t.default','outputs':['wt'],'args':[{'name':'self','tensor':'w'}]},"
                 "{'op':'aten.addmm.default','outputs':['y'],'args':[{'name':'self','tensor':'b'},"
                 "{'name':'mat1','tensor':'x'},{'name':'mat2','tensor':'wt'}]},"
                 "{'op':'aten.div.Tensor','outputs':['d'],'args':[{'name':'self','tensor':'y'},{'name':'other','float':2.0}]},"
                 "{'op':'aten.%s.default','outputs':['o'],'args':[{'name':'self','tensor':'d'},"
                 "{'name':'dim','int':1},{'name':'half_to_float','bool':false}]}]}",
                 n, n, n, n, n, n, log_form ? "_log_softmax" : "_softmax");
        rc = lower_run_key(json, "P0;T11.0.0.0.0;K11.0.0.0.0", (const float *[]){x}, (const float *[]){w, bias}, out, 1);
        compiled_only += rc == 1;
        if (rc || !out[0]) continue;
        double *ref = malloc(sizeof(double) * LM * n);
        for (int i = 0; i < LM; i++)
            for (int j = 0; j < n; j++) {
                double acc = bias[j];
                for (int t = 0; t < LK; t++) acc += (double)x[i * LK + t] * w[j * LK + t];
                ref[i * n + j] = acc / 2.0;
            }
        softmax_ref(ref, LM, n, log_form);
        KF_CHECK_MSG(mismatches(out[0], ref, LM * n, 1e-5) == 0, "%d columns", n);
        free(ref);
        free(out[0]);
        out[0] = NULL;
    }
    /* A stored transposed (K x M) and B untransposed (K x N): 16-byte B loads along the columns
     * for 200 of them, scalar ones for 50 */
    static float at[B * K * M], bk[B * K * N];
    fill(at, B * K * M, 56);
    fill(bk, B * K * N, 57);
    static const int ns2[] = {200, 50};
    for (int c = 0; c < 2; c++) {
        int n = ns2[c];
        char json[2048];
        snprintf(json, sizeof json,
                 "{'inputs':['a','b'],'params':[],'outputs':['o'],"
                 "'values':{'a':{'dtype':'f32','shape':[3,19,37]},'b':{'dtype':'f32','shape':[3,19,%d]},"
                 "'at':{'dtype':'f32','shape':[3,37,19]},'s':{'dtype':'f32','shape':[3,37,%d]},"
                 "'o':{'dtype':'f32','shape':[3,37,%d]}},"
                 "'nodes':[{'op':'aten.transpose.int','outputs':['at'],'args':[{'name':'self','tensor':'a'},"
                 "{'name':'dim0','int':1},{'name':'dim1','int':2}]},"
                 "{'op':'aten.bmm.default','outputs':['s'],'args':[{'name':'self','tensor':'at'},{'name':'mat2','tensor':'b'}]},"
                 "{'op':'aten._softmax.default','outputs':['o'],'args':[{'name':'self','tensor':'s'},"
                 "{'name':'dim','int':-1},{'name':'half_to_float','bool':false}]}]}",
                 n, n, n);
        rc = lower_run_key(json, "P0;T11.0.0.0.0;K11.0.0.0.0", (const float *[]){at, bk}, NULL, out, 1);
        compiled_only += rc == 1;
        if (rc || !out[0]) continue;
        double *ref = malloc(sizeof(double) * B * M * n);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int t = 0; t < K; t++) acc += (double)at[(b * K + t) * M + i] * bk[(b * K + t) * n + j];
                    ref[(b * M + i) * n + j] = acc;
                }
        softmax_ref(ref, B * M, n, 0);
        KF_CHECK_MSG(mismatches(out[0], ref, B * M * n, 1e-5) == 0, "transposed A, %d columns", n);
        free(ref);
        free(out[0]);
        out[0] = NULL;
    }
    if (compiled_only == 5) KF_SKIP("compiled only: %s", g_no_gpu);
}

static void test_lowered_linear_softmax(void) {
    NEED_NVRTC();
    enum { M = 33, K = 70, N = 51 };
    static float x[M * K], w[N * K], b[N];
    fill(x, M * K, 1);
    fill(w, N * K, 2);
    fill(b, N, 3);
    const char *json =
        "{'inputs':['x'],'params':['w','b'],'outputs':['s'],"
        "'values':{'x':{'dtype':'f32','shape':[33,70]},'w':{'dtype':'f32','shape':[51,70]},"
        "'b':{'dtype':'f32','shape':[51]},'wt':{'dtype':'f32','shape':[70,51]},"
        "'y':{'dtype':'f32','shape':[33,51]},'s':{'dtype':'f32','shape':[33,51]}},"
        "'nodes':[{'op':'aten.t.default','outputs':['wt'],'args':[{'name':'self','tensor':'w'}]},"
        "{'op':'aten.addmm.default','outputs':['y'],'args':[{'name':'self','tensor':'b'},"
        "{'name':'mat1','tensor':'x'},{'name':'mat2','tensor':'wt'}]},"
        "{'op':'aten._softmax.default','outputs':['s'],'args':[{'name':'self','tensor':'y'},"
        "{'name':'dim','int':1},{'name':'half_to_float','bool':false}]}]}";
    float *out[1] = {NULL};
    int rc = lower_run(json, (const float *[]){x}, (const float *[]){w, b}, out, 1);
    if (rc == 1) KF_SKIP("compiled only: %s", g_no_gpu);
    if (rc || !out[0]) return;
    static double ref[M * N];
    for (int i = 0; i < M; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            double acc = b[j];
            for (int k = 0; k < K; k++) acc += (double)x[i * K + k] * w[j * K + k];
            ref[i * N + j] = acc;
            mx = fmax(mx, acc);
        }
        for (int j = 0; j < N; j++) sum += exp(ref[i * N + j] - mx);
        for (int j = 0; j < N; j++) ref[i * N + j] = exp(ref[i * N + j] - mx) / sum;
    }
    KF_CHECK_EQ_INT(mismatches(out[0], ref, M * N, 1e-5), 0);
    free(out[0]);
}

static void test_lowered_matmul_tail(void) {
    NEED_NVRTC();
    /* [2,1,3,5] @ [4,5,67] -> [2,4,3,67]: broadcast batch dims, column blocks with a tail */
    enum { B0 = 2, B1 = 4, M = 3, K = 5, N = 67 };
    static float a[B0 * M * K], b[B1 * K * N];
    fill(a, B0 * M * K, 31);
    fill(b, B1 * K * N, 32);
    const char *json =
        "{'inputs':['a','b'],'params':[],'outputs':['y'],"
        "'values':{'a':{'dtype':'f32','shape':[2,1,3,5]},'b':{'dtype':'f32','shape':[4,5,67]},"
        "'y':{'dtype':'f32','shape':[2,4,3,67]}},"
        "'nodes':[{'op':'aten.matmul.default','outputs':['y'],'args':[{'name':'self','tensor':'a'},"
        "{'name':'other','tensor':'b'}]}]}";
    float *out[1] = {NULL};
    int rc = lower_run(json, (const float *[]){a, b}, NULL, out, 1);
    if (rc == 1) KF_SKIP("compiled only: %s", g_no_gpu);
    if (rc || !out[0]) return;
    static double ref[B0 * B1 * M * N];
    for (int i0 = 0; i0 < B0; i0++)
        for (int i1 = 0; i1 < B1; i1++)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++) acc += (double)a[(i0 * M + m) * K + k] * b[(i1 * K + k) * N + n];
                    ref[((i0 * B1 + i1) * M + m) * N + n] = acc;
                }
    KF_CHECK_EQ_INT(mismatches(out[0], ref, B0 * B1 * M * N, 1e-5), 0);
    free(out[0]);
}

/* Every problem of a suite (default problems/, or $KF_TEST_CUDA_PROBLEMS) captured by the
 * oracle on the CPU, lowered for cuda by the naive agent and by the search agent's default
 * point, and compiled by NVRTC: the renderer over every op family. Skipped on a GPU machine unless $KF_TEST_CUDA_PROBLEMS is set (the
 * GPU benchmark covers it there). */
static void test_lowered_problems_compile(void) {
    NEED_NVRTC();
    const char *dir = getenv("KF_TEST_CUDA_PROBLEMS");
    if (g_gpu && !dir) KF_SKIP("on a GPU machine the benchmark covers this; set KF_TEST_CUDA_PROBLEMS to run it");
    if (!dir) dir = "problems";
    const char *py = getenv("KFORGE_PYTHON") ? getenv("KFORGE_PYTHON") : "/usr/bin/python3";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", py);
    if (system(cmd) != 0) KF_SKIP("%s cannot import torch", py);
    char work[128];
    snprintf(work, sizeof work, "%s/oracle", g_cache);
    kf_oracle_opts oo = {.python = py, .workdir = work, .threads = 2, .device = "cpu", .timeout_s = 600};
    if (access("python/kforge_oracle.py", R_OK) == 0) oo.script = "python/kforge_oracle.py";
    kf_oracle *orc = NULL;
    kf_err err = {0};
    if (kf_oracle_start(&oo, &orc, &err) != 0) KF_SKIP("cannot start the oracle: %s", err.msg);
    snprintf(cmd, sizeof cmd, "find %s -name '*.py' | sort", dir);
    FILE *f = popen(cmd, "r");
    char path[512];
    int compiled = 0, unsupported = 0, failed = 0;
    while (f && fgets(path, sizeof path, f)) {
        path[strcspn(path, "\n")] = '\0';
        kf_oracle_info info;
        kf_graph g;
        char *params = NULL;
        kf_program p;
        if (kf_oracle_load(orc, path, 1, &info, &err) != 0 || kf_oracle_graph(orc, &g, &params, &err) != 0) {
            fprintf(stderr, "  %s: oracle: %s\n", path, err.msg);
            free(params);
            continue;
        }
        for (int agent = 0; agent < 2; agent++) { /* naive, then the search's default point */
            int rc;
            if (agent == 0) {
                rc = kf_lower_naive(&g, "cuda", &p, &err);
            } else {
                kf_search_space sp;
                rc = kf_search_space_init(&sp, &g, &err);
                if (!rc) {
                    snprintf(sp.target, sizeof sp.target, "cuda");
                    kf_gsched *s = kf_search_default(&sp, 0);
                    char *key = s ? kf_search_key(&sp, 0, s) : NULL;
                    rc = key ? kf_search_build(&sp, key, &p, &err) : KF_E_NOMEM;
                    free(key);
                    free(s);
                    kf_search_space_free(&sp);
                }
            }
            const char *an = agent ? "search" : "naive";
            if (rc == KF_E_UNSUPPORTED) {
                unsupported++;
                fprintf(stderr, "  %s (%s): %s\n", path, an, err.msg);
            } else if (rc) {
                failed++;
                fprintf(stderr, "  FAIL %s (%s): lowering: %s\n", path, an, err.msg);
            } else {
                kf_build_opts o = opts();
                kf_build b = {0};
                if (T->build(&p, &o, &b, &err) == 0) {
                    compiled++;
                } else {
                    failed++;
                    fprintf(stderr, "  FAIL %s (%s): %s\n%s\n", path, an, err.msg, b.log ? b.log : "");
                }
                kf_build_free(&b);
                kf_program_free(&p);
            }
        }
        kf_graph_free(&g);
        free(params);
    }
    if (f) pclose(f);
    kf_oracle_stop(orc);
    fprintf(stderr, "  %s: %d compiled, %d unsupported, %d failed\n", dir, compiled, unsupported, failed);
    KF_CHECK_EQ_INT(failed, 0);
    KF_CHECK(compiled > 0);
}

/* ---- cooperative rows (kir_sched_gpu) ---- */

/* Softmax over rows of W: max pass, float64 sum pass, store pass, as the op builders write
 * them: y[r][c] = exp(x[r][c] - m) / s. */
static kir_kernel *k_softmax(const char *name, int64_t R, int64_t W) {
    kir_kernel *k = kir_kernel_new(name);
    int y = kir_add_buf(k, "y", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0);
    int r = kir_add_var(k, "r", KIR_T_I64), base = kir_add_var(k, "base", KIR_T_I64);
    int m = kir_add_var(k, "m", KIR_T_F32), s = kir_add_var(k, "s", KIR_T_F64);
    int c1 = kir_add_var(k, "c", KIR_T_I64), c2 = kir_add_var(k, "c", KIR_T_I64), c3 = kir_add_var(k, "c", KIR_T_I64);
    kir_stmt *lr = kir_for(k, r, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_append(k, lr, kir_decl(k, base, kir_mul(k, kir_var(k, r), kir_int(k, W))));
    kir_append(k, lr, kir_decl(k, m, kir_flt(k, -INFINITY, KIR_T_F32)));
    kir_stmt *l1 = kir_for(k, c1, kir_int(k, 0), kir_int(k, W), 1, KIR_LOOP_SERIAL);
    kir_append(k, l1, kir_assign(k, m, kir_bin(k, KIR_MAX, kir_var(k, m),
                                               kir_load(k, x, kir_add(k, kir_var(k, base), kir_var(k, c1))))));
    kir_append(k, lr, l1);
    kir_append(k, lr, kir_decl(k, s, kir_flt(k, 0, KIR_T_F64)));
    kir_stmt *l2 = kir_for(k, c2, kir_int(k, 0), kir_int(k, W), 1, KIR_LOOP_SERIAL);
    kir_expr *e2 = kir_un(k, KIR_EXP, kir_bin(k, KIR_SUB, kir_load(k, x, kir_add(k, kir_var(k, base), kir_var(k, c2))),
                                              kir_var(k, m)));
    kir_append(k, l2, kir_assign(k, s, kir_add(k, kir_var(k, s), kir_cast(k, KIR_T_F64, e2))));
    kir_append(k, lr, l2);
    kir_stmt *l3 = kir_for(k, c3, kir_int(k, 0), kir_int(k, W), 1, KIR_LOOP_SERIAL);
    kir_expr *e3 = kir_un(k, KIR_EXP, kir_bin(k, KIR_SUB, kir_load(k, x, kir_add(k, kir_var(k, base), kir_var(k, c3))),
                                              kir_var(k, m)));
    kir_append(k, l3, kir_store(k, y, kir_add(k, kir_var(k, base), kir_var(k, c3)),
                                kir_cast(k, KIR_T_F32, kir_bin(k, KIR_DIV, kir_cast(k, KIR_T_F64, e3), kir_var(k, s)))));
    kir_append(k, lr, l3);
    kir_append(k, k->body, lr);
    return k;
}

/* Batch-norm statistics and normalisation of x [N][C][HW] per channel c (the rows): float64
 * sum and sum of squares over N * HW elements (index r / HW, r % HW), mean and rstd stored by
 * the row's first thread into st[2c], st[2c+1], then y = (x - st[2c]) * st[2c+1] read back from
 * the buffer (a group barrier must separate the two). */
static void k_bnstats_nest(kir_kernel *k, int y, int x, int st, int64_t N, int64_t C, int64_t HW) {
    int c = kir_add_var(k, "c", KIR_T_I64), sum = kir_add_var(k, "sum", KIR_T_F64), ss = kir_add_var(k, "ss", KIR_T_F64);
    int r1 = kir_add_var(k, "r", KIR_T_I64), r2 = kir_add_var(k, "r", KIR_T_I64), mean = kir_add_var(k, "mean", KIR_T_F64);
    int i2 = kir_add_var(k, "i", KIR_T_I64), v1 = kir_add_var(k, "v", KIR_T_F64);
    int64_t n = N * HW;
#define BN_IDX(rv) kir_add(k, kir_add(k, kir_mul(k, kir_bin(k, KIR_DIV, kir_var(k, rv), kir_int(k, HW)), kir_int(k, C * HW)), \
                                     kir_mul(k, kir_var(k, c), kir_int(k, HW))), kir_bin(k, KIR_MOD, kir_var(k, rv), kir_int(k, HW)))
    kir_stmt *lc = kir_for(k, c, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_PARALLEL);
    kir_append(k, lc, kir_decl(k, sum, kir_flt(k, 0, KIR_T_F64)));
    kir_append(k, lc, kir_decl(k, ss, kir_flt(k, 0, KIR_T_F64)));
    kir_stmt *l1 = kir_for(k, r1, kir_int(k, 0), kir_int(k, n), 1, KIR_LOOP_SERIAL);
    kir_append(k, l1, kir_decl(k, v1, kir_cast(k, KIR_T_F64, kir_load(k, x, BN_IDX(r1)))));
    kir_append(k, l1, kir_assign(k, sum, kir_add(k, kir_var(k, sum), kir_var(k, v1))));
    kir_append(k, l1, kir_assign(k, ss, kir_add(k, kir_var(k, ss), kir_mul(k, kir_var(k, v1), kir_var(k, v1)))));
    kir_append(k, lc, l1);
    kir_append(k, lc, kir_decl(k, mean, kir_bin(k, KIR_DIV, kir_var(k, sum), kir_flt(k, (double)n, KIR_T_F64))));
    kir_expr *var = kir_bin(k, KIR_SUB, kir_bin(k, KIR_DIV, kir_var(k, ss), kir_flt(k, (double)n, KIR_T_F64)),
                            kir_mul(k, kir_var(k, mean), kir_var(k, mean)));
    kir_append(k, lc, kir_store(k, st, kir_mul(k, kir_var(k, c), kir_int(k, 2)), kir_var(k, mean)));
    kir_append(k, lc, kir_store(k, st, kir_add(k, kir_mul(k, kir_var(k, c), kir_int(k, 2)), kir_int(k, 1)),
                                kir_un(k, KIR_RSQRT, kir_add(k, var, kir_flt(k, 1e-5, KIR_T_F64)))));
    kir_stmt *l2 = kir_for(k, r2, kir_int(k, 0), kir_int(k, n), 1, KIR_LOOP_SERIAL);
    kir_append(k, l2, kir_decl(k, i2, BN_IDX(r2)));
    kir_expr *yv = kir_mul(k, kir_bin(k, KIR_SUB, kir_load(k, x, kir_var(k, i2)),
                                      kir_load(k, st, kir_mul(k, kir_var(k, c), kir_int(k, 2)))),
                           kir_load(k, st, kir_add(k, kir_mul(k, kir_var(k, c), kir_int(k, 2)), kir_int(k, 1))));
    kir_append(k, l2, kir_store(k, y, kir_var(k, i2), yv));
    kir_append(k, lc, l2);
    kir_append(k, k->body, lc);
#undef BN_IDX
}

static kir_kernel *k_bnstats(const char *name, int64_t N, int64_t C, int64_t HW) {
    kir_kernel *k = kir_kernel_new(name);
    int y = kir_add_buf(k, "y", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0), st = kir_add_buf(k, "st", KF_F32, 1);
    k_bnstats_nest(k, y, x, st, N, C, HW);
    return k;
}

/* Reference of k_bnstats_nest: statistics into stats[2C], normalised x into ref. */
static void bnstats_ref(const float *xv, int64_t N, int64_t C, int64_t HW, double *stats, double *ref) {
    for (int64_t ch = 0; ch < C; ch++) {
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                double v = xv[(n * C + ch) * HW + i];
                s1 += v;
                s2 += v * v;
            }
        double mean = s1 / (double)(N * HW);
        stats[2 * ch] = (float)mean;
        stats[2 * ch + 1] = (float)(1.0 / sqrt(s2 / (double)(N * HW) - mean * mean + 1e-5));
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t at = (n * C + ch) * HW + i;
                ref[at] = ((double)xv[at] - stats[2 * ch]) * stats[2 * ch + 1];
            }
    }
}

/* The schedule marks the row loops, the CUDA text has the group reductions, the C text is
 * unchanged, and NVRTC compiles it (where it can). */
static void test_coop_render(void) {
    kf_err err = {0};
    for (int mode = 1; mode <= 3; mode++) {
        kir_kernel *ks[2] = {k_softmax("softmax", 600, 1000), k_bnstats("bnstats", 4, 5, 40000)};
        kf_str c0, c1, cu;
        kf_str_init(&c0);
        kf_str_init(&c1);
        kf_str_init(&cu);
        KF_CHECK_EQ_INT(kir_render_c(ks, 2, &c0, &err), 0);
        int threads = mode == 2 ? 128 : 512;
        KF_CHECK_EQ_INT(kir_sched_gpu(ks[0], threads, mode, 0), mode == 1 ? 0 : 1);
        KF_CHECK_EQ_INT(kir_sched_gpu(ks[1], threads, mode, 0), mode == 1 ? 0 : 1);
        KF_CHECK_EQ_INT(kir_render_c(ks, 2, &c1, &err), 0);
        KF_CHECK_STR(kf_str_cstr(&c0), kf_str_cstr(&c1)); /* the C renderer ignores the GPU mapping */
        kir_launch geo[2];
        KF_CHECK_EQ_INT(kir_render_cuda(ks, 2, &cu, geo, &err), 0);
        const char *t = kf_str_cstr(&cu);
        KF_CHECK(strstr(t, "__shfl_xor_sync") != NULL);
        KF_CHECK_EQ_INT((int)geo[0].block[0], threads);
        if (mode == 3) {
            KF_CHECK(strstr(t, "m = kf_bred_max_f32(m, kf_sh_f32);") != NULL);
            KF_CHECK(strstr(t, "s = kf_bred_add_f64(s, kf_sh_f64);") != NULL);
            KF_CHECK(strstr(t, "__shared__ double kf_sh_f64[32];") != NULL);
            KF_CHECK(strstr(t, "if (kf_lane == 0)") != NULL);   /* the statistics' stores */
            KF_CHECK(strstr(t, "__syncthreads();") != NULL);    /* before they are read back */
            KF_CHECK_EQ_INT((int)geo[0].grid[0], 600);           /* a block per row */
            KF_CHECK_EQ_INT(geo[0].grid_sync, 0);
            /* 5 long channels: each row split over kf_nb blocks (kir_sched_gpu marks it) */
            KF_CHECK_EQ_INT(ks[1]->body->body[0]->coop, KIR_COOP_SPLIT);
            KF_CHECK(ks[0]->body->body[0]->coop != KIR_COOP_SPLIT); /* 600 rows of 1000 */
            KF_CHECK(strstr(t, "sum = kf_gred_add_f64(sum, kf_sh_f64, kf_part_f64_bnstats, &kf_par, kf_grpbar_bnstats, "
                               "kf_nb);") != NULL);
            KF_CHECK(strstr(t, "kf_group_sync(kf_grpbar_bnstats + 2 * (blockIdx.x / kf_nb), (unsigned int)kf_nb);") != NULL);
            KF_CHECK(strstr(t, "__device__ unsigned int kf_gridbar_bnstats[2];") != NULL); /* cooperative launch */
            KF_CHECK(strstr(t, "kf_gridbar_softmax") == NULL);
            KF_CHECK(strstr(t, "kf_grid_sync(kf_gridbar_bnstats);") != NULL); /* after the split nest */
            KF_CHECK(strstr(t, "    int kf_par = 0;") != NULL);
            KF_CHECK_EQ_INT(geo[1].grid_sync, 1);
            KF_CHECK_EQ_INT((int)geo[1].grid[0], 5 * ((2048 + 4) / 5));
        } else if (mode == 2) {
            KF_CHECK(strstr(t, "m = kf_wred_max_f32(m);") != NULL);
            KF_CHECK(strstr(t, "__syncwarp();") != NULL);
            KF_CHECK(strstr(t, "kf_bred_") == NULL || strstr(t, "kf_bred_") < strstr(t, "extern \"C\""));
            KF_CHECK_EQ_INT((int)geo[0].grid[0], (600 * 32 + 127) / 128);
            KF_CHECK(strstr(t, "kf_gred_") == NULL || strstr(t, "kf_gred_") < strstr(t, "extern \"C\""));
        } else {
            KF_CHECK(strstr(t, "cooperative loop") == NULL);
        }
        if (g_nvrtc) {
            tprog tp;
            tp_init(&tp);
            tp_source(&tp, t);
            kf_kparam_kind kinds[3] = {KF_KP_PTR, KF_KP_PTR, KF_KP_PTR};
            tp_kernel(&tp, "softmax", kinds, 2);
            tp_kernel(&tp, "bnstats", kinds, 3);
            kf_build_opts o = opts();
            kf_build b = {0};
            int rc = T->build(&tp.p, &o, &b, &err);
            KF_CHECK_MSG(rc == 0, "mode %d: %s\n%s", mode, err.msg, b.log ? b.log : "");
            kf_build_free(&b);
            tp_free(&tp);
        }
        kf_str_free(&c0);
        kf_str_free(&c1);
        kf_str_free(&cu);
        kir_kernel_free(ks[0]);
        kir_kernel_free(ks[1]);
    }
    if (!g_nvrtc) KF_SKIP("rendered only; cannot compile CUDA here: %s", g_no_nvrtc);
}

/* The automatic mapping splits few long rows over blocks (256-thread blocks), but not rows
 * that are short (128 x 50176: a ResNet batch norm, slower split on the H100) or many. */
static void test_split_choice(void) {
    struct { int64_t n, c, hw; int split, threads; } cases[] = {
        {32, 64, 16384, 1, 256},   /* 64 rows of 524288 */
        {32, 128, 1568, 0, 1024},  /* 128 rows of 50176 */
        {1, 600, 262144, 0, 1024}, /* 600 rows: enough blocks already */
    };
    for (int i = 0; i < 3; i++) {
        kir_kernel *k = k_bnstats("bn", cases[i].n, cases[i].c, cases[i].hw);
        KF_CHECK_EQ_INT(kir_sched_gpu(k, 0, 0, 0), 1);
        KF_CHECK_EQ_INT(k->body->body[0]->coop == KIR_COOP_SPLIT, cases[i].split);
        KF_CHECK_EQ_INT(k->threads, cases[i].threads);
        kf_str cu;
        kf_str_init(&cu);
        kir_launch geo;
        kf_err err = {0};
        KF_CHECK_EQ_INT(kir_render_cuda(&k, 1, &cu, &geo, &err), 0);
        KF_CHECK_EQ_INT((strstr(kf_str_cstr(&cu), "kf_gred_add_f64(sum") != NULL), cases[i].split);
        KF_CHECK_EQ_INT(geo.grid_sync, cases[i].split);
        kf_str_free(&cu);
        kir_kernel_free(k);
    }
}

typedef struct coop_data { int x; int64_t n; } coop_data;

static void coop_init(kf_arena *a, void *u) {
    const coop_data *d = u;
    fill((float *)a->slots[d->x].data, d->n, 11);
}

/* On the GPU: softmax and batch-norm statistics with a thread, a warp and a block per row
 * (mode 3: the 5 channels' rows of 160000 elements split over several blocks each) agree
 * with plain C loops. */
static void test_gpu_coop_rows(void) {
    NEED_GPU();
    enum { SR = 300, SW = 1000, BN = 4, BC = 5, BHW = 40000 };
    for (int mode = 1; mode <= 3; mode++) {
        kir_kernel *ks[2] = {k_softmax("softmax", SR, SW), k_bnstats("bnstats", BN, BC, BHW)};
        int threads = mode == 2 ? 128 : 512;
        kir_sched_gpu(ks[0], threads, mode, 0);
        kir_sched_gpu(ks[1], threads, mode, 0);
        tprog t;
        tp_init(&t);
        kir_launch geo[2];
        tp_kir(&t, ks, 2, geo);
        int64_t nx = (int64_t)BN * BC * BHW > SR * SW ? (int64_t)BN * BC * BHW : SR * SW;
        int x = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, nx), y = tp_buf(&t, "y", KF_BUF_OUTPUT, KF_F32, SR * SW);
        int by = tp_buf(&t, "by", KF_BUF_SCRATCH, KF_F32, BN * BC * BHW), st = tp_buf(&t, "st", KF_BUF_SCRATCH, KF_F32, 2 * BC);
        tp_launch(&t, 0, (kf_karg[]){PTR(y), PTR(x)}, 2, &geo[0]);
        tp_launch(&t, 1, (kf_karg[]){PTR(by), PTR(x), PTR(st)}, 3, &geo[1]);
        coop_data d = {x, nx};
        gcase c;
        kf_err err = {0};
        kf_status s = gc_start(&c, &t.p, coop_init, &d, 60, &err);
        if (s == KF_ST_VERIFIED) s = gc_run(&c, &err);
        KF_CHECK_MSG(s == KF_ST_VERIFIED, "mode %d: %s", mode, kf_status_name(s));
        if (s == KF_ST_VERIFIED) {
            const float *xv = F32(c, x);
            double *ref = malloc(sizeof(double) * (size_t)nx);
            for (int r = 0; r < SR; r++) {
                float m = -INFINITY;
                for (int k = 0; k < SW; k++) m = xv[r * SW + k] > m ? xv[r * SW + k] : m;
                double sum = 0;
                for (int k = 0; k < SW; k++) sum += exp((double)(xv[r * SW + k] - m));
                for (int k = 0; k < SW; k++) ref[r * SW + k] = exp((double)(xv[r * SW + k] - m)) / sum;
            }
            KF_CHECK_EQ_INT(mismatches(F32(c, y), ref, SR * SW, 1e-5), 0);
            double stats[2 * BC];
            for (int ch = 0; ch < BC; ch++) {
                double s1 = 0, s2 = 0;
                for (int n = 0; n < BN; n++)
                    for (int i = 0; i < BHW; i++) {
                        double v = xv[((int64_t)n * BC + ch) * BHW + i];
                        s1 += v;
                        s2 += v * v;
                    }
                double mean = s1 / (BN * BHW);
                stats[2 * ch] = (float)mean;
                stats[2 * ch + 1] = (float)(1.0 / sqrt(s2 / (BN * BHW) - mean * mean + 1e-5));
                for (int n = 0; n < BN; n++)
                    for (int i = 0; i < BHW; i++) {
                        int64_t at = ((int64_t)n * BC + ch) * BHW + i;
                        ref[at] = ((double)xv[at] - stats[2 * ch]) * stats[2 * ch + 1];
                    }
            }
            KF_CHECK_EQ_INT(mismatches(F32(c, st), stats, 2 * BC, 1e-5), 0);
            KF_CHECK_EQ_INT(mismatches(F32(c, by), ref, BN * BC * BHW, 1e-4), 0);
            free(ref);
            int what = 0;
            KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
        }
        gc_end(&c);
        tp_free(&t);
        kir_kernel_free(ks[0]);
        kir_kernel_free(ks[1]);
    }
}

/* 16-byte accesses (kir_kernel.vec4): a flat loop of 1003 iterations (3 left for the tail)
 * with a broadcast operand (scalar loads), a buffer updated in place and a store, and a row
 * loop (37 rows of 1000, a block per row) adding a column bias; both rendered with float4
 * loads and stores, both agree with C exactly, in place included. */
typedef struct vec_data { int a, z, b, x, bias; } vec_data;

static void vec_init(kf_arena *ar, void *u) {
    const vec_data *d = u;
    fill((float *)ar->slots[d->a].data, 1003, 3);
    fill((float *)ar->slots[d->z].data, 1003, 4);
    fill((float *)ar->slots[d->b].data, 7, 5);
    fill((float *)ar->slots[d->x].data, 37 * 1000, 6);
    fill((float *)ar->slots[d->bias].data, 1000, 7);
}

static void test_gpu_vec4(void) {
    enum { N = 1003, R = 37, W = 1000 };
    /* flat: y[i] = a[i] * 2 + b[i % 7]; z[i] = z[i] + a[i] */
    kir_kernel *k0 = kir_kernel_new("vflat");
    int y = kir_add_buf(k0, "y", KF_F32, 1), a = kir_add_buf(k0, "a", KF_F32, 0), b = kir_add_buf(k0, "b", KF_F32, 0);
    int z = kir_add_buf(k0, "z", KF_F32, 1);
    int i = kir_add_var(k0, "i", KIR_T_I64);
    kir_stmt *l = kir_for(k0, i, kir_int(k0, 0), kir_int(k0, N), 1, KIR_LOOP_PARALLEL);
    kir_append(k0, l, kir_store(k0, y, kir_var(k0, i),
                                kir_add(k0, kir_mul(k0, kir_load(k0, a, kir_var(k0, i)), kir_flt(k0, 2.0, KIR_T_F32)),
                                        kir_load(k0, b, kir_bin(k0, KIR_MOD, kir_var(k0, i), kir_int(k0, 7))))));
    kir_append(k0, l, kir_store(k0, z, kir_var(k0, i), kir_add(k0, kir_load(k0, z, kir_var(k0, i)), kir_load(k0, a, kir_var(k0, i)))));
    kir_append(k0, k0->body, l);
    /* rows: o[r * W + c] = x[r * W + c] + bias[c] */
    kir_kernel *k1 = kir_kernel_new("vrows");
    int o = kir_add_buf(k1, "o", KF_F32, 1), xb = kir_add_buf(k1, "x", KF_F32, 0), bb = kir_add_buf(k1, "bias", KF_F32, 0);
    int r = kir_add_var(k1, "r", KIR_T_I64), rb = kir_add_var(k1, "rb", KIR_T_I64), c = kir_add_var(k1, "c", KIR_T_I64);
    int iv = kir_add_var(k1, "i", KIR_T_I64);
    kir_stmt *lr = kir_for(k1, r, kir_int(k1, 0), kir_int(k1, R), 1, KIR_LOOP_PARALLEL);
    kir_append(k1, lr, kir_decl(k1, rb, kir_mul(k1, kir_var(k1, r), kir_int(k1, W))));
    kir_stmt *lc = kir_for(k1, c, kir_int(k1, 0), kir_int(k1, W), 1, KIR_LOOP_VECTOR);
    kir_append(k1, lc, kir_decl(k1, iv, kir_add(k1, kir_var(k1, rb), kir_var(k1, c))));
    kir_append(k1, lc, kir_store(k1, o, kir_var(k1, iv), kir_add(k1, kir_load(k1, xb, kir_var(k1, iv)), kir_load(k1, bb, kir_var(k1, c)))));
    kir_append(k1, lr, lc);
    kir_append(k1, k1->body, lr);
    kir_sched_gpu(k0, 256, 0, 1);
    kir_sched_gpu(k1, 256, 3, 1);
    kir_kernel *ks[2] = {k0, k1};
    kf_str text;
    kf_str_init(&text);
    kir_launch geo[2];
    kf_err err = {0};
    int rc = kir_render_cuda(ks, 2, &text, geo, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    const char *t = text.data ? text.data : "";
    KF_CHECK(strstr(t, "4 per thread (16-byte accesses)") != NULL);
    KF_CHECK(strstr(t, "4 columns each (16-byte accesses)") != NULL);
    KF_CHECK(strstr(t, "*(const float4 *)(a + kf_vi0)") != NULL);
    KF_CHECK(strstr(t, "*(float4 *)(z + kf_vi0)") != NULL);   /* in place: loaded, then stored */
    KF_CHECK(strstr(t, "b[(i % 7)]") != NULL);                /* the broadcast stays scalar */
    KF_CHECK(strstr(t, "*(const float4 *)(bias + kf_vi1)") != NULL);
    kf_str_free(&text);
    if (!g_gpu) {
        kir_kernel_free(k0);
        kir_kernel_free(k1);
        KF_SKIP("no GPU here: %s", g_no_gpu);
    }
    tprog tp;
    tp_init(&tp);
    tp_kir(&tp, ks, 2, geo);
    vec_data d;
    int ty = tp_buf(&tp, "y", KF_BUF_OUTPUT, KF_F32, N);
    d.a = tp_buf(&tp, "a", KF_BUF_INPUT, KF_F32, N);
    d.b = tp_buf(&tp, "b", KF_BUF_INPUT, KF_F32, 7);
    d.z = tp_buf(&tp, "z", KF_BUF_SCRATCH, KF_F32, N);
    int to = tp_buf(&tp, "o", KF_BUF_OUTPUT, KF_F32, R * W);
    d.x = tp_buf(&tp, "x", KF_BUF_INPUT, KF_F32, R * W);
    d.bias = tp_buf(&tp, "bias", KF_BUF_INPUT, KF_F32, W);
    tp_launch(&tp, 0, (kf_karg[]){PTR(ty), PTR(d.a), PTR(d.b), PTR(d.z)}, 4, &geo[0]);
    tp_launch(&tp, 1, (kf_karg[]){PTR(to), PTR(d.x), PTR(d.bias)}, 3, &geo[1]);
    gcase gc;
    float z0[N];
    kf_status s = gc_start(&gc, &tp.p, vec_init, &d, 60, &err);
    if (s == KF_ST_VERIFIED) memcpy(z0, F32(gc, d.z), sizeof z0);
    if (s == KF_ST_VERIFIED) s = gc_run(&gc, &err);
    KF_CHECK_MSG(s == KF_ST_VERIFIED, "%s: %s", kf_status_name(s), err.msg);
    if (s == KF_ST_VERIFIED) {
        const float *av = F32(gc, d.a), *bv = F32(gc, d.b), *xv = F32(gc, d.x), *biv = F32(gc, d.bias);
        int bad = 0;
        for (int q = 0; q < N; q++) {
            bad += F32(gc, ty)[q] != av[q] * 2.0f + bv[q % 7];
            bad += F32(gc, d.z)[q] != z0[q] + av[q];
        }
        for (int q = 0; q < R * W; q++) bad += F32(gc, to)[q] != xv[q] + biv[q % W];
        KF_CHECK_EQ_INT(bad, 0);
        int what = 0;
        KF_CHECK_MSG(gc_guards_ok(&gc, &what, &err), "%s", err.msg);
    }
    gc_end(&gc);
    tp_free(&tp);
    kir_kernel_free(k0);
    kir_kernel_free(k1);
}

/* On the GPU: one kernel with two split nests that group the blocks differently (5 rows,
 * then 3), run in a serial loop twice; each has a group barrier between the statistics'
 * stores and the pass that reads them back. Both agree with C. */
static void test_gpu_split_rows(void) {
    enum { N1 = 4, C1 = 5, HW1 = 40000, N2 = 20, C2 = 3, HW2 = 8000 };
    kir_kernel *k = kir_kernel_new("bn2");
    int y1 = kir_add_buf(k, "y", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0), st1 = kir_add_buf(k, "st", KF_F32, 1);
    int y2 = kir_add_buf(k, "y2", KF_F32, 1), st2 = kir_add_buf(k, "st2", KF_F32, 1);
    k_bnstats_nest(k, y1, x, st1, N1, C1, HW1);
    k_bnstats_nest(k, y2, x, st2, N2, C2, HW2);
    /* both nests inside a serial loop run twice */
    int it = kir_add_var(k, "it", KIR_T_I64);
    kir_stmt *loop = kir_for(k, it, kir_int(k, 0), kir_int(k, 2), 1, KIR_LOOP_SERIAL);
    for (int i = 0; i < k->body->n_body; i++) kir_append(k, loop, k->body->body[i]);
    k->body->n_body = 0;
    kir_append(k, k->body, loop);
    KF_CHECK_EQ_INT(kir_sched_gpu(k, 256, 3, 0), 2);
    tprog t;
    tp_init(&t);
    kir_launch geo;
    kir_kernel *ks[1] = {k};
    tp_kir(&t, ks, 1, &geo);
    KF_CHECK(strstr(t.text, "kf_gred_add_f64") != NULL);
    KF_CHECK_EQ_INT(geo.grid_sync, 1);
    if (g_nvrtc && !g_gpu) { /* compile only */
        kf_kparam_kind kinds[5] = {KF_KP_PTR, KF_KP_PTR, KF_KP_PTR, KF_KP_PTR, KF_KP_PTR};
        tprog tc;
        tp_init(&tc);
        tp_source(&tc, t.text);
        tp_kernel(&tc, "bn2", kinds, 5);
        kf_build_opts o = opts();
        kf_build b = {0};
        kf_err e = {0};
        int rc = T->build(&tc.p, &o, &b, &e);
        KF_CHECK_MSG(rc == 0, "%s\n%s", e.msg, b.log ? b.log : "");
        kf_build_free(&b);
        tp_free(&tc);
    }
    if (!g_gpu) {
        tp_free(&t);
        kir_kernel_free(k);
        KF_SKIP("no GPU here: %s", g_no_gpu);
    }
    int64_t nx = (int64_t)N1 * C1 * HW1;
    int xb = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, nx), yb = tp_buf(&t, "y", KF_BUF_OUTPUT, KF_F32, nx);
    int sb = tp_buf(&t, "st", KF_BUF_OUTPUT, KF_F32, 2 * C1), y2b = tp_buf(&t, "y2", KF_BUF_OUTPUT, KF_F32, nx);
    int s2b = tp_buf(&t, "st2", KF_BUF_OUTPUT, KF_F32, 2 * C2);
    tp_launch(&t, 0, (kf_karg[]){PTR(yb), PTR(xb), PTR(sb), PTR(y2b), PTR(s2b)}, 5, &geo);
    coop_data d = {xb, nx};
    gcase c;
    kf_err err = {0};
    kf_status s = gc_start(&c, &t.p, coop_init, &d, 60, &err);
    if (s == KF_ST_VERIFIED) s = gc_run(&c, &err);
    KF_CHECK_MSG(s == KF_ST_VERIFIED, "%s: %s", kf_status_name(s), err.msg);
    if (s == KF_ST_VERIFIED) {
        double *ref = malloc(sizeof(double) * (size_t)nx), stats[2 * C1];
        bnstats_ref(F32(c, xb), N1, C1, HW1, stats, ref);
        KF_CHECK_EQ_INT(mismatches(F32(c, sb), stats, 2 * C1, 1e-5), 0);
        KF_CHECK_EQ_INT(mismatches(F32(c, yb), ref, nx, 1e-4), 0);
        bnstats_ref(F32(c, xb), N2, C2, HW2, stats, ref);
        KF_CHECK_EQ_INT(mismatches(F32(c, s2b), stats, 2 * C2, 1e-5), 0);
        KF_CHECK_EQ_INT(mismatches(F32(c, y2b), ref, (int64_t)N2 * C2 * HW2, 1e-4), 0);
        free(ref);
        int what = 0;
        KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
    }
    gc_end(&c);
    tp_free(&t);
    kir_kernel_free(k);
}

/* ---- cases on the GPU ---- */

typedef struct ew_data { int x; int64_t n; } ew_data;

static void ew_init(kf_arena *a, void *u) {
    const ew_data *d = u;
    float *x = (float *)a->slots[d->x].data;
    fill(x, d->n, 7);
    x[0] = 0.0f;
    x[1] = -20.0f;
    x[2] = 20.0f;
}

static void test_gpu_kir_kernels(void) {
    NEED_GPU();
    enum { N = 100003, R = 100, C = 777, MM = 96, MN = 64, MK = 37 }; /* every read of x below N */
    kir_kernel *ks[3] = {k_ew(N), k_center(R, C), k_mm(MM, MN, MK)};
    tprog t;
    tp_init(&t);
    kir_launch geo[3];
    tp_kir(&t, ks, 3, geo);
    int y = tp_buf(&t, "y", KF_BUF_OUTPUT, KF_F32, N), x = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, N);
    int cy = tp_buf(&t, "cy", KF_BUF_SCRATCH, KF_F32, R * C), ct = tp_buf(&t, "ct", KF_BUF_SCRATCH, KF_F32, R);
    int mc = tp_buf(&t, "mc", KF_BUF_SCRATCH, KF_F32, MM * MN);
    tp_launch(&t, 0, (kf_karg[]){PTR(y), PTR(x)}, 2, &geo[0]);
    tp_launch(&t, 1, (kf_karg[]){PTR(cy), PTR(x), PTR(ct)}, 3, &geo[1]);
    tp_launch(&t, 2, (kf_karg[]){PTR(mc), PTR(x), PTR(x)}, 3, &geo[2]);
    ew_data d = {x, N};
    gcase c;
    kf_err err = {0};
    kf_status st = gc_start(&c, &t.p, ew_init, &d, 60, &err);
    if (st == KF_ST_VERIFIED) st = gc_run(&c, &err);
    KF_CHECK_EQ_INT(st, KF_ST_VERIFIED);
    if (st == KF_ST_VERIFIED) {
        const float *xv = F32(c, x);
        double *ref = malloc(sizeof(double) * (N > R * C ? N : R * C));
        for (int64_t i = 0; i < N; i++) {
            double v = xv[i];
            ref[i] = tanh(v) * exp(-v * v) + 1.0 / (1.0 + exp(-v));
        }
        KF_CHECK_EQ_INT(mismatches(F32(c, y), ref, N, 1e-5), 0);
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int k = 0; k < C; k++) s += xv[r * C + k];
            for (int k = 0; k < C; k++) ref[r * C + k] = xv[r * C + k] - (double)(float)s / C;
        }
        KF_CHECK_EQ_INT(mismatches(F32(c, cy), ref, R * C, 1e-5), 0);
        for (int m = 0; m < MM; m++)
            for (int n = 0; n < MN; n++) {
                double acc = 0;
                for (int k = 0; k < MK; k++) acc += (double)((float)xv[m * MK + k] * xv[k * MN + n]);
                ref[m * MN + n] = acc;
            }
        KF_CHECK_EQ_INT(mismatches(F32(c, mc), ref, MM * MN, 1e-5), 0);
        free(ref);
        int what = 0;
        KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
        /* timing: events around the plan (a graph replay), after an L2 flush */
        double ms[20];
        kf_outcome oc = {0};
        KF_CHECK_EQ_INT(kf_worker_time(&c.w, 20, ms, &oc, &err), 0);
        KF_CHECK_EQ_INT(oc.status, KF_ST_VERIFIED);
        int pos = 0;
        for (int i = 0; i < 20; i++) pos += ms[i] > 0 && ms[i] < 1000;
        KF_CHECK_EQ_INT(pos, 20);
        fprintf(stderr, "  plan time: %.4f ms (first of 20)\n", ms[0]);
        kf_outcome_clear(&oc);
    }
    gc_end(&c);
    tp_free(&t);
    for (int i = 0; i < 3; i++) kir_kernel_free(ks[i]);
}

typedef struct gemm_data { int a, b, x; int64_t na, nb; } gemm_data;

static void gemm_init(kf_arena *ar, void *u) {
    const gemm_data *d = u;
    fill((float *)ar->slots[d->a].data, d->na, 11);
    fill((float *)ar->slots[d->b].data, d->nb, 12);
    fill((float *)ar->slots[d->x].data, 1000, 13);
}

/* gemm (batched, with transposes), copy and fill steps against plain loops. */
static void test_gpu_steps(void) {
    NEED_GPU();
    enum { BT = 3, M = 67, N = 45, K = 33 };
    tprog t;
    tp_init(&t);
    tp_source(&t, "/* no kernels of its own */\n");
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, BT * M * K), b = tp_buf(&t, "b", KF_BUF_PARAM, KF_F32, BT * K * N);
    int c1 = tp_buf(&t, "c1", KF_BUF_OUTPUT, KF_F32, BT * M * N), c2 = tp_buf(&t, "c2", KF_BUF_SCRATCH, KF_F32, M * N);
    int x = tp_buf(&t, "x", KF_BUF_SCRATCH, KF_F32, 1000), f = tp_buf(&t, "f", KF_BUF_SCRATCH, KF_I64, 77);
    int h = tp_buf(&t, "h", KF_BUF_SCRATCH, KF_F16, 33);
    t.bufs[b].param = (char *)"p0";
    kf_step *s = tp_step(&t, KF_STEP_GEMM); /* c1[i] = a[i] @ b[i] */
    s->a = a, s->b = b, s->c = c1, s->m = M, s->n = N, s->k = K, s->lda = K, s->ldb = N, s->ldc = N;
    s->batch = BT, s->stride_a = M * K, s->stride_b = K * N, s->stride_c = M * N, s->beta = 0;
    s = tp_step(&t, KF_STEP_GEMM); /* c2 = 0.5 * a[0] @ b[0]^T viewed as [N,K]... as b^T: (K x N)^T */
    s->a = b, s->b = a, s->c = c2, s->m = N, s->n = M, s->k = K, s->trans_a = 1, s->trans_b = 1;
    s->lda = N, s->ldb = K, s->ldc = M, s->alpha = 0.5, s->beta = 0;
    s = tp_step(&t, KF_STEP_FILL);
    s->dst = f, s->value = -7;
    s = tp_step(&t, KF_STEP_FILL);
    s->dst = h, s->value = 1.5;
    s = tp_step(&t, KF_STEP_COPY); /* x[100..199] = x[0..99], within one buffer */
    s->src = x, s->dst = x, s->src_offset = 0, s->dst_offset = 400, s->bytes = 400;
    gemm_data d = {a, b, x, BT * M * K, BT * K * N};
    gcase c;
    kf_err err = {0};
    kf_status st = gc_start(&c, &t.p, gemm_init, &d, 60, &err);
    float x0[1000];
    memcpy(x0, F32(c, x), sizeof x0);
    if (st == KF_ST_VERIFIED) st = gc_run(&c, &err);
    KF_CHECK_EQ_INT(st, KF_ST_VERIFIED);
    if (st == KF_ST_VERIFIED) {
        const float *av = F32(c, a), *bv = F32(c, b);
        static double ref[BT * M * N];
        for (int i = 0; i < BT; i++)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++) acc += (double)av[(i * M + m) * K + k] * bv[(i * K + k) * N + n];
                    ref[(i * M + m) * N + n] = acc;
                }
        KF_CHECK_EQ_INT(mismatches(F32(c, c1), ref, BT * M * N, 1e-5), 0);
        for (int n = 0; n < N; n++) /* c2[n][m] = 0.5 * sum_k b[k][n] a[m][k] */
            for (int m = 0; m < M; m++) {
                double acc = 0;
                for (int k = 0; k < K; k++) acc += (double)bv[k * N + n] * av[m * K + k];
                ref[n * M + m] = 0.5 * acc;
            }
        KF_CHECK_EQ_INT(mismatches(F32(c, c2), ref, M * N, 1e-5), 0);
        const int64_t *fv = (const int64_t *)c.arena.slots[f].data;
        const uint16_t *hv = (const uint16_t *)c.arena.slots[h].data;
        int bad = 0;
        for (int i = 0; i < 77; i++) bad += fv[i] != -7;
        for (int i = 0; i < 33; i++) bad += hv[i] != 0x3E00; /* 1.5 in float16 */
        for (int i = 0; i < 100; i++) bad += F32(c, x)[100 + i] != x0[i] || F32(c, x)[i] != x0[i];
        KF_CHECK_EQ_INT(bad, 0);
        int what = 0;
        KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
    }
    gc_end(&c);
    tp_free(&t);
}

/* cuBLASLt's entry points resolve where the library is installed (no GPU needed). */
static void test_cublaslt_symbols(void) {
    kf_cublaslt_api L;
    kf_err err = {0};
    if (kf_cublaslt_load(&L, &err) != 0) {
        if (strstr(err.msg, "cannot load")) KF_SKIP("%s", err.msg);
        KF_CHECK_MSG(0, "%s", err.msg);
        return;
    }
    KF_CHECK(L.Matmul != NULL && L.GetHeuristic != NULL && L.CapGetAttribute != NULL);
    kf_cublaslt_unload(&L);
    /* a path that does not load: a clear message naming the variable */
    setenv("KFORGE_CUBLASLT", "/nonexistent/libcublasLt.so", 1);
    kf_err_clear(&err);
    KF_CHECK(kf_cublaslt_load(&L, &err) != 0);
    KF_CHECK_MSG(strstr(err.msg, "KFORGE_CUBLASLT") != NULL, "%s", err.msg);
    unsetenv("KFORGE_CUBLASLT");
}

/* Lines of the gemm choice log holding needle. */
static int log_count(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

typedef struct lt_data { int in[6]; int64_t n[6]; } lt_data;

static void lt_init(kf_arena *ar, void *u) {
    const lt_data *d = u;
    for (int i = 0; i < 6; i++)
        if (d->n[i]) fill((float *)ar->slots[d->in[i]].data, d->n[i], 21 + (unsigned)i);
}

/* ref[b][m][n] = alpha * sum_k opA[b][m][k] opB[b][k][n] + beta * c0[b][m][n] (row-major, lds). */
static void ref_gemm(const kf_step *s, const float *a, const float *b, const float *c0, double *ref) {
    for (int64_t i = 0; i < s->batch; i++)
        for (int64_t m = 0; m < s->m; m++)
            for (int64_t n = 0; n < s->n; n++) {
                double acc = 0;
                for (int64_t k = 0; k < s->k; k++) {
                    double x = a[i * s->stride_a + (s->trans_a ? k * s->lda + m : m * s->lda + k)];
                    double y = b[i * s->stride_b + (s->trans_b ? n * s->ldb + k : k * s->ldb + n)];
                    acc += x * y;
                }
                int64_t o = i * s->stride_c + m * s->ldc + n;
                ref[o] = s->alpha * acc + (s->beta != 0 ? s->beta * (double)c0[o] : 0.0);
            }
}

/* gemm steps through cuBLASLt ($KFORGE_CUDA_GEMM=lt), the default choice (Lt or plain cuBLAS,
 * whichever measured faster) and the fallback when cuBLASLt cannot be loaded: transposes,
 * batches (one with a broadcast operand), alpha/beta with a padded leading dimension, odd
 * sizes, a long-k gemm (split-K candidates), against double loops; the choice is made once at
 * bind (the log gets no line from runs or timing), steps of the same shape reuse it, and the
 * timed runs are a CUDA graph replay ($KFORGE_CUDA_GRAPH=require). */
static void test_gpu_gemm_lt(void) {
    NEED_GPU();
    enum { BT = 3, M = 67, N = 45, K = 33, LK = 4096, LM = 64, PL = 40 };
    char logp[96];
    snprintf(logp, sizeof logp, "%s_gemm.log", g_cache);
    setenv("KFORGE_GEMM_LOG", logp, 1);
    setenv("KFORGE_CUDA_GRAPH", "require", 1);
    const char *modes[3] = {"lt", "", "fallback"};
    for (int mi = 0; mi < 3; mi++) {
        fprintf(stderr, "  mode %s\n", mi == 1 ? "default" : modes[mi]);
        unlink(logp);
        if (mi == 2) setenv("KFORGE_CUBLASLT", "/nonexistent/libcublasLt.so", 1);
        else unsetenv("KFORGE_CUBLASLT");
        setenv("KFORGE_CUDA_GEMM", modes[mi], 1);
        tprog t;
        tp_init(&t);
        tp_source(&t, "/* no kernels of its own */\n");
        int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, BT * M * K), b = tp_buf(&t, "b", KF_BUF_PARAM, KF_F32, BT * K * N);
        int c1 = tp_buf(&t, "c1", KF_BUF_OUTPUT, KF_F32, BT * M * N), c2 = tp_buf(&t, "c2", KF_BUF_OUTPUT, KF_F32, M * N);
        int c3 = tp_buf(&t, "c3", KF_BUF_INPUT, KF_F32, M * PL), c4 = tp_buf(&t, "c4", KF_BUF_OUTPUT, KF_F32, BT * M * N);
        int la = tp_buf(&t, "la", KF_BUF_INPUT, KF_F32, LM * LK), lb = tp_buf(&t, "lb", KF_BUF_PARAM, KF_F32, LM * LK);
        int c5 = tp_buf(&t, "c5", KF_BUF_OUTPUT, KF_F32, LM * LM), c6 = tp_buf(&t, "c6", KF_BUF_OUTPUT, KF_F32, BT * M * N);
        t.bufs[b].param = (char *)"p0";
        t.bufs[lb].param = (char *)"p1";
        kf_step *s = tp_step(&t, KF_STEP_GEMM); /* 0: c1[i] = a[i] @ b[i] */
        s->a = a, s->b = b, s->c = c1, s->m = M, s->n = N, s->k = K, s->lda = K, s->ldb = N, s->ldc = N;
        s->batch = BT, s->stride_a = M * K, s->stride_b = K * N, s->stride_c = M * N;
        s = tp_step(&t, KF_STEP_GEMM); /* 1: c2 = 0.5 * (b[0] as K x N)^T-ish: op(A) = A^T, op(B) = B^T */
        s->a = b, s->b = a, s->c = c2, s->m = N, s->n = M, s->k = K, s->trans_a = 1, s->trans_b = 1;
        s->lda = N, s->ldb = K, s->ldc = M, s->alpha = 0.5;
        s = tp_step(&t, KF_STEP_GEMM); /* 2: c3[:, :N] = 2 a[0] @ b[0] + 0.75 c3 (ldc padded to PL) */
        s->a = a, s->b = b, s->c = c3, s->m = M, s->n = N - 10, s->k = K, s->lda = K, s->ldb = N, s->ldc = PL;
        s->alpha = 2.0, s->beta = 0.75;
        s = tp_step(&t, KF_STEP_GEMM); /* 3: same shape as 0: reuses its choice */
        t.steps[3] = t.steps[0];
        s->c = c4;
        s = tp_step(&t, KF_STEP_GEMM); /* 4: c5 = la @ lb^T, k = 4096 (a linear layer's shape) */
        s->a = la, s->b = lb, s->c = c5, s->m = LM, s->n = LM, s->k = LK, s->trans_b = 1;
        s->lda = LK, s->ldb = LK, s->ldc = LM;
        s = tp_step(&t, KF_STEP_GEMM); /* 5: c6[i] = a[i] @ b[0]: the weight broadcast (stride 0) */
        t.steps[5] = t.steps[0];
        s->c = c6, s->stride_b = 0;
        lt_data d = {{a, b, c3, la, lb, 0}, {BT * M * K, BT * K * N, M * PL, LM * LK, LM * LK, 0}};
        gcase c;
        kf_err err = {0};
        kf_status st = gc_start(&c, &t.p, lt_init, &d, 120, &err);
        int tuned = log_count(logp, "tuned:"), reused = log_count(logp, "reuses its choice");
        int lt_chosen = log_count(logp, "tuned: cuBLASLt"), fallback = log_count(logp, "cuBLASLt not used");
        float c3_0[M * PL];
        memcpy(c3_0, F32(c, c3), sizeof c3_0);
        for (int r = 0; r < 3 && st == KF_ST_VERIFIED; r++) { /* c3 is read (beta): the same start each run */
            memcpy(F32(c, c3), c3_0, sizeof c3_0);
            st = gc_run(&c, &err);
        }
        KF_CHECK_MSG(st == KF_ST_VERIFIED, "%s: %s", kf_status_name(st), c.oc.message ? c.oc.message : err.msg);
        if (st == KF_ST_VERIFIED) {
            double *ref = malloc(sizeof(double) * BT * M * N * 2);
            const float *av = F32(c, a), *bv = F32(c, b);
            ref_gemm(&t.steps[0], av, bv, NULL, ref);
            KF_CHECK_EQ_INT(mismatches(F32(c, c1), ref, BT * M * N, 1e-5), 0);
            KF_CHECK_EQ_INT(mismatches(F32(c, c4), ref, BT * M * N, 1e-5), 0);
            ref_gemm(&t.steps[1], bv, av, NULL, ref);
            KF_CHECK_EQ_INT(mismatches(F32(c, c2), ref, M * N, 1e-5), 0);
            for (int i = 0; i < M * PL; i++) ref[i] = c3_0[i]; /* the padding columns stay */
            ref_gemm(&t.steps[2], av, bv, c3_0, ref);
            KF_CHECK_EQ_INT(mismatches(F32(c, c3), ref, M * PL, 1e-5), 0);
            ref_gemm(&t.steps[5], av, bv, NULL, ref);
            KF_CHECK_EQ_INT(mismatches(F32(c, c6), ref, BT * M * N, 1e-5), 0);
            free(ref);
            ref = malloc(sizeof(double) * LM * LM);
            ref_gemm(&t.steps[4], F32(c, la), F32(c, lb), NULL, ref);
            KF_CHECK_EQ_INT(mismatches(F32(c, c5), ref, LM * LM, 1e-4), 0);
            free(ref);
            int what = 0;
            KF_CHECK_MSG(gc_guards_ok(&c, &what, &err), "%s", err.msg);
            double ms[5];
            kf_outcome oc = {0};
            KF_CHECK_MSG(kf_worker_time(&c.w, 5, ms, &oc, &err) == 0 && oc.status == KF_ST_VERIFIED, "%s",
                         oc.message ? oc.message : err.msg);
            fprintf(stderr, "  plan time: %.4f ms\n", ms[4]);
            kf_outcome_clear(&oc);
        }
        /* chosen once, at bind: steps 0, 1, 2, 4, 5 measured, step 3 takes step 0's choice */
        KF_CHECK_EQ_INT(tuned, 5);
        KF_CHECK_EQ_INT(reused, 1);
        KF_CHECK_EQ_INT(log_count(logp, "tuned:"), tuned);
        KF_CHECK_EQ_INT(log_count(logp, "reuses its choice"), reused);
        if (mi == 0) { /* plain cuBLAS only where no Lt algorithm applied */
            KF_CHECK_EQ_INT(log_count(logp, "tuned: cuBLAS "), log_count(logp, "cuBLASLt 0/"));
            KF_CHECK(lt_chosen >= 3);
        }
        if (mi == 2) {
            KF_CHECK_EQ_INT(fallback, 1);
            KF_CHECK_EQ_INT(lt_chosen, 0);
        }
        fprintf(stderr, "  %d of 5 shapes chose cuBLASLt\n", lt_chosen);
        if (mi == 1) { /* show the choices */
            FILE *f = fopen(logp, "r");
            char line[1024];
            while (f && fgets(line, sizeof line, f)) fprintf(stderr, "    %s", line);
            if (f) fclose(f);
        }
        gc_end(&c);
        tp_free(&t);
    }
    unlink(logp);
    unsetenv("KFORGE_GEMM_LOG");
    unsetenv("KFORGE_CUDA_GRAPH");
    unsetenv("KFORGE_CUDA_GEMM");
    unsetenv("KFORGE_CUBLASLT");
}

/* ---- the bad-program suite on the GPU ---- */

static kf_status bad_run(const char *src, const char *kernel, double timeout_s, int *guard_what, char *msg, size_t n) {
    tprog t;
    tp_init(&t);
    tp_source(&t, src);
    tp_kernel(&t, kernel, (kf_kparam_kind[]){KF_KP_PTR, KF_KP_PTR, KF_KP_I64}, 3);
    int x = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, 128), y = tp_buf(&t, "y", KF_BUF_OUTPUT, KF_F32, 128);
    kir_launch geo = {{1, 1, 1}, {128, 1, 1}, 0, 0};
    tp_launch(&t, 0, (kf_karg[]){PTR(x), PTR(y), I64(128)}, 3, &geo);
    ew_data d = {x, 128};
    gcase c;
    kf_err err = {0};
    kf_status st = gc_start(&c, &t.p, ew_init, &d, timeout_s, &err);
    if (st == KF_ST_VERIFIED) st = gc_run(&c, &err);
    if (msg) snprintf(msg, n, "%s", c.oc.message ? c.oc.message : err.msg);
    if (guard_what) {
        *guard_what = 0;
        if (st == KF_ST_VERIFIED && !gc_guards_ok(&c, guard_what, &err)) snprintf(msg, n, "%s", err.msg);
    }
    gc_end(&c);
    tp_free(&t);
    return st;
}

static const char src_good[] =
    "extern \"C\" __global__ void relu(const float *x, float *y, long long n) {\n"
    "    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "    if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
    "}\n";

static void test_gpu_bad_programs(void) {
    NEED_GPU();
    char msg[1200];
    int what = 0;
    kf_status st = bad_run(src_good, "relu", 30, &what, msg, sizeof msg);
    KF_CHECK_MSG(st == KF_ST_VERIFIED && what == 0, "%s: %s", kf_status_name(st), msg);
    /* writes 4 elements past the end of y: the guard bytes after y, downloaded, show it */
    st = bad_run("extern \"C\" __global__ void relu(const float *x, float *y, long long n) {\n"
                 "    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                 "    if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
                 "    if (i < 4) y[n + i] = 1.0f;\n"
                 "}\n", "relu", 30, &what, msg, sizeof msg);
    KF_CHECK_EQ_INT(st, KF_ST_VERIFIED);
    KF_CHECK_EQ_INT(what, 1);
    KF_CHECK_MSG(strstr(msg, "guard bytes after buffer 'y'") != NULL, "%s", msg);
    fprintf(stderr, "  out of bounds: %s\n", msg);
    /* a write through a wild pointer: an illegal address, contained in the worker */
    st = bad_run("extern \"C\" __global__ void relu(const float *x, float *y, long long n) {\n"
                 "    float *wild = (float *)(0x7f0000000000ull + 4096ull * threadIdx.x);\n"
                 "    wild[0] = x[threadIdx.x];\n"
                 "}\n", "relu", 30, NULL, msg, sizeof msg);
    KF_CHECK_EQ_INT(st, KF_ST_CRASHED);
    KF_CHECK_MSG(strstr(msg, "ILLEGAL_ADDRESS") != NULL || strstr(msg, "illegal") != NULL, "%s", msg);
    fprintf(stderr, "  wild pointer: %s: %s\n", kf_status_name(st), msg);
    /* a kernel that never ends: stopped by the time limit */
    st = bad_run("extern \"C\" __global__ void relu(const float *x, float *y, long long n) {\n"
                 "    for (;;) if (*(volatile const float *)x == 12345.0f) break;\n"
                 "    y[threadIdx.x] = 0.0f;\n"
                 "}\n", "relu", 4, NULL, msg, sizeof msg);
    KF_CHECK_EQ_INT(st, KF_ST_TIMEOUT);
    fprintf(stderr, "  never returns: %s: %s\n", kf_status_name(st), msg);
    /* the GPU still works after all that */
    st = bad_run(src_good, "relu", 30, &what, msg, sizeof msg);
    KF_CHECK_MSG(st == KF_ST_VERIFIED && what == 0, "%s: %s", kf_status_name(st), msg);
    /* does not compile; compiles but the kernel is not extern "C" (so not found by name) */
    st = bad_run("extern \"C\" __global__ void relu(const float *x, float *y, long long n) { y[0] = ; }\n",
                 "relu", 30, NULL, msg, sizeof msg);
    KF_CHECK_EQ_INT(st, KF_ST_COMPILE_ERROR);
    st = bad_run("__global__ void relu(const float *x, float *y, long long n) { y[0] = x[0]; }\n", "relu", 30,
                 NULL, msg, sizeof msg);
    KF_CHECK_EQ_INT(st, KF_ST_COMPILE_ERROR);
    KF_CHECK_MSG(strstr(msg, "extern \"C\"") != NULL, "%s", msg);
}

int main(void) {
    snprintf(g_cache, sizeof g_cache, "/tmp/kf_test_cuda_%ld", (long)getpid());
    T = kf_target_find("cuda");
    if (!T) {
        fprintf(stderr, "no cuda target registered\n");
        return 1;
    }
    kf_err err = {0};
    g_gpu = T->available(&err) == 0;
    if (!g_gpu) snprintf(g_no_gpu, sizeof g_no_gpu, "%s", err.msg);
    g_nvrtc = g_gpu;
    if (!g_gpu) { /* compile-only checks need NVRTC and an architecture to compile for */
        if (!getenv("KFORGE_CUDA_ARCH")) setenv("KFORGE_CUDA_ARCH", "sm_90", 1);
        tprog t;
        tp_init(&t);
        tp_source(&t, src_good);
        kf_build_opts o = opts();
        kf_build b = {0};
        kf_err_clear(&err);
        g_nvrtc = T->build(&t.p, &o, &b, &err) == 0;
        if (!g_nvrtc) snprintf(g_no_nvrtc, sizeof g_no_nvrtc, "%s", err.msg);
        kf_build_free(&b);
        tp_free(&t);
    }
    KF_RUN(test_unavailable_message);
    KF_RUN(test_render_text);
    KF_RUN(test_compile_and_cache);
    KF_RUN(test_lowered_linear_softmax);
    KF_RUN(test_lowered_matmul_tail);
    KF_RUN(test_lowered_conv_tiled);
    KF_RUN(test_lowered_gemm_softmax);
    KF_RUN(test_coop_render);
    KF_RUN(test_split_choice);
    KF_RUN(test_lowered_problems_compile);
    KF_RUN(test_gpu_coop_rows);
    KF_RUN(test_gpu_split_rows);
    KF_RUN(test_gpu_vec4);
    KF_RUN(test_gpu_kir_kernels);
    KF_RUN(test_cublaslt_symbols);
    KF_RUN(test_gpu_steps);
    KF_RUN(test_gpu_gemm_lt);
    KF_RUN(test_gpu_bad_programs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_cache);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_cache);
    return kf_test_report();
}
