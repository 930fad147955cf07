/* test_fuse_convlib.c: convolutions through the target's conv step (the LIB implementation
 * of CONV groups, kf_fplan.lib_conv, the default on cuda where cuDNN loads). The fused
 * programs are lowered for the cpu target too, whose conv step is the reference loop, and
 * run next to the naive lowering (same inputs, outputs within 1e-4): the conv step's fields
 * and the fused epilogue (bias, activation) are checked by numbers without a GPU. For cuda
 * the program is built (not run): one conv step, the epilogue kernel, kernels.cu, compiled
 * by NVRTC where it is installed. Without
 * lib_conv nothing changes: no conv step, the generated convolution. The search agent's
 * space on cuda starts from the conv step and keeps the generated convolution as a
 * neighbour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kf_test.h"
#include "agents/fuse.h"
#include "agents/lower.h"
#include "agents/search.h"
#include "targets/kf_target.h"

#include "fuse_run.h"


#define T(name, dt, ...) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":[" #__VA_ARGS__ "]}"

#define CONV_NODE(out, stride, pad, dil, transposed, opad, groups) \
    "{\"op\":\"aten.convolution.default\",\"outputs\":[\"" out "\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"}," \
    "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p1\"}," \
    "{\"name\":\"stride\",\"list\":" stride "},{\"name\":\"padding\",\"list\":" pad "}," \
    "{\"name\":\"dilation\",\"list\":" dil "},{\"name\":\"transposed\",\"bool\":" transposed "}," \
    "{\"name\":\"output_padding\",\"list\":" opad "},{\"name\":\"groups\",\"int\":" groups "}]}"
#define I2(a, b) "[{\"int\":" #a "},{\"int\":" #b "}]"
#define I1(a) "[{\"int\":" #a "}]"

/* conv + bias, then relu: the epilogue kernel adds the bias and applies relu */
static const char g_relu[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"r\"],\"values\":{"
    T("x0", "f32", 2, 4, 12, 12) "," T("p0", "f32", 8, 4, 3, 3) "," T("p1", "f32", 8) ","
    T("y", "f32", 2, 8, 12, 12) "," T("r", "f32", 2, 8, 12, 12) "},\"nodes\":["
    CONV_NODE("y", I2(1, 1), I2(1, 1), I2(1, 1), "false", I2(0, 0), "1") ","
    "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"}]}]}";
/* a strided, dilated, grouped conv alone: the step writes the output and adds the bias */
static const char g_plain[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"y\"],\"values\":{"
    T("x0", "f32", 2, 6, 13, 11) "," T("p0", "f32", 4, 3, 3, 3) "," T("p1", "f32", 4) "," T("y", "f32", 2, 4, 6, 5) "},"
    "\"nodes\":[" CONV_NODE("y", I2(2, 2), I2(1, 1), I2(2, 2), "false", I2(0, 0), "2") "]}";
/* 1-d, stride 3, padding 2, then tanh */
static const char g_1d[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"t\"],\"values\":{"
    T("x0", "f32", 3, 5, 40) "," T("p0", "f32", 8, 5, 4) "," T("p1", "f32", 8) "," T("y", "f32", 3, 8, 14) ","
    T("t", "f32", 3, 8, 14) "},\"nodes\":[" CONV_NODE("y", I1(3), I1(2), I1(1), "false", I1(0), "1") ","
    "{\"op\":\"aten.tanh.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"}]}]}";
/* transposed, stride 2, padding 1, output padding 1, then softplus */
static const char g_convt[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"z\"],\"values\":{"
    T("x0", "f32", 2, 6, 5, 7) "," T("p0", "f32", 6, 4, 3, 3) "," T("p1", "f32", 4) "," T("y", "f32", 2, 4, 10, 14) ","
    T("z", "f32", 2, 4, 10, 14) "},\"nodes\":[" CONV_NODE("y", I2(2, 2), I2(1, 1), I2(1, 1), "true", I2(1, 1), "1") ","
    "{\"op\":\"aten.softplus.default\",\"outputs\":[\"z\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"},"
    "{\"name\":\"beta\",\"int\":1},{\"name\":\"threshold\",\"int\":20}]}]}";

/* conv + bias, then a max pool, then tanh (outputs as given): the bias can go into the pool's
 * loads unless the conv's result is an output too */
