/* test_cpu_target.c: the cpu target end to end: KIR kernels written by hand (broadcast add,
 * row sum with a DECL accumulator, argmax with two locals and SELECT, a tiled nest built with
 * substitution, elementwise ops with NaN/rounding/float16 edge cases) are rendered, built,
 * run on guarded slots and compared with plain C; plus compile errors, the build cache,
 * gemm/copy/fill steps, timing, bad plans, a missing compiler and a compiler timeout.
 * Programs are built as structs directly (no plan.json). */
#include "kf_test.h"
#include "kir/kir.h"
#include "targets/kf_target.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_cache[64];
static const kf_target_ops *T;

/* ---- programs as plain structs ---- */

typedef struct tprog {
    kf_program p;
    kf_source src[2];
    kf_pkernel kern[4];
    kf_kparam params[4][16];
    kf_pbuf bufs[16];
    kf_step steps[8];
    kf_karg args[8][16];
    char *text; /* owned source text */
} tprog;

static void tp_init(tprog *t) {
    memset(t, 0, sizeof *t);
    t->p.target = "cpu";
    t->p.agent = "test";
    t->p.sources = t->src;
    t->p.kernels = t->kern;
    t->p.bufs = t->bufs;
    t->p.steps = t->steps;
}

static void tp_source(tprog *t, const char *file, const char *text) {
    free(t->text);
    t->text = kf_strdup(text);
    t->src[0] = (kf_source){(char *)file, t->text};
    t->p.n_sources = 1;
}

