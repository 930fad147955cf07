/* test_oracle.c: drives the real PyTorch oracle (python/kforge_oracle.py) through the C client:
 * hello, load, graph (ops, shapes, params file), case (seeds, distributions, the float64
 * reference), time, bad
 * problems (the oracle survives them), a dying child, a hanging child and a missing script.
 * Runs from the repository root (tests/run_tests.sh does). Skips the torch cases when the
 * interpreter cannot import torch. */
#include "kf_test.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/kf_str.h"
#include "ir/kf_graph.h"
#include "ir/kf_safetensors.h"
#include "oracle/kf_oracle.h"

/* The shared oracle for the torch cases (started once in main; NULL when torch is missing). */
static kf_oracle *shared;
static char tmpdir[256];
static char torch_version[64];

static const char *tmp_path(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static int graph_has_op(const kf_graph *g, const char *base) {
    char buf[128];
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(kf_op_base(g->nodes[i].op, buf, sizeof buf), base)) return 1;
    return 0;
}

static void test_hello(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_hello(shared, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK(info.torch_version[0] != '\0');
    KF_CHECK(info.blas[0] != '\0');
    KF_CHECK(info.threads > 0);
    KF_CHECK_STR(info.device, "cpu");
    if (!strncmp(info.torch_version, "1.", 2)) KF_CHECK_EQ_INT(info.compile_available, 0);
    else KF_CHECK_EQ_INT(info.compile_available, 1);
}

static void test_load_relu(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/relu.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_EQ_INT(info.n_inputs, 1);
    KF_CHECK_EQ_INT(info.n_outputs, 1);
    KF_CHECK_EQ_INT(info.n_params, 0);
    KF_CHECK_EQ_INT(info.inputs[0].dtype, KF_F32);
    KF_CHECK_EQ_INT(info.inputs[0].ndim, 2);
    KF_CHECK_EQ_INT(info.inputs[0].shape[0], 4);
    KF_CHECK_EQ_INT(info.inputs[0].shape[1], 32);
    KF_CHECK_EQ_INT(info.inputs[0].strides[0], 32);
    KF_CHECK(kf_tdesc_same_shape(&info.inputs[0], &info.outputs[0]));
    KF_CHECK_STR(info.device, "cpu");
    KF_CHECK(info.torch_version[0] != '\0');
}

static void test_graph_linear_gelu(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/linear_gelu.py", 3, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    KF_CHECK_EQ_INT(info.n_params, 2);
    kf_graph g;
    char *params = NULL;
    rc = kf_oracle_graph(shared, &g, &params, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    KF_CHECK(graph_has_op(&g, "addmm"));
    KF_CHECK(graph_has_op(&g, "gelu"));
    KF_CHECK_EQ_INT(g.n_inputs, 1);
    KF_CHECK_EQ_INT(g.n_outputs, 1);
    KF_CHECK_EQ_INT(g.n_params, 2);
    const kf_tdesc *in = &g.values[g.inputs[0]].desc;
    KF_CHECK_EQ_INT(in->ndim, 2);
    KF_CHECK_EQ_INT(in->shape[0], 4);
    KF_CHECK_EQ_INT(in->shape[1], 16);
    const kf_tdesc *out = &g.values[g.outputs[0]].desc;
    KF_CHECK_EQ_INT(out->shape[0], 4);
    KF_CHECK_EQ_INT(out->shape[1], 8);
    /* addmm's "beta" is a filled-in default */
    for (int i = 0; i < g.n_nodes; i++) {
        char b[64];
        if (strcmp(kf_op_base(g.nodes[i].op, b, sizeof b), "addmm")) continue;
        const kf_arg *beta = kf_node_arg(&g.nodes[i], "beta");
        KF_CHECK(beta && beta->kind == KF_ARG_INT && beta->i == 1);
        const kf_arg *mat1 = kf_node_arg(&g.nodes[i], "mat1");
        KF_CHECK(mat1 && mat1->kind == KF_ARG_TENSOR && mat1->tensor == g.inputs[0]);
    }
    int found_weight = 0;
    kf_safetensors st;
    rc = kf_st_open(params, &st, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(st.n_tensors, 2);
        for (int i = 0; i < g.n_params; i++) {
            const kf_value *v = &g.values[g.params[i]];
            const kf_st_tensor *t = kf_st_find(&st, v->name);
            KF_CHECK_MSG(t != NULL, "param %s not in %s", v->name, params);
            if (!t) continue;
            KF_CHECK(kf_tdesc_same_shape(&t->desc, &v->desc));
            if (v->label && !strcmp(v->label, "fc.weight")) {
                found_weight = 1;
                KF_CHECK_EQ_INT(t->desc.shape[0], 8);
                KF_CHECK_EQ_INT(t->desc.shape[1], 16);
                const float *w = t->data;
                int nonzero = 0;
                for (int k = 0; k < 8 * 16; k++) nonzero += w[k] != 0.0f;
                KF_CHECK(nonzero > 100);
            }
        }
        kf_st_close(&st);
    }
    KF_CHECK(found_weight);
    free(params);
    kf_graph_free(&g);
}

/* Loads path and captures its graph; returns 0 and fills g, or fails the case. */
static int load_graph(const char *path, kf_graph *g) {
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, path, 5, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
    if (rc) return rc;
    char *params = NULL;
    rc = kf_oracle_graph(shared, g, &params, &err);
    KF_CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
    free(params);
    return rc;
}

static int graph_is_functional(const kf_graph *g) {
    char b[128];
    for (int i = 0; i < g->n_nodes; i++) {
        const char *base = kf_op_base(g->nodes[i].op, b, sizeof b);
        size_t n = strlen(base);
        if (n && base[n - 1] == '_') return 0;
    }
    return 1;
}

static void test_graph_batchnorm_train(void) {
    if (!shared) KF_SKIP("no torch");
    kf_graph g;
    if (load_graph("tests/problems/batchnorm_train.py", &g)) return;
    KF_CHECK(graph_is_functional(&g));
    int found = 0;
    char b[128];
    for (int i = 0; i < g.n_nodes; i++) {
        const char *base = kf_op_base(g.nodes[i].op, b, sizeof b);
        if (!strstr(base, "batch_norm")) continue;
        found = 1;
        const kf_arg *tr = kf_node_arg(&g.nodes[i], "training");
        KF_CHECK(tr && tr->kind == KF_ARG_BOOL && tr->i == 1);
        KF_CHECK(g.nodes[i].n_outs >= 3);
    }
    KF_CHECK(found);
    KF_CHECK(g.n_params >= 2);
    kf_graph_free(&g);
}

static void test_graph_tuple_and_inplace(void) {
    if (!shared) KF_SKIP("no torch");
    kf_graph g;
    if (load_graph("tests/problems/tuple_out.py", &g) == 0) {
        KF_CHECK_EQ_INT(g.n_inputs, 2);
        KF_CHECK_EQ_INT(g.n_outputs, 2);
        KF_CHECK_EQ_INT(g.values[g.outputs[1]].desc.ndim, 1);
        KF_CHECK_EQ_INT(g.values[g.outputs[1]].desc.shape[0], 3);
        kf_graph_free(&g);
    }
    if (load_graph("tests/problems/inplace_relu.py", &g) == 0) {
        KF_CHECK(graph_is_functional(&g));
        KF_CHECK(graph_has_op(&g, "convolution"));
        KF_CHECK(graph_has_op(&g, "relu"));
        KF_CHECK(graph_has_op(&g, "mul"));
        kf_graph_free(&g);
    }
}

/* Reads in.0 and out.0 of a relu case file into fresh arrays of n floats. */
static int read_relu_case(const char *file, float **in, float **out, int *n) {
    kf_safetensors st;
    kf_err err = {0};
    int rc = kf_st_open(file, &st, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return rc;
    const kf_st_tensor *ti = kf_st_find(&st, "in.0"), *to = kf_st_find(&st, "out.0");
    KF_CHECK(ti && to);
    if (!ti || !to) {
        kf_st_close(&st);
        return -1;
    }
    KF_CHECK_EQ_INT(ti->desc.dtype, KF_F32);
    KF_CHECK_EQ_INT(ti->nbytes, 4 * 32 * 4);
    KF_CHECK_EQ_INT(to->nbytes, ti->nbytes);
    *n = (int)(ti->nbytes / 4);
    *in = malloc(ti->nbytes);
    *out = malloc(ti->nbytes);
    memcpy(*in, ti->data, ti->nbytes);
    memcpy(*out, to->data, ti->nbytes);
    kf_st_close(&st);
    return 0;
}

static void test_case_relu(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/relu.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    char f1[512], f2[512], f3[512], f4[512];
    tmp_path("c1.safetensors", f1, sizeof f1);
    tmp_path("c2.safetensors", f2, sizeof f2);
    tmp_path("c3.safetensors", f3, sizeof f3);
    tmp_path("c4.safetensors", f4, sizeof f4);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 11, "default", f1, &err), 0);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 12, "default", f2, &err), 0);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 11, "normal", f3, &err), 0);
    /* all 64 bits of a seed reach the oracle */
    rc = kf_oracle_case(shared, 18446744073709551615ULL, "heavy", f4, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    float *a_in, *a_out, *b_in, *b_out, *c_in, *c_out;
    int n;
    if (read_relu_case(f1, &a_in, &a_out, &n) || read_relu_case(f2, &b_in, &b_out, &n) ||
        read_relu_case(f3, &c_in, &c_out, &n))
        return;
    int differ = 0, neg_default = 0, neg_normal = 0, bad_ref = 0;
    for (int i = 0; i < n; i++) {
        differ += a_in[i] != b_in[i];
        neg_default += a_in[i] < 0;
        neg_normal += c_in[i] < 0;
        bad_ref += a_out[i] != (a_in[i] > 0 ? a_in[i] : 0.0f);
        bad_ref += c_out[i] != (c_in[i] > 0 ? c_in[i] : 0.0f);
    }
    KF_CHECK(differ > n / 2);
    KF_CHECK_EQ_INT(neg_default, 0); /* torch.rand */
    KF_CHECK(neg_normal > n / 4);
    KF_CHECK_EQ_INT(bad_ref, 0);
    /* the same seed gives the same inputs */
    char f5[512];
    tmp_path("c5.safetensors", f5, sizeof f5);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 11, "default", f5, &err), 0);
    float *d_in, *d_out;
    if (read_relu_case(f5, &d_in, &d_out, &n) == 0) {
        KF_CHECK(memcmp(a_in, d_in, (size_t)n * 4) == 0);
        free(d_in);
        free(d_out);
    }
    free(a_in), free(a_out), free(b_in), free(b_out), free(c_in), free(c_out);
    KF_CHECK(kf_oracle_case(shared, 1, "cauchy", f5, &err) == KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "bad_request") != NULL, "%s", err.msg);
}

