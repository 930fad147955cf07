/* test_kir.c: the kernel IR: builders and type promotion, clone and substitution, the dump,
 * and kir_render_c's text (pragmas, constants, names, errors), which must compile with
 * `cc -std=c11 -O2 -fopenmp -Wall -Werror`. Numeric results of rendered kernels are checked
 * in test_cpu_target.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kf_test.h"
#include "kir/kir.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Compiles src with the strict warning flags; 1 if clean, 0 if not (output printed), -1 if
 * there is no compiler. */
static int compile_clean_std(const char *src, const char *std) {
    const char *cc = getenv("KFORGE_CC");
    if (!cc || !*cc) cc = "cc";
    static int serial;
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/kf_test_kir_%ld_%d", (long)getpid(), serial++);
    if (mkdir(dir, 0700) != 0) return -1;
    char path[256], log[256], cmd[1024];
    snprintf(path, sizeof path, "%s/k.c", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", cc);
    if (system(cmd) != 0) return -1;
    snprintf(cmd, sizeof cmd, "%s -std=%s -O2 -fopenmp -Wall -Werror -c %s -o %s/k.o >%s 2>&1", cc,
             std, path, dir, log);
    int ok = system(cmd) == 0;
    if (!ok) {
        fprintf(stderr, "  compiler output:\n");
        snprintf(cmd, sizeof cmd, "cat %s >&2; cat -n %s >&2", log, path);
        if (system(cmd) != 0) fprintf(stderr, "  (could not show it)\n");
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
    return ok;
}

static int compile_clean(const char *src) { return compile_clean_std(src, "c11"); }

static char *render1(kir_kernel *k, kf_err *err, int *rc) {
    kf_str s;
    kf_str_init(&s);
    *rc = kir_render_c(&k, 1, &s, err);
    return kf_str_take(&s);
}

static void test_types(void) {
    kir_kernel *k = kir_kernel_new("t");
    KF_CHECK(k != NULL);
    int bf = kir_add_buf(k, "x", KF_F32, 0);
    int bi = kir_add_buf(k, "idx", KF_I64, 0);
    int bb = kir_add_buf(k, "mask", KF_BOOL, 0);
    int bh = kir_add_buf(k, "h", KF_F16, 0);
    KF_CHECK_EQ_INT(bf, 0);
    KF_CHECK_EQ_INT(bh, 3);
    int i = kir_add_var(k, "i", KIR_T_I64);
    int j = kir_add_var(k, "i", KIR_T_I32);
    int x = kir_add_var(k, "x", KIR_T_F32); /* clashes with the buffer name */
    KF_CHECK_STR(k->vars[i].name, "i");
    KF_CHECK_STR(k->vars[j].name, "i1");
    KF_CHECK_STR(k->vars[x].name, "x1");
    kir_expr *lf = kir_load(k, bf, kir_var(k, i));
    kir_expr *li = kir_load(k, bi, kir_var(k, i));
    kir_expr *lb = kir_load(k, bb, kir_var(k, i));
    KF_CHECK_EQ_INT(lf->type, KIR_T_F32);
    KF_CHECK_EQ_INT(li->type, KIR_T_I64);
    KF_CHECK_EQ_INT(lb->type, KIR_T_I32);
    KF_CHECK_EQ_INT(kir_load(k, bh, kir_int(k, 0))->type, KIR_T_F32);
    KF_CHECK_EQ_INT(kir_add(k, lf, li)->type, KIR_T_F32);
    KF_CHECK_EQ_INT(kir_add(k, lf, kir_flt(k, 1, KIR_T_F64))->type, KIR_T_F64);
    KF_CHECK_EQ_INT(kir_add(k, kir_var(k, j), li)->type, KIR_T_I64);
    KF_CHECK_EQ_INT(kir_add(k, kir_var(k, j), lb)->type, KIR_T_I32);
    KF_CHECK_EQ_INT(kir_bin(k, KIR_LT, lf, li)->type, KIR_T_BOOL);
    KF_CHECK_EQ_INT(kir_bin(k, KIR_AND, lb, lb)->type, KIR_T_BOOL);
    kir_expr *cmp = kir_bin(k, KIR_EQ, lb, lb);
    KF_CHECK_EQ_INT(kir_add(k, cmp, cmp)->type, KIR_T_I32);
    KF_CHECK_EQ_INT(kir_bin(k, KIR_MAX, cmp, cmp)->type, KIR_T_BOOL);
    KF_CHECK_EQ_INT(kir_un(k, KIR_EXP, li)->type, KIR_T_F32);
    KF_CHECK_EQ_INT(kir_un(k, KIR_EXP, kir_flt(k, 1, KIR_T_F64))->type, KIR_T_F64);
    KF_CHECK_EQ_INT(kir_un(k, KIR_ABS, li)->type, KIR_T_I64);
    KF_CHECK_EQ_INT(kir_un(k, KIR_ISNAN, lf)->type, KIR_T_BOOL);
    KF_CHECK_EQ_INT(kir_select(k, cmp, li, lf)->type, KIR_T_F32);
    KF_CHECK_EQ_INT(kir_cast(k, KIR_T_I32, lf)->type, KIR_T_I32);
    KF_CHECK_EQ_INT(kir_fma(k, lf, lf, lf)->type, KIR_T_F32);
    KF_CHECK_EQ_INT(kir_fma(k, lf, li, kir_flt(k, 1, KIR_T_F64))->type, KIR_T_F64);
    KF_CHECK(kir_fma(k, li, li, li) == NULL); /* integers have no fused multiply-add */
    KF_CHECK_EQ_INT(kir_int(k, 3)->type, KIR_T_I64);
    KF_CHECK_EQ_INT(kir_flt(k, 3, KIR_T_I32)->type, KIR_T_F32);
    KF_CHECK(kir_add(k, NULL, lf) == NULL);
    KF_CHECK(kir_failure(k) == NULL);
    kir_append(k, kir_store(k, 0, kir_int(k, 0), lf), kir_barrier(k)); /* not a container */
    KF_CHECK(kir_failure(k) != NULL);
    int n = -1;
    kf_kparam *pp = kir_plan_params(k, &n);
    KF_CHECK_EQ_INT(n, 4);
    KF_CHECK(pp && pp[2].kind == KF_KP_PTR);
    if (pp) KF_CHECK_STR(pp[2].name, "mask");
    free(pp);
    kir_kernel_free(k);
}

/* A 2-d elementwise add with broadcasting: out[i][j] = a[i][j] + b[j]. */
static kir_kernel *make_bcast(void) {
    kir_kernel *k = kir_kernel_new("bcast_add");
    int out = kir_add_buf(k, "out", KF_F32, 1);
    int a = kir_add_buf(k, "a", KF_F32, 0);
    int b = kir_add_buf(k, "b.bias", KF_F32, 0);
    int i = kir_add_var(k, "i", KIR_T_I64), j = kir_add_var(k, "j", KIR_T_I64);
    kir_stmt *li = kir_for(k, i, kir_int(k, 0), kir_int(k, 4), 1, KIR_LOOP_PARALLEL);
    kir_stmt *lj = kir_for(k, j, kir_int(k, 0), kir_int(k, 6), 1, KIR_LOOP_PARALLEL);
    kir_expr *flat = kir_add(k, kir_mul(k, kir_var(k, i), kir_int(k, 6)), kir_var(k, j));
    kir_append(k, lj, kir_store(k, out, flat, kir_add(k, kir_load(k, a, flat), kir_load(k, b, kir_var(k, j)))));
    kir_append(k, li, lj);
    kir_append(k, k->body, li);
    return k;
}

static void test_clone_subst(void) {
    kir_kernel *k = make_bcast();
    int jo = kir_add_var(k, "jo", KIR_T_I64), ji = kir_add_var(k, "ji", KIR_T_I64);
    kir_stmt *li = k->body->body[0];
    kir_stmt *copy = kir_stmt_clone(k, li);
    KF_CHECK(copy && copy != li && copy->body[0] != li->body[0]);
    KF_CHECK(copy->body[0]->body[0]->val != li->body[0]->body[0]->val);
    /* j -> jo * 2 + ji, through a DAG: the store shares `flat` between index and load. */
    kir_stmt *store = copy->body[0]->body[0];
    kir_expr *rep = kir_add(k, kir_mul(k, kir_var(k, jo), kir_int(k, 2)), kir_var(k, ji));
    int j = copy->body[0]->var;
    kir_subst_var(k, store, j, rep);
    kf_str d;
    kf_str_init(&d);
    kir_dump(k, &d);
    KF_CHECK_MSG(strstr(kf_str_cstr(&d), "out[((i * 6) + j)] = (a[((i * 6) + j)] + b.bias[j])"), "%s",
                 kf_str_cstr(&d));
    KF_CHECK_MSG(strstr(kf_str_cstr(&d), "for i in [0, 4) step 1 parallel"), "%s", kf_str_cstr(&d));
    kf_str_clear(&d);
    kir_kernel tmp = *k;
    kir_stmt body = {.kind = KIR_S_BLOCK, .body = &store, .n_body = 1};
    tmp.body = &body;
    kir_dump(&tmp, &d);
    KF_CHECK_MSG(strstr(kf_str_cstr(&d),
                        "out[((i * 6) + ((jo * 2) + ji))] = (a[((i * 6) + ((jo * 2) + ji))] + "
                        "b.bias[((jo * 2) + ji)])"),
                 "%s", kf_str_cstr(&d));
    /* substituting a var by an expression that mentions it happens once per use */
    kir_expr *self = kir_add(k, kir_var(k, ji), kir_int(k, 1));
    kir_subst_var(k, store, ji, self);
    kf_str_clear(&d);
    kir_dump(&tmp, &d);
    KF_CHECK_MSG(strstr(kf_str_cstr(&d), "b.bias[((jo * 2) + (ji + 1))]"), "%s", kf_str_cstr(&d));
    kf_str_free(&d);
    kir_kernel_free(k);
}

static void test_render_bcast(void) {
    kir_kernel *k = make_bcast();
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(strstr(src, "void bcast_add(float *restrict out, const float *restrict a, const float *restrict b_bias)"));
    KF_CHECK_MSG(strstr(src, "#pragma omp parallel for collapse(2) schedule(static)\n"), "%s", src);
    KF_CHECK(strstr(src, "#include <math.h>"));
    KF_CHECK(strstr(src, "for (int64_t i = 0; i < 4; i += 1) {"));
    KF_CHECK(!strstr(src, "fast"));
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    free(src);
    kir_kernel_free(k);
}

static void test_render_constants(void) {
    kir_kernel *k = kir_kernel_new("consts");
    int o = kir_add_buf(k, "o", KF_F32, 1);
    int d = kir_add_buf(k, "d", KF_F64, 1);
    int l = kir_add_buf(k, "l", KF_I64, 1);
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 0), kir_flt(k, 0.1, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 1), kir_flt(k, INFINITY, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 2), kir_flt(k, -INFINITY, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 3), kir_flt(k, NAN, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 4), kir_flt(k, 2, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 5), kir_flt(k, -1.5, KIR_T_F32)));
    kir_append(k, k->body, kir_store(k, o, kir_int(k, 6), kir_int(k, 7)));
    kir_append(k, k->body, kir_store(k, d, kir_int(k, 0), kir_flt(k, 0.1, KIR_T_F64)));
    kir_append(k, k->body, kir_store(k, d, kir_int(k, 1), kir_flt(k, 1e300, KIR_T_F64)));
    kir_append(k, k->body, kir_store(k, l, kir_int(k, 0), kir_int(k, 5000000000LL)));
    kir_append(k, k->body, kir_store(k, l, kir_int(k, 1), kir_int(k, INT64_MIN)));
    /* 100000 * 100000 overflows int: the renderer must widen */
    kir_append(k, k->body, kir_store(k, l, kir_int(k, 2), kir_mul(k, kir_int(k, 100000), kir_int(k, 100000))));
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(strstr(src, "o[0] = 0.100000001f;"));
    KF_CHECK(strstr(src, "o[1] = INFINITY;"));
    KF_CHECK(strstr(src, "o[2] = (-INFINITY);"));
    KF_CHECK(strstr(src, "o[3] = NAN;"));
    KF_CHECK(strstr(src, "o[4] = 2.0f;"));
    KF_CHECK(strstr(src, "o[5] = (-1.5f);"));
    KF_CHECK(strstr(src, "o[6] = 7.0f;"));
    KF_CHECK(strstr(src, "d[0] = 0.10000000000000001;"));
    KF_CHECK(strstr(src, "d[1] = 1.0000000000000001e+300;"));
    KF_CHECK(strstr(src, "l[0] = INT64_C(5000000000);"));
    KF_CHECK(strstr(src, "l[1] = (-INT64_C(9223372036854775807) - 1);"));
    KF_CHECK_MSG(strstr(src, "l[2] = ((int64_t)100000 * 100000);"), "%s", src);
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    free(src);
    kir_kernel_free(k);
}