/* Renders the kernels as the program's one source and declares them (one ptr per buffer). */
static int tp_kir(tprog *t, kir_kernel **ks, int n, const char **names) {
    kf_str s;
    kf_str_init(&s);
    kf_err err = {0};
    int rc = kir_render_c(ks, n, &s, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    tp_source(t, "kernels.c", kf_str_cstr(&s));
    kf_str_free(&s);
    for (int i = 0; i < n; i++) {
        kf_pkernel *pk = &t->kern[t->p.n_kernels];
        pk->name = (char *)names[i];
        pk->params = t->params[t->p.n_kernels];
        pk->n_params = ks[i]->n_bufs;
        for (int b = 0; b < ks[i]->n_bufs; b++) pk->params[b] = (kf_kparam){(char *)"p", KF_KP_PTR};
        t->p.n_kernels++;
    }
    return rc;
}

static int tp_buf(tprog *t, const char *name, kf_buf_role role, kf_dtype dt, int64_t numel) {
    kf_pbuf *b = &t->bufs[t->p.n_bufs];
    b->name = (char *)name;
    b->role = role;
    b->index = -1;
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

/* A launch of kernel with its pointer arguments bound to the given buffers, in order. */
static kf_step *tp_launch(tprog *t, int kernel, const int *bufs, int n) {
    int si = t->p.n_steps;
    kf_step *s = tp_step(t, KF_STEP_LAUNCH);
    s->kernel = kernel;
    s->args = t->args[si];
    s->n_args = n;
    for (int i = 0; i < n; i++) s->args[i] = (kf_karg){.kind = KF_KP_PTR, .buf = bufs[i]};
    return s;
}

static void tp_free(tprog *t) { free(t->text); }

/* ---- guarded slots ---- */

typedef struct tslots { kf_slot s[16]; int n; } tslots;

static void slots_alloc(tslots *sl, const kf_program *p) {
    sl->n = p->n_bufs;
    for (int i = 0; i < p->n_bufs; i++) {
        size_t n = p->bufs[i].nbytes;
        unsigned char *base = malloc(n + 2 * KF_GUARD_BYTES);
        memset(base, KF_GUARD_BYTE, KF_GUARD_BYTES);
        memset(base + KF_GUARD_BYTES, KF_POISON_BYTE, n);
        memset(base + KF_GUARD_BYTES + n, KF_GUARD_BYTE, KF_GUARD_BYTES);
        sl->s[i] = (kf_slot){base, base + KF_GUARD_BYTES, n};
    }
}

static int slots_guards_ok(const tslots *sl) {
    for (int i = 0; i < sl->n; i++)
        for (size_t j = 0; j < KF_GUARD_BYTES; j++)
            if (sl->s[i].base[j] != KF_GUARD_BYTE || sl->s[i].data[sl->s[i].nbytes + j] != KF_GUARD_BYTE)
                return 0;
    return 1;
}

static void slots_free(tslots *sl) {
    for (int i = 0; i < sl->n; i++) free(sl->s[i].base);
}

static kf_build_opts opts(void) {
    kf_build_opts o = {0};
    o.cache_dir = g_cache;
    o.threads = 2;
    o.timeout_s = 120;
    return o;
}

/* Builds, opens, binds and runs the program once; 0 or the first error. */
static int build_run(const tprog *t, tslots *sl, kf_err *err) {
    kf_build_opts o = opts();
    kf_build b = {0};
    int rc = T->build(&t->p, &o, &b, err);
    if (rc) {
        if (b.log) fprintf(stderr, "  compiler log:\n%s\n", b.log);
        kf_build_free(&b);
        return rc;
    }
    void *rt = NULL;
    rc = T->open(&t->p, &b, &o, &rt, err);
    if (!rc) rc = T->bind(rt, sl->s, sl->n, err);
    for (int i = 0; i < sl->n && !rc; i++) rc = T->upload(rt, i, err);
    if (!rc) rc = T->run(rt, err);
    for (int i = 0; i < sl->n && !rc; i++) rc = T->download(rt, i, err);
    if (rt) T->close(rt);
    kf_build_free(&b);
    return rc;
}

#define F32(sl, i) ((float *)(sl).s[i].data)

/* ---- kernels ---- */

/* out[i][j] = a[i][j] + b[j] over [R][C]. */
static kir_kernel *k_bcast(int64_t R, int64_t C) {
    kir_kernel *k = kir_kernel_new("bcast_add");
    int out = kir_add_buf(k, "out", KF_F32, 1), a = kir_add_buf(k, "a", KF_F32, 0);
    int b = kir_add_buf(k, "b", KF_F32, 0);
    int i = kir_add_var(k, "i", KIR_T_I64), j = kir_add_var(k, "j", KIR_T_I64);
    kir_stmt *li = kir_for(k, i, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_stmt *lj = kir_for(k, j, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_PARALLEL);
    kir_expr *flat = kir_add(k, kir_mul(k, kir_var(k, i), kir_int(k, C)), kir_var(k, j));
    kir_append(k, lj, kir_store(k, out, flat, kir_add(k, kir_load(k, a, flat), kir_load(k, b, kir_var(k, j)))));
    kir_append(k, li, lj);
    kir_append(k, k->body, li);
    return k;
}

static void test_available(void) {
    kf_err err = {0};
    int rc = T->available(&err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(kf_target_find("cpu") == T);
    KF_CHECK(kf_target_find("nope") == NULL);
    KF_CHECK(kf_target_find(NULL) == NULL);
    KF_CHECK_STR(T->name, "cpu");
}

static void test_bcast_add(void) {
    enum { R = 5, C = 7 };
    kir_kernel *k = k_bcast(R, C);
    tprog t;
    tp_init(&t);
    const char *names[] = {"bcast_add"};
    tp_kir(&t, &k, 1, names);
    int out = tp_buf(&t, "out", KF_BUF_OUTPUT, KF_F32, R * C);
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, R * C);
    int b = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, C);
    tp_launch(&t, 0, (int[]){out, a, b}, 3);
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int i = 0; i < R * C; i++) F32(sl, a)[i] = (float)i * 0.25f - 3;
    for (int j = 0; j < C; j++) F32(sl, b)[j] = (float)j * -1.5f + 0.1f;
    kf_err err = {0};
    int rc = build_run(&t, &sl, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    int bad = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) bad += F32(sl, out)[i * C + j] != F32(sl, a)[i * C + j] + F32(sl, b)[j];
    KF_CHECK_EQ_INT(bad, 0);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

/* out[r] = sum_c x[r][c]: parallel rows, a DECL accumulator, a vector inner loop (reduction). */
static void test_row_sum(void) {
    enum { R = 9, C = 37 };
    kir_kernel *k = kir_kernel_new("row_sum");
    int out = kir_add_buf(k, "out", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0);
    int r = kir_add_var(k, "r", KIR_T_I64), c = kir_add_var(k, "c", KIR_T_I64);
    int acc = kir_add_var(k, "acc", KIR_T_F32);
    kir_stmt *lr = kir_for(k, r, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_append(k, lr, kir_decl(k, acc, kir_flt(k, 0, KIR_T_F32)));
    kir_stmt *lc = kir_for(k, c, kir_int(k, 0), kir_int(k, C), 1, KIR_LOOP_VECTOR);
    kir_expr *v = kir_load(k, x, kir_add(k, kir_mul(k, kir_var(k, r), kir_int(k, C)), kir_var(k, c)));
    kir_append(k, lc, kir_assign(k, acc, kir_add(k, kir_var(k, acc), v)));
    kir_append(k, lr, lc);
    kir_append(k, lr, kir_store(k, out, kir_var(k, r), kir_var(k, acc)));
    kir_append(k, k->body, lr);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"row_sum"});
    KF_CHECK(strstr(t.text, "reduction(+:acc)"));
    int bo = tp_buf(&t, "out", KF_BUF_OUTPUT, KF_F32, R), bx = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, R * C);
    tp_launch(&t, 0, (int[]){bo, bx}, 2);
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int i = 0; i < R * C; i++) F32(sl, bx)[i] = (float)((i * 7919) % 113) / 17.0f - 3.0f;
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    for (int i = 0; i < R; i++) {
        double ref = 0;
        for (int j = 0; j < C; j++) ref += F32(sl, bx)[i * C + j];
        KF_CHECK_NEAR(F32(sl, bo)[i], ref, 1e-4 + 1e-5 * fabs(ref));
    }
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

