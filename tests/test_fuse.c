/* test_fuse.c: fusion plans for representative graphs (which ops share a kernel) and the
 * numbers the fused programs compute: each fused program runs on the cpu target next to the
 * naive lowering of the same graph, on the same random inputs and params, and their outputs
 * must agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kf_test.h"
#include "agents/fuse.h"
#include "agents/lower.h"
#include "targets/kf_target.h"

#include "fuse_run.h"

static int group_of(const kf_graph *g, const kf_fplan *p, const char *value) {
    int v = kf_graph_find(g, value);
    if (v < 0 || g->values[v].kind != KF_VAL_NODE) return -100;
    return p->group[g->values[v].index];
}

/* Plans, lowers with the default schedules and checks the numbers against the naive lowering. */
static int plan_lower(const char *json, kf_graph *g, kf_fplan *p, kf_program *prog) {
    kf_err err;
    kf_err_clear(&err);
    if (kf_graph_from_json(json, g, &err)) {
        fprintf(stderr, "  graph: %s\n", err.msg);
        return -1;
    }
    if (kf_fuse_plan(g, NULL, p, &err)) {
        fprintf(stderr, "  plan: %s\n", err.msg);
        kf_graph_free(g);
        return -1;
    }
    if (kf_fuse_lower(g, p, NULL, "cpu", "test", prog, &err)) {
        fprintf(stderr, "  lower: %s\n", err.msg);
        kf_fuse_plan_free(p);
        kf_graph_free(g);
        return -1;
    }
    if (kf_program_validate(prog, g, &err)) fprintf(stderr, "  validate: %s\n", err.msg);
    KF_CHECK_EQ_INT(kf_program_validate(prog, g, &err), 0);
    return 0;
}

static void done(kf_graph *g, kf_fplan *p, kf_program *prog) {
    kf_program_free(prog);
    kf_fuse_plan_free(p);
    kf_graph_free(g);
}

#define T(name, dt, ...) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":[" #__VA_ARGS__ "]}"

static const char linear_relu_scale[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"mul\"],\"values\":{"
    T("x0", "f32", 24, 40) "," T("p0", "f32", 33) "," T("p1", "f32", 33, 40) "," T("t", "f32", 40, 33) ","
    T("addmm", "f32", 24, 33) "," T("relu", "f32", 24, 33) "," T("mul", "f32", 24, 33) "},"
    "\"nodes\":["
    "{\"op\":\"aten.t.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p1\"}]},"
    "{\"op\":\"aten.addmm.default\",\"outputs\":[\"addmm\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"},"
    "{\"name\":\"mat1\",\"tensor\":\"x0\"},{\"name\":\"mat2\",\"tensor\":\"t\"},{\"name\":\"beta\",\"int\":1},"
    "{\"name\":\"alpha\",\"int\":1}]},"
    "{\"op\":\"aten.relu.default\",\"outputs\":[\"relu\"],\"args\":[{\"name\":\"self\",\"tensor\":\"addmm\"}]},"
    "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"mul\"],\"args\":[{\"name\":\"self\",\"tensor\":\"relu\"},"
    "{\"name\":\"other\",\"float\":0.5}]}]}";

static void test_linear_relu_scale(void) {
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(linear_relu_scale, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK_EQ_INT(group_of(&g, &p, "addmm"), group_of(&g, &p, "relu"));
    KF_CHECK_EQ_INT(group_of(&g, &p, "addmm"), group_of(&g, &p, "mul"));
    KF_CHECK_EQ_INT(group_of(&g, &p, "t"), -1);   /* a view: no kernel */
    /* gemm step (weight read transposed in place) + one fused epilogue kernel */
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_GEMM), 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    for (int i = 0; i < prog.n_steps; i++)
        if (prog.steps[i].kind == KF_STEP_GEMM) KF_CHECK_EQ_INT(prog.steps[i].trans_b, 1);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    /* the same plan with generated matmul loops instead of the library */
    kf_gsched s;
    kf_gsched_auto(&g, &p, 0, &s);
    KF_CHECK_EQ_INT(s.impl, KF_IMPL_LIB);
    s.impl = KF_IMPL_KIR;
    kf_program kir;
    kf_err err;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, &s, "cpu", "test", &kir, &err), 0);
    KF_CHECK_EQ_INT(count_steps(&kir, KF_STEP_GEMM), 0);
    KF_CHECK_EQ_INT(count_steps(&kir, KF_STEP_LAUNCH), 1);
    KF_CHECK(compare_with_naive(&g, &kir) < 1e-4);
    kf_program_free(&kir);
    done(&g, &p, &prog);
}