/* Every operator on every type it takes, plus f16/bf16/bool/i8 buffers: compiles cleanly. */
static void test_render_all_ops(void) {
    kir_kernel *k = kir_kernel_new("all_ops");
    kf_dtype dts[] = {KF_F32, KF_F64, KF_I32, KF_I64, KF_F16, KF_BF16, KF_BOOL, KF_U8, KF_I8, KF_I16};
    int nd = (int)(sizeof dts / sizeof dts[0]);
    int bufs[16];
    for (int t = 0; t < nd; t++) {
        char name[16];
        snprintf(name, sizeof name, "b%s", kf_dtype_name(dts[t]));
        bufs[t] = kir_add_buf(k, name, dts[t], 1);
    }
    int i = kir_add_var(k, "i", KIR_T_I64);
    kir_stmt *loop = kir_for(k, i, kir_int(k, 0), kir_int(k, 16), 1, KIR_LOOP_SERIAL);
    kir_append(k, k->body, loop);
    for (int t = 0; t < nd; t++) {
        for (int op = 0; op < KIR_UN_COUNT; op++) {
            kir_expr *x = kir_load(k, bufs[t], kir_var(k, i));
            kir_append(k, loop, kir_store(k, bufs[t], kir_var(k, i), kir_un(k, (kir_unop)op, x)));
        }
        for (int op = 0; op < KIR_BIN_COUNT; op++) {
            kir_expr *x = kir_load(k, bufs[t], kir_var(k, i));
            kir_expr *y = kir_load(k, bufs[(t + 1) % nd], kir_var(k, i));
            kir_append(k, loop, kir_store(k, bufs[t], kir_var(k, i), kir_bin(k, (kir_binop)op, x, y)));
        }
    }
    /* fused multiply-add in float32 (operands of other types converted) and float64 */
    kir_expr *xf = kir_load(k, bufs[0], kir_var(k, i)), *xi = kir_load(k, bufs[2], kir_var(k, i));
    kir_append(k, loop, kir_store(k, bufs[0], kir_var(k, i), kir_fma(k, xf, xi, xf)));
    kir_expr *xd = kir_load(k, bufs[1], kir_var(k, i));
    kir_append(k, loop, kir_store(k, bufs[1], kir_var(k, i), kir_fma(k, xd, xd, xd)));
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(strstr(src, "expf("));
    KF_CHECK(strstr(src, "tanh(bf64[i])"));
    KF_CHECK(strstr(src, "kf_max_f32("));
    KF_CHECK(strstr(src, "nearbyintf("));
    KF_CHECK(strstr(src, "(1.0f / (1.0f + expf(-bf32[i])))"));
    KF_CHECK(strstr(src, "(1.0f / sqrtf(bf32[i]))"));
    KF_CHECK(strstr(src, "bf16[i] = kf_f32_to_f16("));
    KF_CHECK(strstr(src, "kf_f16_to_f32(bf16[i])"));
    KF_CHECK_MSG(strstr(src, "bf32[i] = fmaf(bf32[i], ((float)bi32[i]), bf32[i]);"), "%s", src);
    KF_CHECK(strstr(src, "bf64[i] = fma(bf64[i], bf64[i], bf64[i]);"));
    KF_CHECK(strstr(src, "kf_exp2i_f32(bf32[i])") && strstr(src, "kf_exp2i_f64(bf64[i])"));
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    free(src);
    kir_kernel_free(k);
}