/* idx[r] = argmax_c x[r][c] like torch.argmax: first maximum, NaN counts as the maximum. */
static void test_argmax(void) {
    enum { R = 6, C = 11 };
    kir_kernel *k = kir_kernel_new("argmax_rows");
    int idx = kir_add_buf(k, "idx", KF_I64, 1), x = kir_add_buf(k, "x", KF_F32, 0);
    int r = kir_add_var(k, "r", KIR_T_I64), c = kir_add_var(k, "c", KIR_T_I64);
    int best = kir_add_var(k, "best", KIR_T_F32), bi = kir_add_var(k, "bi", KIR_T_I64);
    int better = kir_add_var(k, "better", KIR_T_BOOL);
    kir_stmt *lr = kir_for(k, r, kir_int(k, 0), kir_int(k, R), 1, KIR_LOOP_PARALLEL);
    kir_expr *row = kir_mul(k, kir_var(k, r), kir_int(k, C));
    kir_append(k, lr, kir_decl(k, best, kir_load(k, x, row)));
    kir_append(k, lr, kir_decl(k, bi, kir_int(k, 0)));
    kir_stmt *lc = kir_for(k, c, kir_int(k, 1), kir_int(k, C), 1, KIR_LOOP_SERIAL);
    kir_expr *v = kir_load(k, x, kir_add(k, kir_expr_clone(k, row), kir_var(k, c)));
    kir_expr *gt = kir_bin(k, KIR_GT, v, kir_var(k, best));
    kir_expr *nan_first = kir_bin(k, KIR_AND, kir_un(k, KIR_ISNAN, v),
                                  kir_un(k, KIR_NOT, kir_un(k, KIR_ISNAN, kir_var(k, best))));
    kir_append(k, lc, kir_decl(k, better, kir_bin(k, KIR_OR, gt, nan_first)));
    kir_append(k, lc, kir_assign(k, bi, kir_select(k, kir_var(k, better), kir_var(k, c), kir_var(k, bi))));
    kir_append(k, lc, kir_assign(k, best, kir_select(k, kir_var(k, better), v, kir_var(k, best))));
    kir_append(k, lr, lc);
    kir_append(k, lr, kir_store(k, idx, kir_var(k, r), kir_var(k, bi)));
    kir_append(k, k->body, lr);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"argmax_rows"});
    int bo = tp_buf(&t, "idx", KF_BUF_OUTPUT, KF_I64, R), bx = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, R * C);
    tp_launch(&t, 0, (int[]){bo, bx}, 2);
    tslots sl;
    slots_alloc(&sl, &t.p);
    float *xs = F32(sl, bx);
    for (int i = 0; i < R * C; i++) xs[i] = (float)((i * 37) % 23) - 11.0f;
    xs[1 * C + 4] = NAN;            /* row 1: NaN wins */
    xs[1 * C + 8] = NAN;            /* ... the first NaN */
    xs[2 * C + 0] = NAN;            /* row 2: NaN first */
    xs[3 * C + 2] = 100;            /* row 3: a tie, first wins */
    xs[3 * C + 9] = 100;
    for (int j = 0; j < C; j++) xs[4 * C + j] = -INFINITY; /* row 4: all equal -> 0 */
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    int64_t *got = (int64_t *)sl.s[bo].data;
    for (int i = 0; i < R; i++) {
        int64_t ref = 0;
        for (int j = 1; j < C; j++) {
            float a = xs[i * C + j], m = xs[i * C + ref];
            if (a > m || (isnan(a) && !isnan(m))) ref = j;
        }
        KF_CHECK_EQ_INT(got[i], ref);
    }
    KF_CHECK_EQ_INT(got[1], 4);
    KF_CHECK_EQ_INT(got[2], 0);
    KF_CHECK_EQ_INT(got[3], 2);
    KF_CHECK_EQ_INT(got[4], 0);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

/* out[j][i] = 2 * x[i][j] (a transpose) over [N][M], tiled 4x4 by substituting
 * i -> io*4+ii, j -> jo*4+jj into a guarded store; io, jo collapse, ii unrolls, jj is simd. */
static void test_tiled(void) {
    enum { N = 10, M = 7, TILE = 4 };
    kir_kernel *k = kir_kernel_new("tiled_t");
    int out = kir_add_buf(k, "out", KF_F32, 1), x = kir_add_buf(k, "x", KF_F32, 0);
    int i = kir_add_var(k, "i", KIR_T_I64), j = kir_add_var(k, "j", KIR_T_I64);
    int io = kir_add_var(k, "io", KIR_T_I64), jo = kir_add_var(k, "jo", KIR_T_I64);
    int ii = kir_add_var(k, "ii", KIR_T_I64), jj = kir_add_var(k, "jj", KIR_T_I64);
    kir_stmt *guard = kir_if(k, kir_bin(k, KIR_AND, kir_bin(k, KIR_LT, kir_var(k, i), kir_int(k, N)),
                                        kir_bin(k, KIR_LT, kir_var(k, j), kir_int(k, M))));
    kir_expr *src = kir_load(k, x, kir_add(k, kir_mul(k, kir_var(k, i), kir_int(k, M)), kir_var(k, j)));
    kir_append(k, guard, kir_store(k, out, kir_add(k, kir_mul(k, kir_var(k, j), kir_int(k, N)), kir_var(k, i)),
                                   kir_mul(k, src, kir_flt(k, 2, KIR_T_F32))));
    kir_subst_var(k, guard, i, kir_add(k, kir_mul(k, kir_var(k, io), kir_int(k, TILE)), kir_var(k, ii)));
    kir_subst_var(k, guard, j, kir_add(k, kir_mul(k, kir_var(k, jo), kir_int(k, TILE)), kir_var(k, jj)));
    kir_stmt *lio = kir_for(k, io, kir_int(k, 0), kir_int(k, (N + TILE - 1) / TILE), 1, KIR_LOOP_PARALLEL);
    kir_stmt *ljo = kir_for(k, jo, kir_int(k, 0), kir_int(k, (M + TILE - 1) / TILE), 1, KIR_LOOP_PARALLEL);
    kir_stmt *lii = kir_for(k, ii, kir_int(k, 0), kir_int(k, TILE), 1, KIR_LOOP_UNROLL);
    kir_stmt *ljj = kir_for(k, jj, kir_int(k, 0), kir_int(k, TILE), 1, KIR_LOOP_VECTOR);
    kir_append(k, ljj, guard);
    kir_append(k, lii, ljj);
    kir_append(k, ljo, lii);
    kir_append(k, lio, ljo);
    kir_append(k, k->body, lio);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"tiled_t"});
    KF_CHECK_MSG(strstr(t.text, "collapse(2)") && strstr(t.text, "#pragma GCC unroll 4") &&
                     strstr(t.text, "#pragma omp simd\n"), "%s", t.text);
    int bo = tp_buf(&t, "out", KF_BUF_OUTPUT, KF_F32, N * M), bx = tp_buf(&t, "x", KF_BUF_INPUT, KF_F32, N * M);
    tp_launch(&t, 0, (int[]){bo, bx}, 2);
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int q = 0; q < N * M; q++) F32(sl, bx)[q] = (float)q * 0.5f - 7;
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (int a = 0; a < N; a++)
        for (int b = 0; b < M; b++) bad += F32(sl, bo)[b * N + a] != 2 * F32(sl, bx)[a * M + b];
    KF_CHECK_EQ_INT(bad, 0);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