static void test_softmax(void) {
    static const char op[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 16, 300) "," T("y", "f32", 16, 300) "},\"nodes\":["
        "{\"op\":\"aten._softmax.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"int\":1},{\"name\":\"half_to_float\",\"bool\":false}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(op, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    /* the three-pass kernel (DIRECT) and the op builder's (KIR) agree with the naive lowering */
    kf_gsched ss;
    kf_gsched_auto(&g, &p, 0, &ss);
    KF_CHECK_EQ_INT(ss.impl, KF_IMPL_DIRECT);
    ss.impl = KF_IMPL_KIR;
    kf_program kir;
    kf_err err;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, &ss, "cpu", "test", &kir, &err), 0);
    KF_CHECK(compare_with_naive(&g, &kir) < 1e-4);
    kf_program_free(&kir);
    done(&g, &p, &prog);

    /* log-softmax over the last dim of a 3-D tensor (row shorter than the lanes: no lane pass)
     * with a prologue (x * 0.5) and an epilogue (+ 1) */
    static const char lsm[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"z\"],\"values\":{"
        T("x0", "f32", 3, 5, 37) "," T("h", "f32", 3, 5, 37) "," T("y", "f32", 3, 5, 37) "," T("z", "f32", 3, 5, 37) "},"
        "\"nodes\":["
        "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"h\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"other\",\"float\":0.5}]},"
        "{\"op\":\"aten._log_softmax.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"self\",\"tensor\":\"h\"},"
        "{\"name\":\"dim\",\"int\":-1},{\"name\":\"half_to_float\",\"bool\":false}]},"
        "{\"op\":\"aten.add.Tensor\",\"outputs\":[\"z\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"},"
        "{\"name\":\"other\",\"float\":1.0}]}]}";
    if (plan_lower(lsm, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);

    /* written out: amax, sub, exp, sum, div; exp(x - max) is recomputed, never stored */
    static const char manual[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 16, 300) "," T("m", "f32", 16, 1) "," T("s", "f32", 16, 300) "," T("e", "f32", 16, 300) ","
        T("z", "f32", 16, 1) "," T("y", "f32", 16, 300) "},\"nodes\":["
        "{\"op\":\"aten.amax.default\",\"outputs\":[\"m\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"list\":[{\"int\":1}]},{\"name\":\"keepdim\",\"bool\":true}]},"
        "{\"op\":\"aten.sub.Tensor\",\"outputs\":[\"s\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"other\",\"tensor\":\"m\"},{\"name\":\"alpha\",\"int\":1}]},"
        "{\"op\":\"aten.exp.default\",\"outputs\":[\"e\"],\"args\":[{\"name\":\"self\",\"tensor\":\"s\"}]},"
        "{\"op\":\"aten.sum.dim_IntList\",\"outputs\":[\"z\"],\"args\":[{\"name\":\"self\",\"tensor\":\"e\"},"
        "{\"name\":\"dim\",\"list\":[{\"int\":1}]},{\"name\":\"keepdim\",\"bool\":true}]},"
        "{\"op\":\"aten.div.Tensor\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"self\",\"tensor\":\"e\"},"
        "{\"name\":\"other\",\"tensor\":\"z\"}]}]}";
    if (plan_lower(manual, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK(p.n_groups <= 3);
    KF_CHECK(!p.stored[kf_graph_find(&g, "e")]);
    KF_CHECK(!p.stored[kf_graph_find(&g, "s")]);
    KF_CHECK(count_steps(&prog, KF_STEP_LAUNCH) <= 3);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);
}

static const char conv_bn_relu[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\",\"p5\"],\"outputs\":[\"relu\"],\"values\":{"
    T("x0", "f32", 2, 3, 9, 11) "," T("p0", "f32", 5, 3, 3, 3) "," T("p5", "f32", 5) "," T("p1", "f32", 5) ","
    T("p2", "f32", 5) "," T("p3", "f32", 5) "," T("p4", "f32", 5) "," T("conv", "f32", 2, 5, 9, 11) ","
    T("bn", "f32", 2, 5, 9, 11) "," T("relu", "f32", 2, 5, 9, 11) "},\"nodes\":["
    "{\"op\":\"aten.convolution.default\",\"outputs\":[\"conv\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"},"
    "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p5\"},"
    "{\"name\":\"stride\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"padding\",\"list\":[{\"int\":1},{\"int\":1}]},"
    "{\"name\":\"dilation\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"transposed\",\"bool\":false},"
    "{\"name\":\"output_padding\",\"list\":[{\"int\":0},{\"int\":0}]},{\"name\":\"groups\",\"int\":1}]},"
    "{\"op\":\"aten.native_batch_norm.default\",\"outputs\":[\"bn\",\"\",\"\"],\"args\":["
    "{\"name\":\"input\",\"tensor\":\"conv\"},{\"name\":\"weight\",\"tensor\":\"p1\"},{\"name\":\"bias\",\"tensor\":\"p2\"},"
    "{\"name\":\"running_mean\",\"tensor\":\"p3\"},{\"name\":\"running_var\",\"tensor\":\"p4\"},"
    "{\"name\":\"training\",\"bool\":true},{\"name\":\"momentum\",\"float\":0.1},{\"name\":\"eps\",\"float\":1e-05}]},"
    "{\"op\":\"aten.relu.default\",\"outputs\":[\"relu\"],\"args\":[{\"name\":\"self\",\"tensor\":\"bn\"}]}]}";

static void test_conv_bn_relu(void) {
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(conv_bn_relu, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    /* training-mode batch norm needs the whole conv output: conv | batch norm + relu */
    KF_CHECK_EQ_INT(p.n_groups, 2);
    KF_CHECK(group_of(&g, &p, "conv") != group_of(&g, &p, "bn"));
    KF_CHECK_EQ_INT(group_of(&g, &p, "bn"), group_of(&g, &p, "relu"));
    KF_CHECK(!p.stored[kf_graph_find(&g, "bn")]);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    /* im2col + gemm (bias in a small epilogue kernel), or the direct kernel (bias as its start
     * value); batch norm with relu applied before its store either way */
    static const kf_impl impls[] = {KF_IMPL_IM2COL, KF_IMPL_DIRECT, KF_IMPL_KIR};
    static const int gemms[] = {1, 0, 0}, launches[] = {3, 3, 2};   /* direct: padding + conv */
    for (int i = 0; i < 3; i++) {
        kf_gsched s[2];
        kf_gsched_auto(&g, &p, 0, &s[0]);
        kf_gsched_auto(&g, &p, 1, &s[1]);
        KF_CHECK(s[0].impl == KF_IMPL_IM2COL || s[0].impl == KF_IMPL_DIRECT);
        s[0].impl = impls[i];
        kf_program v;
        kf_err err;
        KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, s, "cpu", "test", &v, &err), 0);
        KF_CHECK_EQ_INT(count_steps(&v, KF_STEP_GEMM), gemms[i]);
        KF_CHECK_EQ_INT(count_steps(&v, KF_STEP_LAUNCH), launches[i]);
        KF_CHECK(compare_with_naive(&g, &v) < 1e-4);
        kf_program_free(&v);
    }
    done(&g, &p, &prog);
}