/* out[r] = sum_c x[r][c] in a parallel loop over r with a vector loop over c: the sum becomes
 * an OpenMP reduction; a max accumulator keeps the inner loop serial. */
static void test_render_reductions(void) {
    kir_kernel *k = kir_kernel_new("rows");
    int out = kir_add_buf(k, "out", KF_F32, 1), mx = kir_add_buf(k, "mx", KF_F32, 1);
    int x = kir_add_buf(k, "x", KF_F32, 0);
    int r = kir_add_var(k, "r", KIR_T_I64), c = kir_add_var(k, "c", KIR_T_I64);
    int c2 = kir_add_var(k, "c", KIR_T_I64);
    int acc = kir_add_var(k, "acc", KIR_T_F32), m = kir_add_var(k, "m", KIR_T_F32);
    int unused = kir_add_var(k, "unused", KIR_T_I32);
    kir_stmt *lr = kir_for(k, r, kir_int(k, 0), kir_int(k, 8), 1, KIR_LOOP_PARALLEL);
    kir_append(k, lr, kir_decl(k, acc, kir_flt(k, 0, KIR_T_F32)));
    kir_append(k, lr, kir_decl(k, m, kir_flt(k, -INFINITY, KIR_T_F32)));
    kir_append(k, lr, kir_decl(k, unused, NULL));
    kir_expr *v = kir_load(k, x, kir_add(k, kir_mul(k, kir_var(k, r), kir_int(k, 32)), kir_var(k, c)));
    kir_stmt *lc = kir_for(k, c, kir_int(k, 0), kir_int(k, 32), 1, KIR_LOOP_VECTOR);
    kir_append(k, lc, kir_assign(k, acc, kir_add(k, kir_var(k, acc), v)));
    kir_append(k, lr, lc);
    kir_expr *v2 = kir_load(k, x, kir_add(k, kir_mul(k, kir_var(k, r), kir_int(k, 32)), kir_var(k, c2)));
    kir_stmt *lc2 = kir_for(k, c2, kir_int(k, 0), kir_int(k, 32), 1, KIR_LOOP_VECTOR);
    kir_append(k, lc2, kir_assign(k, m, kir_bin(k, KIR_MAX, kir_var(k, m), v2)));
    kir_append(k, lr, lc2);
    kir_append(k, lr, kir_store(k, out, kir_var(k, r), kir_var(k, acc)));
    kir_append(k, lr, kir_store(k, mx, kir_var(k, r), kir_var(k, m)));
    kir_append(k, k->body, lr);
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_MSG(strstr(src, "#pragma omp parallel for schedule(static)\n"), "%s", src);
    KF_CHECK_MSG(strstr(src, "#pragma omp simd reduction(+:acc)\n"), "%s", src);
    KF_CHECK_MSG(strstr(src, "runs serially: it updates 'm'"), "%s", src);
    KF_CHECK(strstr(src, "(void)unused;"));
    KF_CHECK(strstr(src, "float acc = 0.0f;"));
    KF_CHECK(strstr(src, "for (int64_t c1 = 0;"));
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    free(src);
    kir_kernel_free(k);
}