#define POOL_GRAPH(outputs) \
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[" outputs "],\"values\":{" \
    T("x0", "f32", 2, 3, 14, 14) "," T("p0", "f32", 5, 3, 3, 3) "," T("p1", "f32", 5) "," T("y", "f32", 2, 5, 12, 12) "," \
    T("mp", "f32", 2, 5, 6, 6) "," T("t", "f32", 2, 5, 6, 6) "},\"nodes\":[" \
    CONV_NODE("y", I2(1, 1), I2(0, 0), I2(1, 1), "false", I2(0, 0), "1") "," \
    "{\"op\":\"aten.max_pool2d_with_indices.default\",\"outputs\":[\"mp\",\"\"],\"args\":[" \
    "{\"name\":\"self\",\"tensor\":\"y\"},{\"name\":\"kernel_size\",\"list\":[{\"int\":2},{\"int\":2}]}," \
    "{\"name\":\"stride\",\"list\":[{\"int\":2},{\"int\":2}]},{\"name\":\"padding\",\"list\":[{\"int\":0},{\"int\":0}]}," \
    "{\"name\":\"dilation\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"ceil_mode\",\"bool\":false}]}," \
    "{\"op\":\"aten.tanh.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"mp\"}]}]}"
static const char g_pool[] = POOL_GRAPH("\"t\"");
static const char g_pool_out[] = POOL_GRAPH("\"t\",\"y\"");
/* linear (addmm with a bias) alone, then a softmax over its rows: the bias can go into the
 * softmax's loads, so no epilogue kernel runs after the gemm */
static const char g_linear_softmax[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"s\"],\"values\":{"
    T("x0", "f32", 9, 20) "," T("p0", "f32", 37) "," T("p1", "f32", 37, 20) "," T("t", "f32", 20, 37) ","
    T("y", "f32", 9, 37) "," T("s", "f32", 9, 37) "},\"nodes\":["
    "{\"op\":\"aten.t.default\",\"outputs\":[\"t\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p1\"}]},"
    "{\"op\":\"aten.addmm.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"},"
    "{\"name\":\"mat1\",\"tensor\":\"x0\"},{\"name\":\"mat2\",\"tensor\":\"t\"},{\"name\":\"beta\",\"float\":0.5},"
    "{\"name\":\"alpha\",\"int\":1}]},"
    "{\"op\":\"aten._softmax.default\",\"outputs\":[\"s\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"},"
    "{\"name\":\"dim\",\"int\":1},{\"name\":\"half_to_float\",\"bool\":false}]}]}";

/* conv + bias -> training batch norm -> relu -> max pool: the conv's bias and the norm's
 * normalisation both go into the pool's loads; the norm's kernel only takes statistics */
static const char g_bn_pool[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\",\"p5\"],\"outputs\":[\"mp\"],\"values\":{"
    T("x0", "f32", 3, 3, 10, 10) "," T("p0", "f32", 4, 3, 3, 3) "," T("p1", "f32", 4) "," T("p2", "f32", 4) ","
    T("p3", "f32", 4) "," T("p4", "f32", 4) "," T("p5", "f32", 4) "," T("y", "f32", 3, 4, 8, 8) ","
    T("bn", "f32", 3, 4, 8, 8) "," T("r", "f32", 3, 4, 8, 8) "," T("mp", "f32", 3, 4, 4, 4) "},\"nodes\":["
    "{\"op\":\"aten.convolution.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"},"
    "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p5\"},"
    "{\"name\":\"stride\",\"list\":" I2(1, 1) "},{\"name\":\"padding\",\"list\":" I2(0, 0) "},"
    "{\"name\":\"dilation\",\"list\":" I2(1, 1) "},{\"name\":\"transposed\",\"bool\":false},"
    "{\"name\":\"output_padding\",\"list\":" I2(0, 0) "},{\"name\":\"groups\",\"int\":1}]},"
    "{\"op\":\"aten.native_batch_norm.default\",\"outputs\":[\"bn\",\"\",\"\"],\"args\":["
    "{\"name\":\"input\",\"tensor\":\"y\"},{\"name\":\"weight\",\"tensor\":\"p1\"},{\"name\":\"bias\",\"tensor\":\"p2\"},"
    "{\"name\":\"running_mean\",\"tensor\":\"p3\"},{\"name\":\"running_var\",\"tensor\":\"p4\"},"
    "{\"name\":\"training\",\"bool\":true},{\"name\":\"momentum\",\"float\":0.1},{\"name\":\"eps\",\"float\":1e-05}]},"
    "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"bn\"}]},"
    "{\"op\":\"aten.max_pool2d_with_indices.default\",\"outputs\":[\"mp\",\"\"],\"args\":["
    "{\"name\":\"self\",\"tensor\":\"r\"},{\"name\":\"kernel_size\",\"list\":" I2(2, 2) "},"
    "{\"name\":\"stride\",\"list\":" I2(2, 2) "},{\"name\":\"padding\",\"list\":" I2(0, 0) "},"
    "{\"name\":\"dilation\",\"list\":" I2(1, 1) "},{\"name\":\"ceil_mode\",\"bool\":false}]}]}";