static void test_case_constant_output(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/constant_output.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    char f1[512], f2[512];
    tmp_path("k1.safetensors", f1, sizeof f1);
    tmp_path("k2.safetensors", f2, sizeof f2);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 1, "default", f1, &err), 0);
    KF_CHECK_EQ_INT(kf_oracle_case(shared, 2, "uniform", f2, &err), 0);
    kf_safetensors a, b;
    if (kf_st_open(f1, &a, &err) || kf_st_open(f2, &b, &err)) {
        KF_CHECK_MSG(0, "%s", err.msg);
        return;
    }
    const kf_st_tensor *ia = kf_st_find(&a, "in.0"), *ib = kf_st_find(&b, "in.0");
    const kf_st_tensor *oa = kf_st_find(&a, "out.0"), *ob = kf_st_find(&b, "out.0");
    KF_CHECK(ia && ib && oa && ob);
    if (ia && ib && oa && ob) {
        KF_CHECK(memcmp(ia->data, ib->data, ia->nbytes) != 0);
        KF_CHECK(oa->nbytes == ob->nbytes && memcmp(oa->data, ob->data, oa->nbytes) == 0);
    }
    kf_st_close(&a);
    kf_st_close(&b);
}

/* The case verb's "reference":"f64": the same inputs, bit for bit, as the f32 case of that seed
 * and dist (default and redrawn), and outputs from a float64 copy of the model, rounded to
 * float32: on matmul_cancel.py (exact result zero by construction) they differ from
 * PyTorch's float32 output, which misses zero by more than the tolerance, and match a double
 * sum computed here. A model that refuses float64 gives f64_unavailable. */