static float ref_rem(float a, float b) {
    float r = fmodf(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

static int same_f(float a, float b) { return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b)); }

/* Elementwise ops with edge cases: NaN-propagating max/min, half-to-even round, sign of NaN,
 * torch.remainder, sigmoid, and a float16 store/load round trip. */
static void test_elementwise_ops(void) {
    enum { N = 16 };
    const float A[N] = {1.5f, -2.5f, 0.5f, 2.5f, NAN, 3, -0.5f, INFINITY, -INFINITY, 0.1f, 65520, 1e-8f,
                        3e-8f, -7, 7, 0};
    const float B[N] = {2, NAN, -1, 2.5f, 1, NAN, 0.25f, 1, -3, 0.3f, 1, 2, 1, 3, -3, 1};
    kir_kernel *k = kir_kernel_new("ops");
    const char *onames[] = {"mx", "mn", "rnd", "sg", "rem", "sig", "back"};
    int o[7];
    for (int q = 0; q < 7; q++) o[q] = kir_add_buf(k, onames[q], KF_F32, 1);
    int h = kir_add_buf(k, "h", KF_F16, 1);
    int a = kir_add_buf(k, "a", KF_F32, 0), b = kir_add_buf(k, "b", KF_F32, 0);
    int i = kir_add_var(k, "i", KIR_T_I64), i2 = kir_add_var(k, "i", KIR_T_I64);
    kir_stmt *l = kir_for(k, i, kir_int(k, 0), kir_int(k, N), 1, KIR_LOOP_PARALLEL);
#define LA kir_load(k, a, kir_var(k, i))
#define LB kir_load(k, b, kir_var(k, i))
    kir_append(k, l, kir_store(k, o[0], kir_var(k, i), kir_bin(k, KIR_MAX, LA, LB)));
    kir_append(k, l, kir_store(k, o[1], kir_var(k, i), kir_bin(k, KIR_MIN, LA, LB)));
    kir_append(k, l, kir_store(k, o[2], kir_var(k, i), kir_un(k, KIR_ROUND, LA)));
    kir_append(k, l, kir_store(k, o[3], kir_var(k, i), kir_un(k, KIR_SIGN, LA)));
    kir_append(k, l, kir_store(k, o[4], kir_var(k, i), kir_bin(k, KIR_MOD, LA, LB)));
    kir_append(k, l, kir_store(k, o[5], kir_var(k, i), kir_un(k, KIR_SIGMOID, LA)));
    kir_append(k, l, kir_store(k, h, kir_var(k, i), LA));
#undef LA
#undef LB
    kir_stmt *l2 = kir_for(k, i2, kir_int(k, 0), kir_int(k, N), 1, KIR_LOOP_VECTOR);
    kir_append(k, l2, kir_store(k, o[6], kir_var(k, i2), kir_load(k, h, kir_var(k, i2))));
    kir_append(k, k->body, l);
    kir_append(k, k->body, l2);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"ops"});
    int args[10];
    for (int q = 0; q < 7; q++) args[q] = tp_buf(&t, onames[q], KF_BUF_OUTPUT, KF_F32, N);
    args[7] = tp_buf(&t, "h", KF_BUF_SCRATCH, KF_F16, N);
    args[8] = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, N);
    args[9] = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, N);
    tp_launch(&t, 0, args, 10);
    tslots sl;
    slots_alloc(&sl, &t.p);
    memcpy(sl.s[args[8]].data, A, sizeof A);
    memcpy(sl.s[args[9]].data, B, sizeof B);
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    for (int q = 0; q < N; q++) {
        float x = A[q], y = B[q];
        float mx = (isnan(x) || isnan(y)) ? NAN : fmaxf(x, y), mn = (isnan(x) || isnan(y)) ? NAN : fminf(x, y);
        KF_CHECK_MSG(same_f(F32(sl, args[0])[q], mx), "max %d: %g", q, F32(sl, args[0])[q]);
        KF_CHECK_MSG(same_f(F32(sl, args[1])[q], mn), "min %d: %g", q, F32(sl, args[1])[q]);
        KF_CHECK_MSG(same_f(F32(sl, args[2])[q], nearbyintf(x)), "round %d", q);
        KF_CHECK_MSG(same_f(F32(sl, args[3])[q], (float)((x > 0) - (x < 0))), "sign %d", q);
        KF_CHECK_MSG(same_f(F32(sl, args[4])[q], ref_rem(x, y)), "rem %d: %g", q, F32(sl, args[4])[q]);
        if (!isnan(x)) KF_CHECK_NEAR(F32(sl, args[5])[q], 1.0f / (1.0f + expf(-x)), 1e-7);
    }
    KF_CHECK(isnan(F32(sl, args[5])[4]));
    float *rnd = F32(sl, args[2]), *back = F32(sl, args[6]);
    KF_CHECK(rnd[0] == 2 && rnd[1] == -2 && rnd[2] == 0 && rnd[3] == 2 && signbit(rnd[6]));
    KF_CHECK(F32(sl, args[4])[13] == 2 && F32(sl, args[4])[14] == -2);
    KF_CHECK(F32(sl, args[3])[4] == 0); /* sign(NaN) = 0, as in ATen */
    const float H[N] = {1.5f, -2.5f, 0.5f, 2.5f, NAN, 3, -0.5f, INFINITY, -INFINITY, 0.0999755859375f,
                        INFINITY, 0, 5.9604644775390625e-08f, -7, 7, 0};
    for (int q = 0; q < N; q++) KF_CHECK_MSG(same_f(back[q], H[q]), "f16 %d: %.10g", q, back[q]);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