/* LSTM-like gates: g = addmm(b1, x, W1^T) + addmm(b2, h, W2^T), then sigmoid(g[:, :16]) *
 * tanh(g[:, 16:]): the second gemm's epilogue (the add, both biases) is computed by the gate
 * kernel, the only reader, so neither gemm is followed by a kernel of its own */
#define ADDMM_NODE(out, bias, m1, m2) \
    "{\"op\":\"aten.addmm.default\",\"outputs\":[\"" out "\"],\"args\":[{\"name\":\"self\",\"tensor\":\"" bias "\"}," \
    "{\"name\":\"mat1\",\"tensor\":\"" m1 "\"},{\"name\":\"mat2\",\"tensor\":\"" m2 "\"}]}"
#define SLICE_NODE(out, in, start, end) \
    "{\"op\":\"aten.slice.Tensor\",\"outputs\":[\"" out "\"],\"args\":[{\"name\":\"self\",\"tensor\":\"" in "\"}," \
    "{\"name\":\"dim\",\"int\":1},{\"name\":\"start\",\"int\":" #start "},{\"name\":\"end\",\"int\":" #end "}]}"
static const char g_gates[] =
    "{\"inputs\":[\"x0\",\"x1\"],\"params\":[\"p0\",\"p1\",\"p2\",\"p3\"],\"outputs\":[\"o\"],\"values\":{"
    T("x0", "f32", 8, 12) "," T("x1", "f32", 8, 16) "," T("p0", "f32", 32, 12) "," T("p1", "f32", 32) ","
    T("p2", "f32", 32, 16) "," T("p3", "f32", 32) "," T("t0", "f32", 12, 32) "," T("t1", "f32", 16, 32) ","
    T("y0", "f32", 8, 32) "," T("y1", "f32", 8, 32) "," T("g", "f32", 8, 32) "," T("s0", "f32", 8, 16) ","
    T("s1", "f32", 8, 16) "," T("a", "f32", 8, 16) "," T("b", "f32", 8, 16) "," T("o", "f32", 8, 16) "},\"nodes\":["
    "{\"op\":\"aten.t.default\",\"outputs\":[\"t0\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"}]},"
    "{\"op\":\"aten.t.default\",\"outputs\":[\"t1\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p2\"}]},"
    ADDMM_NODE("y0", "p1", "x0", "t0") "," ADDMM_NODE("y1", "p3", "x1", "t1") ","
    "{\"op\":\"aten.add.Tensor\",\"outputs\":[\"g\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y1\"},"
    "{\"name\":\"other\",\"tensor\":\"y0\"}]}," SLICE_NODE("s0", "g", 0, 16) "," SLICE_NODE("s1", "g", 16, 32) ","
    "{\"op\":\"aten.sigmoid.default\",\"outputs\":[\"a\"],\"args\":[{\"name\":\"self\",\"tensor\":\"s0\"}]},"
    "{\"op\":\"aten.tanh.default\",\"outputs\":[\"b\"],\"args\":[{\"name\":\"self\",\"tensor\":\"s1\"}]},"
    "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"o\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"},"
    "{\"name\":\"other\",\"tensor\":\"b\"}]}]}";

static const kf_step *find_conv(const kf_program *p) {
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].kind == KF_STEP_CONV) return &p->steps[i];
    return NULL;
}

/* Lowers json with conv steps allowed; expects epilogue kernels (launch steps) after the
 * conv step, then checks the cpu program's numbers and the cuda program's shape. */