static void test_case_f64(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/matmul_cancel.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    const char *dists[2] = {"default", "normal"};
    for (int d = 0; d < 2; d++) {
        char f1[512], f2[512];
        tmp_path("r32.safetensors", f1, sizeof f1);
        tmp_path("r64.safetensors", f2, sizeof f2);
        KF_CHECK_EQ_INT(kf_oracle_case(shared, 21, dists[d], f1, &err), 0);
        rc = kf_oracle_case_ref(shared, 21, dists[d], "f64", f2, &err);
        KF_CHECK_MSG(rc == 0, "%s", err.msg);
        kf_safetensors a, b;
        if (rc || kf_st_open(f1, &a, &err)) {
            KF_CHECK_MSG(0, "%s", err.msg);
            return;
        }
        if (kf_st_open(f2, &b, &err)) {
            KF_CHECK_MSG(0, "%s", err.msg);
            kf_st_close(&a);
            return;
        }
        const kf_st_tensor *x = kf_st_find(&a, "in.0"), *w = kf_st_find(&a, "in.1");
        const kf_st_tensor *x2 = kf_st_find(&b, "in.0"), *w2 = kf_st_find(&b, "in.1");
        const kf_st_tensor *o32 = kf_st_find(&a, "out.0"), *o64 = kf_st_find(&b, "out.0");
        KF_CHECK(x && w && x2 && w2 && o32 && o64);
        if (x && w && x2 && w2 && o32 && o64) {
            KF_CHECK(x->nbytes == x2->nbytes && !memcmp(x->data, x2->data, x->nbytes));
            KF_CHECK(w->nbytes == w2->nbytes && !memcmp(w->data, w2->data, w->nbytes));
            KF_CHECK_EQ_INT(o64->desc.dtype, KF_F32);
            KF_CHECK_EQ_INT(o64->nbytes, 32 * 32 * 4);
            const float *xv = x->data, *wv = w->data, *r32 = o32->data, *r64 = o64->data;
            int differ = 0, off32 = 0, off64 = 0;
            double worst64 = 0;
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++) {
                    double acc = 0;
                    for (int k = 0; k < 2048; k++)
                        acc += (double)xv[i * 2048 + k] * (double)wv[k * 32 + j];
                    double e32 = fabs(r32[i * 32 + j] - acc), e64 = fabs(r64[i * 32 + j] - acc);
                    differ += r32[i * 32 + j] != r64[i * 32 + j];
                    off32 += e32 > 1e-4 + 1e-4 * fabs(acc);
                    off64 += e64 > 1e-4 + 1e-4 * fabs(acc);
                    if (e64 > worst64) worst64 = e64;
                }
            fprintf(stderr, "    %s: f32 and f64 outputs differ on %d of 1024 elements; out of "
                    "tolerance of a double sum: f32 %d, f64 %d (worst f64 error %.3g)\n",
                    dists[d], differ, off32, off64, worst64);
            KF_CHECK(differ > 0);
            KF_CHECK_EQ_INT(off64, 0);
            if (d == 0) KF_CHECK(off32 > 100); /* the cancellation the problem is built for */
        }
        kf_st_close(&a);
        kf_st_close(&b);
    }
    char f3[512];
    tmp_path("r3.safetensors", f3, sizeof f3);
    KF_CHECK(kf_oracle_case_ref(shared, 1, "default", "f16", f3, &err) == KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "bad_request") != NULL, "%s", err.msg);
    rc = kf_oracle_load(shared, "tests/problems/matmul_cancel_f32_only.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    KF_CHECK_EQ_INT(kf_oracle_case_ref(shared, 1, "default", "f32", f3, &err), 0);
    KF_CHECK_EQ_INT(kf_oracle_case_ref(shared, 1, "default", "f64", f3, &err), KF_E_UNAVAILABLE);
    KF_CHECK_MSG(strstr(err.msg, "f64_unavailable") != NULL, "%s", err.msg);
}