/* A convolution through every implementation that admits it, against the naive lowering. */
static void conv_impls(const char *json, int expect_im2col) {
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(json, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    KF_CHECK_EQ_INT(kf_fuse_impl_ok(&g, &p, 0, KF_IMPL_IM2COL), expect_im2col);
    KF_CHECK(kf_fuse_impl_ok(&g, &p, 0, KF_IMPL_DIRECT));
    static const kf_impl impls[] = {KF_IMPL_KIR, KF_IMPL_IM2COL, KF_IMPL_DIRECT};
    for (int i = 0; i < 3; i++) {
        if (!kf_fuse_impl_ok(&g, &p, 0, impls[i])) continue;
        for (int block = 1; block <= 4; block += 3)
            for (int parts = 1; parts <= (impls[i] == KF_IMPL_DIRECT ? 3 : 1); parts++) {
                kf_gsched s;
                kf_gsched_auto(&g, &p, 0, &s);
                s.impl = impls[i];
                s.block = block;
                s.tile = impls[i] == KF_IMPL_DIRECT ? parts : s.tile;  /* direct: output positions per lane */
                kf_program v;
                kf_err err;
                KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, &s, "cpu", "test", &v, &err), 0);
                double d = compare_with_naive(&g, &v);
                if (!(d < 1e-4)) fprintf(stderr, "  impl %d block %d parts %d: %g\n", (int)impls[i], block, parts, d);
                KF_CHECK(d < 1e-4);
                kf_program_free(&v);
            }
    }
    done(&g, &p, &prog);
}