static void test_compile_error(void) {
    tprog t;
    tp_init(&t);
    tp_source(&t, "broken.c", "void broken(float *restrict o)\n{\n    o[0] = undefined_var;\n}\n");
    t.kern[0] = (kf_pkernel){"broken", t.params[0], 1};
    t.params[0][0] = (kf_kparam){"o", KF_KP_PTR};
    t.p.n_kernels = 1;
    int o = tp_buf(&t, "o", KF_BUF_OUTPUT, KF_F32, 1);
    tp_launch(&t, 0, &o, 1);
    kf_build_opts op = opts();
    kf_build b = {0};
    kf_err err = {0};
    int rc = T->build(&t.p, &op, &b, &err);
    KF_CHECK_EQ_INT(rc, KF_E_COMPILE);
    KF_CHECK_MSG(strstr(err.msg, "undefined_var") && strstr(err.msg, "broken.c:3"), "%s", err.msg);
    KF_CHECK(b.log && strstr(b.log, "error"));
    KF_CHECK(b.artifact == NULL);
    kf_build_free(&b);
    /* a plan that declares fewer params than the kernel takes does not compile either */
    tp_source(&t, "two.c", "void broken(float *a, float *b) { a[0] = b[0]; }\n");
    rc = T->build(&t.p, &op, &b, &err);
    KF_CHECK_EQ_INT(rc, KF_E_COMPILE);
    KF_CHECK_MSG(strstr(err.msg, "too few arguments"), "%s", err.msg);
    kf_build_free(&b);
    /* an i64 param given to a kernel that wants a pointer */
    tp_source(&t, "kind.c", "void broken(float *a) { a[0] = 1; }\n");
    t.params[0][0].kind = KF_KP_I64;
    rc = T->build(&t.p, &op, &b, &err);
    KF_CHECK_EQ_INT(rc, KF_E_COMPILE);
    kf_build_free(&b);
    tp_free(&t);
}