static void test_render_pragmas(void) {
    kir_kernel *k = kir_kernel_new("nest");
    int o = kir_add_buf(k, "o", KF_F32, 1);
    int i = kir_add_var(k, "i", KIR_T_I32), j = kir_add_var(k, "j", KIR_T_I64);
    int u = kir_add_var(k, "u", KIR_T_I64), w = kir_add_var(k, "w", KIR_T_I64);
    /* parallel i, parallel j with bounds depending on i (no collapse), inner parallel
     * loop inside the region (plain), unroll 4, full unroll of 3 */
    kir_stmt *li = kir_for(k, i, kir_int(k, 0), kir_int(k, 4), 1, KIR_LOOP_PARALLEL);
    kir_stmt *lj = kir_for(k, j, kir_var(k, i), kir_int(k, 8), 2, KIR_LOOP_PARALLEL);
    kir_stmt *lu = kir_for(k, u, kir_int(k, 0), kir_int(k, 3), 1, KIR_LOOP_UNROLL);
    lu->unroll = 0;
    kir_stmt *lw = kir_for(k, w, kir_int(k, 0), kir_var(k, j), 1, KIR_LOOP_UNROLL);
    lw->unroll = 4;
    kir_append(k, lw, kir_store(k, o, kir_add(k, kir_var(k, w), kir_var(k, u)), kir_var(k, i)));
    kir_append(k, lu, lw);
    kir_append(k, lj, lu);
    kir_append(k, li, lj);
    kir_append(k, k->body, li);
    kir_stmt *cond = kir_if(k, kir_bin(k, KIR_GT, kir_load(k, o, kir_int(k, 0)), kir_int(k, 1)));
    kir_append(k, cond, kir_store(k, o, kir_int(k, 0), kir_flt(k, 1, KIR_T_F32)));
    kir_append_else(k, cond, kir_store(k, o, kir_int(k, 0), kir_flt(k, 2, KIR_T_F32)));
    kir_append(k, k->body, kir_barrier(k));
    kir_append(k, k->body, cond);
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_MSG(strstr(src, "#pragma omp parallel for schedule(static)\n    for (int32_t i = 0; i < 4; i += 1) {\n"
                             "        for (int64_t j = ((int64_t)i); j < 8; j += 2) {\n"
                             "            #pragma GCC unroll 3\n"),
                 "%s", src);
    KF_CHECK(strstr(src, "#pragma GCC unroll 4\n"));
    KF_CHECK(strstr(src, "} else {"));
    KF_CHECK(strstr(src, "if ((o[0] > 1.0f)) {"));
    KF_CHECK(!strstr(src, "collapse"));
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    free(src);
    kir_kernel_free(k);
}