static void test_time(void) {
    if (!shared) KF_SKIP("no torch");
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, "tests/problems/linear_gelu.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    kf_timing t;
    rc = kf_oracle_time(shared, "eager", 4, 7, 2, 1 << 20, &t, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(t.n, 7);
        for (int i = 0; i < t.n; i++) KF_CHECK(t.ms[i] > 0);
        KF_CHECK(t.min_ms <= t.median_ms && t.median_ms <= t.max_ms);
        KF_CHECK(t.min_ms > 0);
        kf_timing_free(&t);
        KF_CHECK(t.ms == NULL && t.n == 0);
    }
    rc = kf_oracle_time_precision(shared, "eager", "default", 4, 3, 0, 0, &t, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) KF_CHECK_EQ_INT(t.n, 3);
    kf_timing_free(&t);
    rc = kf_oracle_time(shared, "compile", 4, 3, 1, 0, &t, &err);
    if (!strncmp(torch_version, "1.", 2)) {
        KF_CHECK_EQ_INT(rc, KF_E_UNAVAILABLE);
        KF_CHECK_MSG(strstr(err.msg, "unavailable") != NULL, "%s", err.msg);
    } else {
        KF_CHECK_MSG(rc == 0, "%s", err.msg);
    }
    kf_timing_free(&t);
    KF_CHECK(kf_oracle_alive(shared));
}