static void check_graph(const char *name, const char *json, int launches, int step_bias) {
    fprintf(stderr, "    %s\n", name);
    kf_graph g;
    kf_fplan p;
    kf_err err;
    kf_err_clear(&err);
    if (kf_graph_from_json(json, &g, &err)) {
        KF_CHECK_MSG(0, "graph: %s", err.msg);
        return;
    }
    if (kf_fuse_plan(&g, NULL, &p, &err)) {
        KF_CHECK_MSG(0, "plan: %s", err.msg);
        kf_graph_free(&g);
        return;
    }
    KF_CHECK_EQ_INT(p.n_groups, 1);
    /* without the target's conv step: not admitted, not chosen */
    KF_CHECK_EQ_INT(kf_fuse_impl_ok(&g, &p, 0, KF_IMPL_LIB), 0);
    kf_gsched s;
    kf_gsched_auto(&g, &p, 0, &s);
    KF_CHECK(s.impl != KF_IMPL_LIB);
    kf_program v;
    KF_CHECK_EQ_INT(kf_fuse_lower(&g, &p, NULL, "cuda", "test", &v, &err), 0);
    KF_CHECK(find_conv(&v) == NULL);
    kf_program_free(&v);
    /* with it: the default */
    p.lib_conv = 1;
    KF_CHECK_EQ_INT(kf_fuse_impl_ok(&g, &p, 0, KF_IMPL_LIB), 1);
    kf_gsched_auto(&g, &p, 0, &s);
    KF_CHECK_EQ_INT(s.impl, KF_IMPL_LIB);
    static const char *const targets[] = {"cpu", "cuda"};
    for (int t = 0; t < 2; t++) {
        int rc = kf_fuse_lower(&g, &p, NULL, targets[t], "test", &v, &err);
        KF_CHECK_MSG(rc == 0, "%s: %s", targets[t], err.msg);
        if (rc) continue;
        rc = kf_program_validate(&v, &g, &err);
        KF_CHECK_MSG(rc == 0, "%s: %s", targets[t], err.msg);
        KF_CHECK_EQ_INT(count_steps(&v, KF_STEP_CONV), 1);
        KF_CHECK_EQ_INT(count_steps(&v, KF_STEP_GEMM), 0);
        KF_CHECK_EQ_INT(count_steps(&v, KF_STEP_LAUNCH), launches);
        const kf_step *cs = find_conv(&v);
        if (cs) {
            KF_CHECK_EQ_INT(cs->conv.bias >= 0, step_bias);
            /* the result lands in the output; an epilogue runs over it in place */
            KF_CHECK_EQ_INT(v.bufs[cs->conv.y].role, KF_BUF_OUTPUT);
        }
        if (t == 0) {
            double d = compare_with_naive(&g, &v);
            KF_CHECK_MSG(d < 1e-4, "cpu: differs from the naive lowering by %g", d);
            fprintf(stderr, "      cpu: largest relative difference from the naive lowering %.3g\n", d);
        } else {
            KF_CHECK(v.n_sources == 1 && strcmp(v.sources[0].file, "kernels.cu") == 0);
            /* the epilogue kernels compile, where NVRTC is installed */
            kf_build_opts bo;
            memset(&bo, 0, sizeof bo);
            bo.cache_dir = cache_dir;
            bo.timeout_s = 120;
            kf_build b;
            memset(&b, 0, sizeof b);
            rc = kf_target_cuda()->build(&v, &bo, &b, &err);
            if (rc == KF_E_UNAVAILABLE) fprintf(stderr, "      cuda: not compiled here: %s\n", err.msg);
            else KF_CHECK_MSG(rc == 0, "cuda: %s\n%s", err.msg, b.log ? b.log : "");
            kf_build_free(&b);
        }
        kf_program_free(&v);
    }
    kf_fuse_plan_free(&p);
    kf_graph_free(&g);
}

static void test_conv_step_lowering(void) {
    check_graph("conv + relu", g_relu, 1, 0);
    check_graph("grouped, strided, dilated conv alone", g_plain, 0, 1);
    check_graph("conv1d + tanh", g_1d, 1, 0);
    check_graph("transposed conv + softplus", g_convt, 1, 0);
}

/* Lowers json (library conv steps allowed) with and without the deferred bias, on the cpu
 * target (whose conv step is the reference loop) and checks the numbers against the naive
 * lowering both ways; returns through *bias_steps what the deferred program has (library steps
 * that add a bias themselves) and through *saved how many fewer launch steps it has. */
static void defer_case(const char *name, const char *json, int *bias_steps, int *saved) {
    fprintf(stderr, "    %s\n", name);
    *bias_steps = *saved = -1;
    int launches[2] = {0, 0};
    kf_graph g;
    kf_fplan p;
    kf_err err;
    kf_err_clear(&err);
    if (kf_graph_from_json(json, &g, &err) || kf_fuse_plan(&g, NULL, &p, &err)) {
        KF_CHECK_MSG(0, "%s", err.msg);
        return;
    }
    p.lib_conv = 1;
    for (int defer = 0; defer < 2; defer++) {
        p.defer_bias = defer;
        kf_program v;
        int rc = kf_fuse_lower(&g, &p, NULL, "cpu", "test", &v, &err);
        KF_CHECK_MSG(rc == 0, "defer %d: %s", defer, err.msg);
        if (rc) continue;
        rc = kf_program_validate(&v, &g, &err);
        KF_CHECK_MSG(rc == 0, "defer %d: %s", defer, err.msg);
        double d = compare_with_naive(&g, &v);
        KF_CHECK_MSG(d < 1e-4, "defer %d: differs from the naive lowering by %g", defer, d);
        launches[defer] = count_steps(&v, KF_STEP_LAUNCH);
        if (defer) {
            *saved = launches[0] - launches[1];
            *bias_steps = 0;
            for (int i = 0; i < v.n_steps; i++)
                if (v.steps[i].kind == KF_STEP_CONV && v.steps[i].conv.bias >= 0) ++*bias_steps;
        }
        kf_program_free(&v);
    }
    kf_fuse_plan_free(&p);
    kf_graph_free(&g);
}