static void test_render_errors(void) {
    kf_err err = {0};
    int rc;
    /* store to a read-only buffer */
    kir_kernel *k = kir_kernel_new("bad");
    int x = kir_add_buf(k, "x", KF_F32, 0);
    kir_append(k, k->body, kir_store(k, x, kir_int(k, 0), kir_flt(k, 1, KIR_T_F32)));
    free(render1(k, &err, &rc));
    KF_CHECK_EQ_INT(rc, KF_E_INVALID);
    KF_CHECK(strstr(err.msg, "read-only"));
    kir_kernel_free(k);
    /* a variable used without a declaration */
    k = kir_kernel_new("bad2");
    int y = kir_add_buf(k, "y", KF_F32, 1);
    int v = kir_add_var(k, "v", KIR_T_F32);
    kir_append(k, k->body, kir_store(k, y, kir_int(k, 0), kir_var(k, v)));
    free(render1(k, &err, &rc));
    KF_CHECK_EQ_INT(rc, KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "'v'"), "%s", err.msg);
    kir_kernel_free(k);
    /* a kernel name that is no C identifier, and an incomplete kernel */
    k = kir_kernel_new("1bad");
    free(render1(k, &err, &rc));
    KF_CHECK_EQ_INT(rc, KF_E_INVALID);
    kir_append(k, NULL, kir_barrier(k));
    free(render1(k, &err, &rc));
    KF_CHECK_EQ_INT(rc, KF_E_INVALID);
    KF_CHECK(strstr(err.msg, "incomplete"));
    kir_kernel_free(k);
    /* two kernels of one name; nothing is appended on failure */
    kir_kernel *a = kir_kernel_new("same"), *b = kir_kernel_new("same");
    kir_kernel *both[2] = {a, b};
    kf_str s;
    kf_str_init(&s);
    kf_str_append(&s, "keep");
    rc = kir_render_c(both, 2, &s, &err);
    KF_CHECK_EQ_INT(rc, KF_E_INVALID);
    KF_CHECK_STR(kf_str_cstr(&s), "keep");
    kf_str_free(&s);
    kir_kernel_free(a);
    kir_kernel_free(b);
}