#define CONV_NODE(stride, pad, dil, groups) \
    "{\"op\":\"aten.convolution.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"}," \
    "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p1\"}," \
    "{\"name\":\"stride\",\"list\":" stride "},{\"name\":\"padding\",\"list\":" pad "}," \
    "{\"name\":\"dilation\",\"list\":" dil "},{\"name\":\"transposed\",\"bool\":false}," \
    "{\"name\":\"output_padding\",\"list\":[{\"int\":0},{\"int\":0}]},{\"name\":\"groups\",\"int\":" groups "}]}"

static void test_conv_variants(void) {
    /* strided, dilated, padded 2-D convolution with two groups: 2x6x13x11 -> 2x4x6x5 */
    static const char grouped[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 2, 6, 13, 11) "," T("p0", "f32", 4, 3, 3, 3) "," T("p1", "f32", 4) "," T("y", "f32", 2, 4, 6, 5) "},"
        "\"nodes\":[" CONV_NODE("[{\"int\":2},{\"int\":2}]", "[{\"int\":1},{\"int\":1}]", "[{\"int\":2},{\"int\":2}]", "2") "]}";
    conv_impls(grouped, 0);
    /* depthwise 3x3, padding 1: 2x8x10x12 -> 2x8x10x12 */
    static const char depthwise[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 2, 8, 10, 12) "," T("p0", "f32", 8, 1, 3, 3) "," T("p1", "f32", 8) "," T("y", "f32", 2, 8, 10, 12) "},"
        "\"nodes\":[" CONV_NODE("[{\"int\":1},{\"int\":1}]", "[{\"int\":1},{\"int\":1}]", "[{\"int\":1},{\"int\":1}]", "8") "]}";
    conv_impls(depthwise, 0);
    /* 1-D, stride 3, padding 2: 3x5x40 -> 3x8x14 */
    static const char conv1d[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 3, 5, 40) "," T("p0", "f32", 8, 5, 4) "," T("p1", "f32", 8) "," T("y", "f32", 3, 8, 14) "},"
        "\"nodes\":[" CONV_NODE("[{\"int\":3}]", "[{\"int\":2}]", "[{\"int\":1}]", "1") "]}";
    conv_impls(conv1d, 1);
    /* rows wider than a 16-lane vector: spans of a row per lane, an overlapping last vector
     * (37 = 16 + 16 + 5 and 37 / 2 = 18 + a one-position tail), consecutive rows (4 / 2):
     * 2x6x4x37 -> 2x8x4x37 (3x3, padding 1) */
    static const char wide[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 2, 6, 4, 37) "," T("p0", "f32", 8, 6, 3, 3) "," T("p1", "f32", 8) "," T("y", "f32", 2, 8, 4, 37) "},"
        "\"nodes\":[" CONV_NODE("[{\"int\":1},{\"int\":1}]", "[{\"int\":1},{\"int\":1}]", "[{\"int\":1},{\"int\":1}]", "1") "]}";
    conv_impls(wide, 1);
    /* 1-D, stride 2, padding 1 over a channel plane of 64 floats (copied with a skewed
     * stride): 2x4x64 -> 2x8x32 */
    static const char wide1d[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 2, 4, 64) "," T("p0", "f32", 8, 4, 3) "," T("p1", "f32", 8) "," T("y", "f32", 2, 8, 32) "},"
        "\"nodes\":[" CONV_NODE("[{\"int\":2}]", "[{\"int\":1}]", "[{\"int\":1}]", "1") "]}";
    conv_impls(wide1d, 1);
}