static void test_deferred_bias(void) {
    int bias_steps, saved;
    /* the pool adds the bias as it loads: no bias in the conv step (cudnnAddTensor's pass) */
    defer_case("conv + bias -> max pool -> tanh", g_pool, &bias_steps, &saved);
    KF_CHECK_EQ_INT(bias_steps, 0);
    KF_CHECK_EQ_INT(saved, 0);
    /* the conv result is an output: the step adds the bias itself */
    defer_case("the same with the conv result an output", g_pool_out, &bias_steps, &saved);
    KF_CHECK_EQ_INT(bias_steps, 1);
    /* gemm + 0.5 * bias, then softmax: no epilogue kernel between the gemm step and the softmax */
    defer_case("addmm (beta 0.5) -> softmax", g_linear_softmax, &bias_steps, &saved);
    KF_CHECK_EQ_INT(saved, 1);
    /* the norm's output is never stored: its kernel writes two [C] vectors, not the tensor */
    defer_case("conv + bias -> batch norm -> relu -> max pool", g_bn_pool, &bias_steps, &saved);
    KF_CHECK_EQ_INT(bias_steps, 0);
    /* two gemms' sum read only by the gate kernel: no bias kernel, no epilogue kernel */
    defer_case("LSTM-like gates: addmm + addmm -> slices -> sigmoid * tanh", g_gates, &bias_steps, &saved);
    KF_CHECK_EQ_INT(saved, 2);
}

/* The search space on cuda: the automatic schedule uses the conv step ('L'), a neighbour the
 * generated direct convolution ('D'); on cpu nothing changes. */
static void test_search_space(void) {
    kf_graph g;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_graph_from_json(g_relu, &g, &err), 0);
    kf_search_space sp;
    KF_CHECK_EQ_INT(kf_search_space_init(&sp, &g, &err), 0);
    kf_search_space_set_target(&sp, "cuda", 1);
    kf_gsched *d = kf_search_default(&sp, 0);
    char *key = d ? kf_search_key(&sp, 0, d) : NULL;
    KF_CHECK(key && strncmp(key, "P0;L1", 5) == 0);
    if (key) fprintf(stderr, "    cuda default: %s\n", key);
    char **nb = NULL;
    int n = 0, direct = 0;
    KF_CHECK_EQ_INT(kf_search_neighbours(&sp, key, 0, &nb, &n), 0);
    for (int i = 0; i < n; i++) {
        direct |= strncmp(nb[i], "P0;D", 4) == 0;
        free(nb[i]);
    }
    free(nb);
    KF_CHECK_MSG(direct, "no neighbour with the generated direct convolution");
    kf_program prog;
    int rc = key ? kf_search_build(&sp, key, &prog, &err) : -1;
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_STR(prog.target, "cuda");
        KF_CHECK(find_conv(&prog) != NULL);
        kf_program_free(&prog);
    }
    free(key);
    free(d);
    /* cpu: no conv step */
    kf_search_space_set_target(&sp, "cpu", 0);
    d = kf_search_default(&sp, 0);
    key = d ? kf_search_key(&sp, 0, d) : NULL;
    rc = key ? kf_search_build(&sp, key, &prog, &err) : -1;
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK(find_conv(&prog) == NULL);
        kf_program_free(&prog);
    }
    free(key);
    free(d);
    kf_search_space_free(&sp);
    kf_graph_free(&g);
}

int main(void) {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/kf_test_fuse_convlib_%ld", (long)getpid());
    if (!getenv("KFORGE_CUDA_ARCH")) setenv("KFORGE_CUDA_ARCH", "sm_90", 1); /* compile without a GPU */
    KF_RUN(test_conv_step_lowering);
    KF_RUN(test_deferred_bias);
    KF_RUN(test_search_space);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cache_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
    return kf_test_report();
}