static void test_cache(void) {
    kir_kernel *k = k_bcast(3, 3);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"bcast_add"});
    kf_build_opts o = opts();
    kf_build b1 = {0}, b2 = {0}, b3 = {0};
    kf_err err = {0};
    KF_CHECK_MSG(T->build(&t.p, &o, &b1, &err) == 0, "%s", err.msg);
    KF_CHECK_MSG(T->build(&t.p, &o, &b2, &err) == 0, "%s", err.msg);
    KF_CHECK_EQ_INT(b2.cached, 1);
    KF_CHECK(b1.artifact && b2.artifact && strcmp(b1.artifact, b2.artifact) == 0);
    KF_CHECK(strncmp(b1.artifact, g_cache, strlen(g_cache)) == 0);
    KF_CHECK(access(b1.artifact, R_OK) == 0);
    /* another source -> another artifact; fast math -> another artifact */
    char *other = kf_asprintf("%s\n/* changed */\n", t.text);
    tp_source(&t, "kernels.c", other);
    free(other);
    KF_CHECK(T->build(&t.p, &o, &b3, &err) == 0);
    KF_CHECK_EQ_INT(b3.cached, 0);
    KF_CHECK(b3.artifact && strcmp(b3.artifact, b1.artifact) != 0);
    kf_build_free(&b3);
    o.allow_fast_math = 1;
    KF_CHECK(T->build(&t.p, &o, &b3, &err) == 0);
    KF_CHECK(b3.artifact && strcmp(b3.artifact, b1.artifact) != 0);
    /* no temporary files left behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", g_cache);
    KF_CHECK(system(cmd) != 0);
    kf_build_free(&b1);
    kf_build_free(&b2);
    kf_build_free(&b3);
    KF_CHECK(b1.artifact == NULL && b1.log == NULL);
    tp_free(&t);
    kir_kernel_free(k);
}

static void naive_gemm(const float *A, const float *B, float *C, int m, int n, int kk, int ta, int tb, int lda,
                       int ldb, int ldc, float alpha, float beta) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < kk; p++)
                s += (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
            C[i * ldc + j] = (float)(alpha * s + beta * C[i * ldc + j]);
        }
}

static void test_gemm(void) {
    enum { BATCH = 2, M = 3, N = 4, K = 5 };
    tprog t;
    tp_init(&t);
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, BATCH * M * K);
    int b = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, BATCH * N * K); /* [batch][n][k], trans_b */
    int c = tp_buf(&t, "c", KF_BUF_OUTPUT, KF_F32, BATCH * M * N);
    int at = tp_buf(&t, "at", KF_BUF_INPUT, KF_F32, K * 4);       /* [k][m] with lda 4 */
    int b2 = tp_buf(&t, "b2", KF_BUF_INPUT, KF_F32, K * N);
    int c2 = tp_buf(&t, "c2", KF_BUF_OUTPUT, KF_F32, M * N);
    kf_step *s = tp_step(&t, KF_STEP_GEMM);
    s->a = a, s->b = b, s->c = c, s->m = M, s->n = N, s->k = K, s->trans_b = 1;
    s->lda = K, s->ldb = K, s->ldc = N, s->alpha = 0.5, s->beta = 2;
    s->batch = BATCH, s->stride_a = M * K, s->stride_b = N * K, s->stride_c = M * N;
    s = tp_step(&t, KF_STEP_GEMM);
    s->a = at, s->b = b2, s->c = c2, s->m = M, s->n = N, s->k = K, s->trans_a = 1;
    s->lda = 4, s->ldb = N, s->ldc = N, s->alpha = 1, s->beta = 0;
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int i = 0; i < BATCH * M * K; i++) F32(sl, a)[i] = (float)((i * 13) % 7) - 3.5f;
    for (int i = 0; i < BATCH * N * K; i++) F32(sl, b)[i] = (float)((i * 5) % 11) * 0.25f - 1;
    for (int i = 0; i < BATCH * M * N; i++) F32(sl, c)[i] = (float)i * 0.1f;
    for (int i = 0; i < K * 4; i++) F32(sl, at)[i] = (float)((i * 3) % 5) - 2;
    for (int i = 0; i < K * N; i++) F32(sl, b2)[i] = (float)i * 0.5f;
    float ref[BATCH * M * N], ref2[M * N] = {0};
    memcpy(ref, sl.s[c].data, sizeof ref);
    for (int q = 0; q < BATCH; q++)
        naive_gemm(F32(sl, a) + q * M * K, F32(sl, b) + q * N * K, ref + q * M * N, M, N, K, 0, 1, K, K, N, 0.5f, 2);
    naive_gemm(F32(sl, at), F32(sl, b2), ref2, M, N, K, 1, 0, 4, N, N, 1, 0);
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    for (int i = 0; i < BATCH * M * N; i++) KF_CHECK_NEAR(F32(sl, c)[i], ref[i], 1e-4);
    for (int i = 0; i < M * N; i++) KF_CHECK_NEAR(F32(sl, c2)[i], ref2[i], 1e-4);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
}

/* As the harness does: build in the parent, run in a forked child, after the parent has
 * used OpenBLAS itself (its thread pool must survive the fork). */
static void test_gemm_in_child(void) {
    enum { M = 200, N = 190, K = 180 }; /* large enough for OpenBLAS to use its threads */
    tprog t;
    tp_init(&t);
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, M * K), b = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, K * N);
    int c = tp_buf(&t, "c", KF_BUF_OUTPUT, KF_F32, M * N);
    kf_step *s = tp_step(&t, KF_STEP_GEMM);
    s->a = a, s->b = b, s->c = c, s->m = M, s->n = N, s->k = K, s->lda = K, s->ldb = N, s->ldc = N;
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int i = 0; i < M * K; i++) F32(sl, a)[i] = (float)((i * 7) % 13) - 6;
    for (int i = 0; i < K * N; i++) F32(sl, b)[i] = (float)((i * 3) % 17) * 0.5f;
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg); /* in the parent first */
    float *ref = calloc(M * N, sizeof *ref);
    naive_gemm(F32(sl, a), F32(sl, b), ref, M, N, K, 0, 0, K, N, N, 1, 0);
    for (int i = 0; i < M * N; i++) KF_CHECK(fabsf(F32(sl, c)[i] - ref[i]) <= 1e-3f * (1 + fabsf(ref[i])));
    memset(sl.s[c].data, KF_POISON_BYTE, sl.s[c].nbytes);
    kf_build_opts o = opts();
    kf_build bd = {0};
    KF_CHECK(T->build(&t.p, &o, &bd, &err) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        void *rt = NULL;
        int rc = T->open(&t.p, &bd, &o, &rt, &err);
        if (!rc) rc = T->bind(rt, sl.s, sl.n, &err);
        if (!rc) rc = T->run(rt, &err);
        for (int i = 0; i < M * N && !rc; i++) rc = fabsf(F32(sl, c)[i] - ref[i]) > 1e-3f * (1 + fabsf(ref[i]));
        _exit(rc ? 1 : 0);
    }
    int status = -1;
    KF_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    KF_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    free(ref);
    kf_build_free(&bd);
    slots_free(&sl);
    tp_free(&t);
}