static void test_conv_transposed(void) {
    /* 2-D transposed, stride 2, padding 1, output padding 1, dilation 1: 2x6x5x7 -> 2x4x10x14,
     * then softplus as its epilogue */
    static const char convt[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"z\"],\"values\":{"
        T("x0", "f32", 2, 6, 5, 7) "," T("p0", "f32", 6, 4, 3, 3) "," T("p1", "f32", 4) "," T("y", "f32", 2, 4, 10, 14) ","
        T("z", "f32", 2, 4, 10, 14) "},\"nodes\":["
        "{\"op\":\"aten.convolution.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"},"
        "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p1\"},"
        "{\"name\":\"stride\",\"list\":[{\"int\":2},{\"int\":2}]},{\"name\":\"padding\",\"list\":[{\"int\":1},{\"int\":1}]},"
        "{\"name\":\"dilation\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"transposed\",\"bool\":true},"
        "{\"name\":\"output_padding\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"groups\",\"int\":1}]},"
        "{\"op\":\"aten.softplus.default\",\"outputs\":[\"z\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"},"
        "{\"name\":\"beta\",\"int\":1},{\"name\":\"threshold\",\"int\":20}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(convt, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    kf_gsched s;
    kf_gsched_auto(&g, &p, 0, &s);
    KF_CHECK_EQ_INT(s.impl, KF_IMPL_IM2COL);
    /* gemm, col2im (phase-split interior, bounds-tested edges), then the softplus epilogue as
     * a vectorised loop */
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_GEMM), 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 2);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);
    /* 1-D, stride 3, padding 2, dilation 2, kernel 3, no epilogue (the gather writes the
     * output itself): 2x5x23 -> 2x3x(22 * 3 - 4 + 4 + 1 + 1 = 68); phases without taps too */
    static const char convt1d[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
        T("x0", "f32", 2, 5, 23) "," T("p0", "f32", 5, 3, 3) "," T("p1", "f32", 3) "," T("y", "f32", 2, 3, 68) "},\"nodes\":["
        "{\"op\":\"aten.convolution.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"},"
        "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p1\"},"
        "{\"name\":\"stride\",\"list\":[{\"int\":3}]},{\"name\":\"padding\",\"list\":[{\"int\":2}]},"
        "{\"name\":\"dilation\",\"list\":[{\"int\":2}]},{\"name\":\"transposed\",\"bool\":true},"
        "{\"name\":\"output_padding\",\"list\":[{\"int\":1}]},{\"name\":\"groups\",\"int\":1}]}]}";
    if (plan_lower(convt1d, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_GEMM), 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);
}