static void expect_load_error(const char *path, const char *kind) {
    kf_oracle_info info;
    kf_err err = {0};
    int rc = kf_oracle_load(shared, path, 1, &info, &err);
    KF_CHECK_MSG(rc == KF_E_ORACLE, "%s: rc %d", path, rc);
    size_t n = strlen(kind);
    KF_CHECK_MSG(!strncmp(err.msg, kind, n) && err.msg[n] == ':', "%s: want %s, got: %s", path,
                 kind, err.msg);
    KF_CHECK(kf_oracle_alive(shared));
}

static void test_bad_problems(void) {
    if (!shared) KF_SKIP("no torch");
    expect_load_error("tests/problems/not_a_problem.py", "no_model");
    expect_load_error("tests/problems/raises_in_init.py", "raised");
    expect_load_error("tests/problems/raises_in_forward.py", "raised");
    expect_load_error("tests/problems/syntax_error.py", "load");
    expect_load_error("tests/problems/bad_inputs.py", "bad_problem");
    expect_load_error("tests/problems/does_not_exist.py", "load");
    /* nothing loaded now */
    kf_graph g;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_oracle_graph(shared, &g, NULL, &err), KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "not_loaded") != NULL, "%s", err.msg);
    /* and the next load still works */
    kf_oracle_info info;
    int rc = kf_oracle_load(shared, "tests/problems/relu.py", 1, &info, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    /* raw requests: an unknown verb fails cleanly, hello answers */
    cJSON *req = cJSON_Parse("{\"cmd\":\"frobnicate\"}");
    void *resp = (void *)1;
    KF_CHECK_EQ_INT(kf_oracle_request(shared, req, &resp, &err), KF_E_ORACLE);
    KF_CHECK(resp == NULL);
    KF_CHECK_MSG(!strncmp(err.msg, "bad_request:", 12), "%s", err.msg);
    cJSON_Delete(req);
    req = cJSON_Parse("{\"cmd\":\"hello\"}");
    rc = kf_oracle_request(shared, req, &resp, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(resp, "python")));
        cJSON_Delete(resp);
    }
    cJSON_Delete(req);
    KF_CHECK(kf_oracle_alive(shared));
}

static int write_script(const char *name, const char *body, char *path, size_t n) {
    tmp_path(name, path, n);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(body, f);
    fclose(f);
    return 0;
}

static void test_child_dies(void) {
    char script[512];
    KF_CHECK(write_script("die.sh", "read line\necho 'Traceback: something broke' >&2\n"
                                    "echo 'ValueError: last words' >&2\nexit 3\n",
                          script, sizeof script) == 0);
    kf_oracle_opts opts = {.python = "/bin/sh", .script = script, .timeout_s = 20};
    kf_oracle *o;
    kf_err err = {0};
    int rc = kf_oracle_start(&opts, &o, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    kf_oracle_info info;
    rc = kf_oracle_hello(o, &info, &err);
    KF_CHECK_EQ_INT(rc, KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "oracle exited") && strstr(err.msg, "last words"), "%s", err.msg);
    KF_CHECK_MSG(strstr(err.msg, "exit status 3") != NULL, "%s", err.msg);
    KF_CHECK(!kf_oracle_alive(o));
    KF_CHECK_EQ_INT(kf_oracle_hello(o, &info, &err), KF_E_ORACLE);
    kf_oracle_stop(o);
}