static void test_fill_copy_time(void) {
    tprog t;
    tp_init(&t);
    int f = tp_buf(&t, "f", KF_BUF_OUTPUT, KF_F32, 5), l = tp_buf(&t, "l", KF_BUF_OUTPUT, KF_I64, 3);
    int bo = tp_buf(&t, "bo", KF_BUF_OUTPUT, KF_BOOL, 4), h = tp_buf(&t, "h", KF_BUF_OUTPUT, KF_F16, 2);
    int src = tp_buf(&t, "src", KF_BUF_INPUT, KF_F32, 8), dst = tp_buf(&t, "dst", KF_BUF_OUTPUT, KF_F32, 8);
    int z = tp_buf(&t, "z", KF_BUF_OUTPUT, KF_F64, 3);
    tp_step(&t, KF_STEP_FILL)->dst = f, t.steps[0].value = 1.5;
    tp_step(&t, KF_STEP_FILL)->dst = l, t.steps[1].value = -3;
    tp_step(&t, KF_STEP_FILL)->dst = bo, t.steps[2].value = 2;
    tp_step(&t, KF_STEP_FILL)->dst = h, t.steps[3].value = 1;
    tp_step(&t, KF_STEP_FILL)->dst = dst, t.steps[4].value = -1;
    kf_step *cp = tp_step(&t, KF_STEP_COPY);
    cp->src = src, cp->dst = dst, cp->bytes = 12, cp->src_offset = 4, cp->dst_offset = 8;
    tp_step(&t, KF_STEP_FILL)->dst = z, t.steps[6].value = 0;
    tslots sl;
    slots_alloc(&sl, &t.p);
    for (int i = 0; i < 8; i++) F32(sl, src)[i] = (float)i + 10;
    kf_err err = {0};
    KF_CHECK_MSG(build_run(&t, &sl, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 5; i++) KF_CHECK(F32(sl, f)[i] == 1.5f);
    for (int i = 0; i < 3; i++) KF_CHECK(((int64_t *)sl.s[l].data)[i] == -3);
    for (int i = 0; i < 4; i++) KF_CHECK(sl.s[bo].data[i] == 1);
    for (int i = 0; i < 2; i++) KF_CHECK(((uint16_t *)sl.s[h].data)[i] == 0x3C00);
    for (int i = 0; i < 3; i++) KF_CHECK(((double *)sl.s[z].data)[i] == 0);
    const float want[8] = {-1, -1, 11, 12, 13, -1, -1, -1};
    for (int i = 0; i < 8; i++) KF_CHECK_MSG(F32(sl, dst)[i] == want[i], "dst[%d] = %g", i, F32(sl, dst)[i]);
    KF_CHECK(slots_guards_ok(&sl));
    slots_free(&sl);
    tp_free(&t);
}

static void count_flush(void *ctx) { ++*(int *)ctx; }

static void test_time(void) {
    kir_kernel *k = k_bcast(64, 64);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"bcast_add"});
    int out = tp_buf(&t, "out", KF_BUF_OUTPUT, KF_F32, 64 * 64);
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, 64 * 64), b = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, 64);
    tp_launch(&t, 0, (int[]){out, a, b}, 3);
    tslots sl;
    slots_alloc(&sl, &t.p);
    kf_build_opts o = opts();
    kf_build bd = {0};
    kf_err err = {0};
    void *rt = NULL;
    KF_CHECK(T->build(&t.p, &o, &bd, &err) == 0);
    KF_CHECK(T->open(&t.p, &bd, &o, &rt, &err) == 0);
    KF_CHECK_EQ_INT(T->run(rt, &err), KF_E_INVALID); /* before bind */
    KF_CHECK(T->bind(rt, sl.s, sl.n - 1, &err) == KF_E_INVALID);
    KF_CHECK(T->bind(rt, sl.s, sl.n, &err) == 0);
    double ms[4] = {-1, -1, -1, -1};
    int flushes = 0;
    KF_CHECK_MSG(T->time(rt, 3, count_flush, &flushes, ms, &err) == 0, "%s", err.msg);
    KF_CHECK_EQ_INT(flushes, 3);
    KF_CHECK(ms[0] > 0 && ms[1] > 0 && ms[2] > 0 && ms[0] < 10000);
    KF_CHECK(ms[3] == -1);
    T->close(rt);
    kf_build_free(&bd);
    slots_free(&sl);
    tp_free(&t);
    kir_kernel_free(k);
}