static void test_column_reductions(void) {
    /* sum over the middle dim, then relu (epilogue); max over the middle dim with indices */
    static const char sum_mid[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"r\",\"mv\",\"mi\",\"am\"],\"values\":{"
        T("x0", "f32", 3, 37, 700) "," T("s", "f32", 3, 700) "," T("r", "f32", 3, 700) ","
        T("mv", "f32", 3, 700) "," T("mi", "i64", 3, 700) "," T("am", "i64", 3, 1, 700) "},\"nodes\":["
        "{\"op\":\"aten.sum.dim_IntList\",\"outputs\":[\"s\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"list\":[{\"int\":1}]},{\"name\":\"keepdim\",\"bool\":false}]},"
        "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"s\"}]},"
        "{\"op\":\"aten.max.dim\",\"outputs\":[\"mv\",\"mi\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"int\":1},{\"name\":\"keepdim\",\"bool\":false}]},"
        "{\"op\":\"aten.argmin.default\",\"outputs\":[\"am\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"int\":-2},{\"name\":\"keepdim\",\"bool\":true}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(sum_mid, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 3);
    KF_CHECK_EQ_INT(group_of(&g, &p, "s"), group_of(&g, &p, "r"));
    for (int gi = 0; gi < p.n_groups; gi++) {
        KF_CHECK(kf_fuse_impl_ok(&g, &p, gi, KF_IMPL_DIRECT));
        kf_gsched s;
        kf_gsched_auto(&g, &p, gi, &s);
        KF_CHECK_EQ_INT(s.impl, KF_IMPL_DIRECT);
    }
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    /* integer outputs must agree exactly (compare_with_naive compares their bytes) */
    kf_gsched s3[3];
    for (int gi = 0; gi < 3; gi++) {
        kf_gsched_auto(&g, &p, gi, &s3[gi]);
        s3[gi].parallel = 0;
    }
    kf_program serial;
    kf_err err;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, s3, "cpu", "test", &serial, &err), 0);
    KF_CHECK(compare_with_naive(&g, &serial) < 1e-4);
    kf_program_free(&serial);
    done(&g, &p, &prog);

    /* extremes over the innermost dim (100 = 6 chunks of 16 lanes + a tail of 4) */
    static const char inner[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"mv\",\"mi\",\"am\"],\"values\":{"
        T("x0", "f32", 7, 100) "," T("mv", "f32", 7) "," T("mi", "i64", 7) "," T("am", "i64", 7) "},\"nodes\":["
        "{\"op\":\"aten.min.dim\",\"outputs\":[\"mv\",\"mi\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"int\":1},{\"name\":\"keepdim\",\"bool\":false}]},"
        "{\"op\":\"aten.argmax.default\",\"outputs\":[\"am\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"dim\",\"int\":-1},{\"name\":\"keepdim\",\"bool\":false}]}]}";
    if (plan_lower(inner, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    for (int gi = 0; gi < p.n_groups; gi++) KF_CHECK(kf_fuse_impl_ok(&g, &p, gi, KF_IMPL_DIRECT));
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-6);
    done(&g, &p, &prog);
}

static void test_pools(void) {
    /* relu then 2-D max pool (3x3, stride 2, padding 1, dilation 1) then tanh; a 1-D average
     * pool (kernel 4, stride 2, padding 1) of the same input viewed as rows */
    static const char pools[] =
        "{\"inputs\":[\"x0\"],\"params\":[],\"outputs\":[\"t\",\"av\"],\"values\":{"
        T("x0", "f32", 2, 3, 17, 21) "," T("r", "f32", 2, 3, 17, 21) "," T("mp", "f32", 2, 3, 9, 11) ","
        T("t", "f32", 2, 3, 9, 11) "," T("av", "f32", 2, 3, 17, 10) "},\"nodes\":["
        "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"}]},"
        "{\"op\":\"aten.max_pool2d_with_indices.default\",\"outputs\":[\"mp\",\"\"],\"args\":["
        "{\"name\":\"self\",\"tensor\":\"r\"},{\"name\":\"kernel_size\",\"list\":[{\"int\":3},{\"int\":3}]},"
        "{\"name\":\"stride\",\"list\":[{\"int\":2},{\"int\":2}]},{\"name\":\"padding\",\"list\":[{\"int\":1},{\"int\":1}]},"
        "{\"name\":\"dilation\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"ceil_mode\",\"bool\":false}]},"
        "{\"op\":\"aten.tanh.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"mp\"}]},"
        "{\"op\":\"aten.avg_pool2d.default\",\"outputs\":[\"av\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"kernel_size\",\"list\":[{\"int\":1},{\"int\":4}]},{\"name\":\"stride\",\"list\":[{\"int\":1},{\"int\":2}]},"
        "{\"name\":\"padding\",\"list\":[{\"int\":0},{\"int\":1}]},{\"name\":\"ceil_mode\",\"bool\":false},"
        "{\"name\":\"count_include_pad\",\"bool\":true},{\"name\":\"divisor_override\",\"none\":true}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(pools, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 2);
    KF_CHECK_EQ_INT(group_of(&g, &p, "mp"), group_of(&g, &p, "t"));
    KF_CHECK(p.prologue[g.values[kf_graph_find(&g, "r")].index]);
    for (int gi = 0; gi < p.n_groups; gi++) {
        kf_gsched s;
        kf_gsched_auto(&g, &p, gi, &s);
        KF_CHECK_EQ_INT(s.impl, KF_IMPL_DIRECT);
    }
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-5);
    kf_gsched s2[2];
    for (int gi = 0; gi < 2; gi++) {
        kf_gsched_auto(&g, &p, gi, &s2[gi]);
        s2[gi].impl = KF_IMPL_KIR;
    }
    kf_program kir;
    kf_err err;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, s2, "cpu", "test", &kir, &err), 0);
    KF_CHECK(compare_with_naive(&g, &kir) < 1e-5);
    kf_program_free(&kir);
    done(&g, &p, &prog);
}