/* Names that are C keywords, math functions, macros or clash after sanitising still work,
 * also under gnu11 (which predefines `linux` and `unix`). */
static void test_render_names(void) {
    kir_kernel *k = kir_kernel_new("names");
    const char *bad[] = {"x.weight", "x_weight", "float", "expf", "linux", "M_PI", "NULL", "2d", "_y", "kf_max_f32"};
    int n = (int)(sizeof bad / sizeof bad[0]);
    for (int i = 0; i < n; i++) kir_add_buf(k, bad[i], KF_F32, 1);
    int v = kir_add_var(k, "unix", KIR_T_I64);
    kir_stmt *l = kir_for(k, v, kir_int(k, 0), kir_int(k, 4), 1, KIR_LOOP_SERIAL);
    for (int i = 0; i < n; i++)
        kir_append(k, l, kir_store(k, i, kir_var(k, v), kir_un(k, KIR_EXP, kir_load(k, (i + 1) % n, kir_var(k, v)))));
    kir_append(k, k->body, l);
    kf_err err = {0};
    int rc;
    char *src = render1(k, &err, &rc);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_MSG(strstr(src, "float *restrict x_weight, float *restrict x_weight_1, float *restrict v_float"), "%s", src);
    KF_CHECK(strstr(src, "float *restrict v_2d") && strstr(src, "float *restrict v_M_PI") && strstr(src, "v_unix"));
    int ok = compile_clean(src);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
    KF_CHECK(compile_clean_std(src, "gnu11") == 1); /* as the cpu target compiles */
    free(src);
    kir_kernel_free(k);
}

/* Two units concatenated (as a program with two sources is) still compile. */
static void test_render_twice(void) {
    kir_kernel *a = make_bcast(), *b = kir_kernel_new("empty");
    kf_str s;
    kf_str_init(&s);
    kf_err err = {0};
    KF_CHECK_EQ_INT(kir_render_c(&a, 1, &s, &err), 0);
    KF_CHECK_EQ_INT(kir_render_c(&b, 1, &s, &err), 0);
    KF_CHECK(strstr(kf_str_cstr(&s), "void empty(void)"));
    int ok = compile_clean(kf_str_cstr(&s));
    kf_str_free(&s);
    kir_kernel_free(a);
    kir_kernel_free(b);
    if (ok < 0) KF_SKIP("no C compiler");
    KF_CHECK(ok == 1);
}

int main(void) {
    KF_RUN(test_types);
    KF_RUN(test_clone_subst);
    KF_RUN(test_render_bcast);
    KF_RUN(test_render_constants);
    KF_RUN(test_render_all_ops);
    KF_RUN(test_render_reductions);
    KF_RUN(test_render_pragmas);
    KF_RUN(test_render_errors);
    KF_RUN(test_render_names);
    KF_RUN(test_render_twice);
    return kf_test_report();
}