static void test_bad_plans(void) {
    kir_kernel *k = k_bcast(2, 2);
    tprog t;
    tp_init(&t);
    tp_kir(&t, &k, 1, (const char *[]){"bcast_add"});
    int out = tp_buf(&t, "out", KF_BUF_OUTPUT, KF_F32, 4);
    int a = tp_buf(&t, "a", KF_BUF_INPUT, KF_F32, 4), b = tp_buf(&t, "b", KF_BUF_INPUT, KF_F32, 2);
    kf_step *s = tp_launch(&t, 0, (int[]){out, a, b}, 3);
    kf_build_opts o = opts();
    kf_build bd = {0};
    kf_err err = {0};
    void *rt = NULL;
    KF_CHECK(T->build(&t.p, &o, &bd, &err) == 0);
    s->args[2].kind = KF_KP_I64; /* kind mismatch */
    KF_CHECK_EQ_INT(T->open(&t.p, &bd, &o, &rt, &err), KF_E_INVALID);
    KF_CHECK(rt == NULL);
    s->args[2].kind = KF_KP_PTR;
    s->args[2].buf = 9; /* no such buffer */
    KF_CHECK_EQ_INT(T->open(&t.p, &bd, &o, &rt, &err), KF_E_INVALID);
    s->args[2].buf = b;
    kf_step *g = tp_step(&t, KF_STEP_GEMM); /* 2x2 @ 2x3 does not fit b */
    g->a = a, g->b = b, g->c = out, g->m = 2, g->n = 3, g->k = 2, g->lda = 2, g->ldb = 3, g->ldc = 3;
    KF_CHECK_EQ_INT(T->open(&t.p, &bd, &o, &rt, &err), KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "gemm"), "%s", err.msg);
    t.p.n_steps--;
    kf_step *c = tp_step(&t, KF_STEP_COPY);
    c->src = a, c->dst = b, c->bytes = 12;
    KF_CHECK_EQ_INT(T->open(&t.p, &bd, &o, &rt, &err), KF_E_INVALID);
    t.p.n_steps--;
    KF_CHECK(T->open(&t.p, &bd, &o, &rt, &err) == 0);
    T->close(rt);
    kf_build_free(&bd);
    t.p.target = "cuda";
    KF_CHECK_EQ_INT(T->build(&t.p, &o, &bd, &err), KF_E_INVALID);
    kf_build_free(&bd);
    tp_free(&t);
    kir_kernel_free(k);
}

static void test_no_compiler_and_timeout(void) {
    char *old = kf_strdup(getenv("KFORGE_CC"));
    kf_err err = {0};
    setenv("KFORGE_CC", "/nonexistent/kforge-cc", 1);
    KF_CHECK_EQ_INT(T->available(&err), KF_E_UNAVAILABLE);
    KF_CHECK_MSG(strstr(err.msg, "KFORGE_CC") && strstr(err.msg, "apt-get install gcc"), "%s", err.msg);
    tprog t;
    tp_init(&t);
    tp_source(&t, "x.c", "void x(void) {}\n");
    kf_build_opts o = opts();
    kf_build b = {0};
    KF_CHECK_EQ_INT(T->build(&t.p, &o, &b, &err), KF_E_UNAVAILABLE);
    /* a "compiler" that hangs: killed after the limit, reported as a compile failure */
    char *script = kf_asprintf("%s/slowcc.sh", g_cache);
    const char *text = "#!/bin/sh\nif [ \"$1\" = --version ]; then echo slowcc 1.0; exit 0; fi\nsleep 30\n";
    KF_CHECK(kf_write_file(script, text, strlen(text)) == 0);
    chmod(script, 0755);
    setenv("KFORGE_CC", script, 1);
    o.timeout_s = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    KF_CHECK_EQ_INT(T->build(&t.p, &o, &b, &err), KF_E_COMPILE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    KF_CHECK_MSG(strstr(err.msg, "timed out"), "%s", err.msg);
    KF_CHECK((t1.tv_sec - t0.tv_sec) < 10);
    kf_build_free(&b);
    if (old) setenv("KFORGE_CC", old, 1);
    else unsetenv("KFORGE_CC");
    free(old);
    free(script);
    tp_free(&t);
}

static long long fake_l2(void) { return 50LL << 20; }

/* The timing flush is raised to twice a target's device cache, never lowered; host targets
 * (no cache_bytes) keep the harness's value. */
static void test_flush_bytes_rule(void) {
    kf_target_ops gpu;
    memset(&gpu, 0, sizeof gpu);
    gpu.name = "fake-gpu";
    gpu.cache_bytes = fake_l2;
    KF_CHECK_EQ_INT(kf_target_flush_bytes(&gpu, 64LL << 20), 100LL << 20);
    KF_CHECK_EQ_INT(kf_target_flush_bytes(&gpu, 256LL << 20), 256LL << 20);
    KF_CHECK_EQ_INT(kf_target_flush_bytes(kf_target_cpu(), 64LL << 20), 64LL << 20);
}

int main(void) {
    T = kf_target_cpu();
    snprintf(g_cache, sizeof g_cache, "/tmp/kf_test_cpu_%ld", (long)getpid());
    if (mkdir(g_cache, 0700) != 0) {
        fprintf(stderr, "cannot make a temporary directory\n");
        return 1;
    }
    kf_err err = {0};
    if (T->available(&err) != 0) {
        fprintf(stderr, "SKIP: cpu target unavailable: %s\n", err.msg);
        return 0;
    }
    KF_RUN(test_flush_bytes_rule);
    KF_RUN(test_available);
    KF_RUN(test_bcast_add);
    KF_RUN(test_row_sum);
    KF_RUN(test_argmax);
    KF_RUN(test_tiled);
    KF_RUN(test_elementwise_ops);
    KF_RUN(test_compile_error);
    KF_RUN(test_cache);
    KF_RUN(test_gemm);
    KF_RUN(test_gemm_in_child);
    KF_RUN(test_fill_copy_time);
    KF_RUN(test_time);
    KF_RUN(test_bad_plans);
    KF_RUN(test_no_compiler_and_timeout);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_cache);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_cache);
    return kf_test_report();
}