static void test_batchnorm_rows(void) {
    /* linear, then training-mode BatchNorm1d over [N, C] with relu after it */
    static const char bn[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\",\"p5\"],\"outputs\":[\"r\"],\"values\":{"
        T("x0", "f32", 33, 20) "," T("p0", "f32", 70, 20) "," T("p1", "f32", 70) "," T("p2", "f32", 70) ","
        T("p3", "f32", 70) "," T("p4", "f32", 70) "," T("p5", "f32", 70) "," T("t", "f32", 20, 70) ","
        T("y", "f32", 33, 70) "," T("b", "f32", 33, 70) "," T("r", "f32", 33, 70) "},\"nodes\":["
        "{\"op\":\"aten.t.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"}]},"
        "{\"op\":\"aten.addmm.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p1\"},"
        "{\"name\":\"mat1\",\"tensor\":\"x0\"},{\"name\":\"mat2\",\"tensor\":\"t\"}]},"
        "{\"op\":\"aten.native_batch_norm.default\",\"outputs\":[\"b\",\"\",\"\"],\"args\":["
        "{\"name\":\"input\",\"tensor\":\"y\"},{\"name\":\"weight\",\"tensor\":\"p2\"},{\"name\":\"bias\",\"tensor\":\"p3\"},"
        "{\"name\":\"running_mean\",\"tensor\":\"p4\"},{\"name\":\"running_var\",\"tensor\":\"p5\"},"
        "{\"name\":\"training\",\"bool\":true},{\"name\":\"momentum\",\"float\":0.1},{\"name\":\"eps\",\"float\":1e-05}]},"
        "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"b\"}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(bn, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 2);
    KF_CHECK_EQ_INT(group_of(&g, &p, "b"), group_of(&g, &p, "r"));
    int gi = group_of(&g, &p, "b");
    KF_CHECK(gi >= 0 && kf_fuse_impl_ok(&g, &p, gi, KF_IMPL_DIRECT));
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);
}

static void test_broadcast_rows(void) {
    /* operands broadcast along every pattern of a row-wise loop: per channel [3,1,1], per
     * column [20], per row [5,1], a scalar [1] */
    static const char bc[] =
        "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\",\"p2\",\"p3\"],\"outputs\":[\"d\"],\"values\":{"
        T("x0", "f32", 2, 3, 5, 20) "," T("p0", "f32", 3, 1, 1) "," T("p1", "f32", 20) "," T("p2", "f32", 5, 1) ","
        T("p3", "f32", 1) "," T("a", "f32", 2, 3, 5, 20) "," T("b", "f32", 2, 3, 5, 20) "," T("c", "f32", 2, 3, 5, 20) ","
        T("d", "f32", 2, 3, 5, 20) "},\"nodes\":["
        "{\"op\":\"aten.add.Tensor\",\"outputs\":[\"a\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"},"
        "{\"name\":\"other\",\"tensor\":\"p0\"}]},"
        "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"b\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"},"
        "{\"name\":\"other\",\"tensor\":\"p1\"}]},"
        "{\"op\":\"aten.sub.Tensor\",\"outputs\":[\"c\"],\"args\":[{\"name\":\"self\",\"tensor\":\"b\"},"
        "{\"name\":\"other\",\"tensor\":\"p2\"}]},"
        "{\"op\":\"aten.div.Tensor\",\"outputs\":[\"d\"],\"args\":[{\"name\":\"self\",\"tensor\":\"c\"},"
        "{\"name\":\"other\",\"tensor\":\"p3\"}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(bc, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    /* rows of 20: no division of the flat index per element */
    KF_CHECK(prog.n_sources == 1 && strstr(prog.sources[0].text, "#pragma omp simd"));
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-5);
    done(&g, &p, &prog);
}

static void test_cell_two_outputs(void) {
    /* an LSTM-like cell: both c and h leave the group, everything else stays in registers */
    static const char cell[] =
        "{\"inputs\":[\"x0\",\"x1\"],\"params\":[],\"outputs\":[\"c\",\"h\"],\"values\":{"
        T("x0", "f32", 8, 64) "," T("x1", "f32", 8, 64) "," T("a", "f32", 8, 64) "," T("b", "f32", 8, 64) ","
        T("c", "f32", 8, 64) "," T("d", "f32", 8, 64) "," T("h", "f32", 8, 64) "},\"nodes\":["
        "{\"op\":\"aten.sigmoid.default\",\"outputs\":[\"a\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"}]},"
        "{\"op\":\"aten.tanh.default\",\"outputs\":[\"b\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x1\"}]},"
        "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"c\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"},"
        "{\"name\":\"other\",\"tensor\":\"b\"}]},"
        "{\"op\":\"aten.tanh.default\",\"outputs\":[\"d\"],\"args\":[{\"name\":\"self\",\"tensor\":\"c\"}]},"
        "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"h\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"},"
        "{\"name\":\"other\",\"tensor\":\"d\"}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(cell, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK_EQ_INT(p.groups[0].n_stores, 2);
    KF_CHECK(!p.stored[kf_graph_find(&g, "a")]);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-5);
    done(&g, &p, &prog);
}