static void test_child_hangs(void) {
    char script[512];
    KF_CHECK(write_script("hang.sh", "read line\necho 'thinking' >&2\nsleep 30\n", script,
                          sizeof script) == 0);
    kf_oracle_opts opts = {.python = "/bin/sh", .script = script, .timeout_s = 0.5};
    kf_oracle *o;
    kf_err err = {0};
    int rc = kf_oracle_start(&opts, &o, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    kf_oracle_info info;
    rc = kf_oracle_hello(o, &info, &err);
    KF_CHECK_EQ_INT(rc, KF_E_TIMEOUT);
    KF_CHECK_MSG(strstr(err.msg, "thinking") != NULL, "%s", err.msg);
    KF_CHECK(!kf_oracle_alive(o));
    kf_oracle_stop(o);
}

static void test_garbage_reply(void) {
    char script[512];
    KF_CHECK(write_script("garbage.sh", "read line\necho 'hello there'\nread line\n", script,
                          sizeof script) == 0);
    kf_oracle_opts opts = {.python = "/bin/sh", .script = script, .timeout_s = 10};
    kf_oracle *o;
    kf_err err = {0};
    int rc = kf_oracle_start(&opts, &o, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    kf_oracle_info info;
    KF_CHECK_EQ_INT(kf_oracle_hello(o, &info, &err), KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "hello there") != NULL, "%s", err.msg);
    kf_oracle_stop(o);
}

static void test_missing_script(void) {
    kf_oracle_opts opts = {.script = "/nonexistent/kforge_oracle.py"};
    kf_oracle *o = NULL;
    kf_err err = {0};
    KF_CHECK_EQ_INT(kf_oracle_start(&opts, &o, &err), KF_E_UNAVAILABLE);
    KF_CHECK(o == NULL);
    opts.script = NULL;
    opts.python = "/nonexistent/python3";
    int rc = kf_oracle_start(&opts, &o, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    kf_oracle_info info;
    KF_CHECK_EQ_INT(kf_oracle_hello(o, &info, &err), KF_E_ORACLE);
    KF_CHECK_MSG(strstr(err.msg, "cannot run") != NULL, "%s", err.msg);
    kf_oracle_stop(o);
}

static void test_workdir_created(void) {
    char dir[512];
    tmp_path("made/here", dir, sizeof dir);
    char script[512];
    KF_CHECK(write_script("quit.sh", "read line\necho '{\"ok\":true}'\n", script, sizeof script) == 0);
    kf_oracle_opts opts = {.python = "/bin/sh", .script = script, .workdir = dir};
    kf_oracle *o;
    kf_err err = {0};
    int rc = kf_oracle_start(&opts, &o, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    struct stat st;
    KF_CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    kf_oracle_stop(o);
    KF_CHECK(stat(dir, &st) == 0); /* not ours to remove */
}

static void test_timing_summary(void) {
    double v[] = {5, 1, 3, 2};
    kf_timing t = {.ms = v, .n = 4};
    kf_timing_summarize(&t);
    KF_CHECK_NEAR(t.median_ms, 2.5, 1e-12);
    KF_CHECK_NEAR(t.min_ms, 1, 0);
    KF_CHECK_NEAR(t.max_ms, 5, 0);
    t.n = 3;
    kf_timing_summarize(&t);
    KF_CHECK_NEAR(t.median_ms, 3, 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kf-test-oracle-%6s", "");
    memset(tmpdir + strlen(tmpdir) - 6, 'X', 6); /* mkdtemp's template */
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char wd[300];
    snprintf(wd, sizeof wd, "%s/work", tmpdir);
    kf_oracle_opts opts = {.workdir = wd, .threads = 1, .device = "cpu", .timeout_s = 300};
    kf_err err = {0};
    kf_oracle_info info;
    if (kf_oracle_start(&opts, &shared, &err) != 0) {
        fprintf(stderr, "SKIP torch cases: cannot start the oracle: %s\n", err.msg);
        shared = NULL;
    } else if (kf_oracle_hello(shared, &info, &err) != 0) {
        fprintf(stderr, "SKIP torch cases: the oracle's python cannot use torch: %s\n", err.msg);
        kf_oracle_stop(shared);
        shared = NULL;
    } else {
        snprintf(torch_version, sizeof torch_version, "%s", info.torch_version);
        fprintf(stderr, "oracle: torch %s, blas %s, %d threads\n", info.torch_version, info.blas,
                info.threads);
    }
    KF_RUN(test_timing_summary);
    KF_RUN(test_missing_script);
    KF_RUN(test_child_dies);
    KF_RUN(test_child_hangs);
    KF_RUN(test_garbage_reply);
    KF_RUN(test_workdir_created);
    KF_RUN(test_hello);
    KF_RUN(test_load_relu);
    KF_RUN(test_graph_linear_gelu);
    KF_RUN(test_graph_batchnorm_train);
    KF_RUN(test_graph_tuple_and_inplace);
    KF_RUN(test_case_relu);
    KF_RUN(test_case_constant_output);
    KF_RUN(test_case_f64);
    KF_RUN(test_time);
    KF_RUN(test_bad_problems);
    if (shared) kf_oracle_stop(shared);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return kf_test_report();
}