static void test_prologue_and_views(void) {
    /* sum(sigmoid(x) * transpose(y)): the product is inlined into the reduction, the
     * transpose into the product's loads */
    static const char red[] =
        "{\"inputs\":[\"x0\",\"x1\"],\"params\":[],\"outputs\":[\"s\"],\"values\":{"
        T("x0", "f32", 12, 20) "," T("x1", "f32", 20, 12) "," T("yt", "f32", 12, 20) "," T("a", "f32", 12, 20) ","
        T("m", "f32", 12, 20) "," T("s", "f32", 12) "},\"nodes\":["
        "{\"op\":\"aten.transpose.int\",\"outputs\":[\"yt\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x1\"},"
        "{\"name\":\"dim0\",\"int\":0},{\"name\":\"dim1\",\"int\":1}]},"
        "{\"op\":\"aten.sigmoid.default\",\"outputs\":[\"a\"],\"args\":[{\"name\":\"self\",\"tensor\":\"x0\"}]},"
        "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"m\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"},"
        "{\"name\":\"other\",\"tensor\":\"yt\"}]},"
        "{\"op\":\"aten.sum.dim_IntList\",\"outputs\":[\"s\"],\"args\":[{\"name\":\"self\",\"tensor\":\"m\"},"
        "{\"name\":\"dim\",\"list\":[{\"int\":1}]},{\"name\":\"keepdim\",\"bool\":false}]}]}";
    kf_graph g;
    kf_fplan p;
    kf_program prog;
    if (plan_lower(red, &g, &p, &prog)) {
        KF_CHECK(0);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    KF_CHECK(p.prologue[g.values[kf_graph_find(&g, "m")].index]);
    KF_CHECK_EQ_INT(p.kind[g.values[kf_graph_find(&g, "yt")].index], KF_FN_GATHER);
    KF_CHECK_EQ_INT(count_steps(&prog, KF_STEP_LAUNCH), 1);
    /* two inputs and the output: nothing materialised (the vector math's constant table at most) */
    int big_scratch = 0;
    for (int i = 0; i < prog.n_bufs; i++)
        big_scratch += prog.bufs[i].role == KF_BUF_SCRATCH && kf_tdesc_numel(&prog.bufs[i].desc) > 64;
    KF_CHECK_EQ_INT(big_scratch, 0);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    done(&g, &p, &prog);
}

static void test_plan_describe_and_unfused(void) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(linear_relu_scale, &g, &err), 0);
    kf_fuse_opts o;
    kf_fuse_opts_default(&o);
    o.ew_chains = o.prologues = o.epilogues = 0;
    kf_fplan p;
    KF_CHECK_EQ_INT(kf_fuse_plan(&g, &o, &p, &err), 0);
    KF_CHECK_EQ_INT(p.n_groups, 3);   /* addmm | relu | mul */
    char *d = kf_fuse_plan_describe(&g, &p);
    KF_CHECK(d && strstr(d, "addmm*"));
    free(d);
    kf_program prog;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, NULL, "cpu", "test", &prog, &err), 0);
    KF_CHECK(compare_with_naive(&g, &prog) < 1e-4);
    kf_program_free(&prog);
    kf_fuse_plan_free(&p);
    kf_graph_free(&g);
}

int main(void) {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/kf_test_fuse_%ld", (long)getpid());
    KF_RUN(test_linear_relu_scale);
    KF_RUN(test_softmax);
    KF_RUN(test_conv_bn_relu);
    KF_RUN(test_conv_variants);
    KF_RUN(test_conv_transposed);
    KF_RUN(test_column_reductions);
    KF_RUN(test_pools);
    KF_RUN(test_batchnorm_rows);
    KF_RUN(test_broadcast_rows);
    KF_RUN(test_cell_two_outputs);
    KF_RUN(test_prologue_and_views);
    KF_RUN(test_plan_describe_and_unfused);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cache_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
    return kf_test_report();
}
