/* test_program.c: kernel programs: JSON parse/print round trip, folder save/load, builders,
 * and the errors that parsing and validation must report. */
#include "core/kf_str.h"
#include "ir/kf_graph.h"
#include "ir/kf_program.h"
#include "kf_test.h"

#include <stdlib.h>
#include <unistd.h>

static const char *graph_json =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"v3\"],"
    "\"values\":{\"x0\":{\"dtype\":\"f32\",\"shape\":[8,64]},\"p0\":{\"dtype\":\"f32\",\"shape\":[32,64]},"
    "\"p1\":{\"dtype\":\"f32\",\"shape\":[32]},\"v2\":{\"dtype\":\"f32\",\"shape\":[64,32],\"strides\":[1,64]},"
    "\"v3\":{\"dtype\":\"f32\",\"shape\":[8,32]}},"
    "\"nodes\":[{\"op\":\"aten.t.default\",\"outputs\":[\"v2\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"}]},"
    "{\"op\":\"aten.addmm.default\",\"outputs\":[\"v3\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p1\"},"
    "{\"name\":\"mat1\",\"tensor\":\"x0\"},{\"name\":\"mat2\",\"tensor\":\"v2\"}]}]}";

static const char *base_plan =
    "{\"format\":\"kforge-program/1\",\"target\":\"cpu\",\"agent\":\"test\",\n"
    " \"sources\":[{\"file\":\"kernels.c\",\"text\":\"/* bias */\\n\"}],\n"
    " \"kernels\":[{\"name\":\"k_bias\",\"params\":[{\"name\":\"y\",\"kind\":\"ptr\"},"
    "{\"name\":\"bias\",\"kind\":\"ptr\"},{\"name\":\"rows\",\"kind\":\"i64\"},"
    "{\"name\":\"cols\",\"kind\":\"i32\"},{\"name\":\"scale\",\"kind\":\"f32\"}]}],\n"
    " \"buffers\":[{\"name\":\"x\",\"role\":\"input\",\"index\":0,\"dtype\":\"f32\",\"shape\":[8,64]},\n"
    "   {\"name\":\"w\",\"role\":\"param\",\"param\":\"p0\",\"dtype\":\"f32\",\"shape\":[32,64]},\n"
    "   {\"name\":\"bias\",\"role\":\"param\",\"param\":\"p1\",\"dtype\":\"f32\",\"shape\":[32]},\n"
    "   {\"name\":\"y\",\"role\":\"output\",\"index\":0,\"dtype\":\"f32\",\"shape\":[8,32]},\n"
    "   {\"name\":\"t\",\"role\":\"scratch\",\"dtype\":\"f32\",\"shape\":[256]}],\n"
    " \"steps\":[{\"op\":\"gemm\",\"a\":\"x\",\"b\":\"w\",\"c\":\"y\",\"m\":8,\"n\":32,\"k\":64,"
    "\"trans_b\":true,\"comment\":\"y = x @ w^T\"},\n"
    "   {\"op\":\"launch\",\"kernel\":\"k_bias\",\"args\":[\"y\",\"bias\",{\"i64\":8},{\"i32\":32},"
    "{\"f32\":0.5}],\"grid\":[4],\"block\":[128,2]},\n"
    "   {\"op\":\"copy\",\"src\":\"y\",\"dst\":\"t\",\"bytes\":1024},\n"
    "   {\"op\":\"fill\",\"dst\":\"t\",\"value\":\"-inf\"}]}";

/* base_plan with each (from, to) pair replaced once, in order; caller frees. */
static char *edit(const char *from, const char *to) {
    const char *at = strstr(base_plan, from);
    if (!at) {
        fprintf(stderr, "  test bug: '%s' not in base plan\n", from);
        return kf_strdup(base_plan);
    }
    return kf_asprintf("%.*s%s%s", (int)(at - base_plan), base_plan, to, at + strlen(from));
}

static void test_parse_base(void) {
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_from_json(base_plan, NULL, &p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0) return;
    KF_CHECK_STR(p.target, "cpu");
    KF_CHECK_STR(p.agent, "test");
    KF_CHECK_EQ_INT(p.n_sources, 1);
    KF_CHECK_STR(p.sources[0].file, "kernels.c");
    KF_CHECK_STR(p.sources[0].text, "/* bias */\n");
    KF_CHECK_EQ_INT(p.n_kernels, 1);
    KF_CHECK_EQ_INT(p.kernels[0].n_params, 5);
    KF_CHECK_EQ_INT(p.kernels[0].params[3].kind, KF_KP_I32);
    KF_CHECK_EQ_INT(p.n_bufs, 5);
    KF_CHECK_EQ_INT(kf_program_find_buf(&p, "bias"), 2);
    KF_CHECK_EQ_INT(kf_program_find_buf(&p, "nope"), -1);
    KF_CHECK_EQ_INT(kf_program_find_kernel(&p, "k_bias"), 0);
    KF_CHECK_EQ_INT(p.bufs[1].role, KF_BUF_PARAM);
    KF_CHECK_STR(p.bufs[1].param, "p0");
    KF_CHECK_EQ_INT(p.bufs[1].index, -1);
    KF_CHECK_EQ_INT(p.bufs[3].nbytes, 8 * 32 * 4);
    KF_CHECK_EQ_INT(p.bufs[3].desc.strides[0], 32);
    KF_CHECK_EQ_INT(p.n_steps, 4);
    const kf_step *g = &p.steps[0];
    KF_CHECK_EQ_INT(g->kind, KF_STEP_GEMM);
    KF_CHECK(g->a == 0 && g->b == 1 && g->c == 3);
    KF_CHECK(g->m == 8 && g->n == 32 && g->k == 64 && !g->trans_a && g->trans_b);
    KF_CHECK(g->lda == 64 && g->ldb == 64 && g->ldc == 32); /* defaults */
    KF_CHECK(g->alpha == 1.0 && g->beta == 0.0 && g->batch == 1 && g->stride_c == 0);
    const kf_step *l = &p.steps[1];
    KF_CHECK_EQ_INT(l->kind, KF_STEP_LAUNCH);
    KF_CHECK_EQ_INT(l->n_args, 5);
    KF_CHECK(l->args[0].kind == KF_KP_PTR && l->args[0].buf == 3);
    KF_CHECK(l->args[2].kind == KF_KP_I64 && l->args[2].i == 8);
    KF_CHECK(l->args[3].kind == KF_KP_I32 && l->args[3].i == 32);
    KF_CHECK(l->args[4].kind == KF_KP_F32 && l->args[4].f == 0.5);
    KF_CHECK(l->grid[0] == 4 && l->grid[1] == 1 && l->block[1] == 2 && l->block[2] == 1);
    KF_CHECK(p.steps[2].src == 3 && p.steps[2].dst == 4 && p.steps[2].bytes == 1024);
    KF_CHECK(p.steps[3].dst == 4 && isinf(p.steps[3].value) && p.steps[3].value < 0);
    KF_CHECK_MSG(kf_program_validate(&p, NULL, &err) == 0, "%s", err.msg);
    kf_graph gr;
    rc = kf_graph_from_json(graph_json, &gr, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_MSG(kf_program_validate(&p, &gr, &err) == 0, "%s", err.msg);
        kf_graph_free(&gr);
    }

    /* print, parse again, print again: identical text and content */
    char *j1 = kf_program_to_json(&p);
    KF_CHECK(j1 != NULL);
    kf_program q;
    rc = kf_program_from_json(j1, NULL, &q, &err);
    KF_CHECK_MSG(rc == 0, "%s\n%s", err.msg, j1);
    if (rc == 0) {
        char *j2 = kf_program_to_json(&q);
        KF_CHECK_STR(j1, j2);
        free(j2);
        KF_CHECK(q.sources[0].text == NULL); /* no dir: names only */
        KF_CHECK(isinf(q.steps[3].value));
        KF_CHECK(q.steps[1].args[4].f == 0.5);
        kf_program_free(&q);
    }
    free(j1);
    kf_program_free(&p);
    KF_CHECK(p.bufs == NULL && p.n_bufs == 0);
}

static void test_save_load(void) {
    char dir[] = "/tmp/kf_test_prog_------";
    memset(dir + strlen(dir) - 6, 'X', 6); /* mkdtemp template */
    KF_CHECK(mkdtemp(dir) != NULL);
    kf_program p;
    kf_err err;
    char *plan = edit("{\"file\":\"kernels.c\",\"text\":\"/* bias */\\n\"}",
                      "{\"file\":\"kernels.c\",\"text\":\"/* bias */\\n\"},"
                      "{\"file\":\"sub/extra.h\",\"text\":\"#define X 1\\n\"}");
    int rc = kf_program_from_json(plan, NULL, &p, &err);
    free(plan);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0) return;
    char *out = kf_asprintf("%s/prog", dir);
    KF_CHECK_MSG(kf_program_save(&p, out, &err) == 0, "%s", err.msg);
    kf_program q;
    rc = kf_program_load(out, &q, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(q.n_sources, 2);
        KF_CHECK_STR(q.sources[0].text, "/* bias */\n");
        KF_CHECK_STR(q.sources[1].file, "sub/extra.h");
        KF_CHECK_STR(q.sources[1].text, "#define X 1\n");
        char *a = kf_program_to_json(&p), *b = kf_program_to_json(&q);
        KF_CHECK_STR(a, b);
        free(a);
        free(b);
        kf_program_free(&q);
    }
    /* a missing source file is an IO error naming it */
    char *src = kf_asprintf("%s/sub/extra.h", out);
    KF_CHECK_EQ_INT(unlink(src), 0);
    KF_CHECK_EQ_INT(kf_program_load(out, &q, &err), KF_E_IO);
    KF_CHECK(strstr(err.msg, "sub/extra.h") != NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    KF_CHECK_EQ_INT(kf_program_load(dir, &q, &err), KF_E_IO); /* no plan.json */
    /* save refuses an unsafe name */
    free(p.sources[1].file);
    p.sources[1].file = kf_strdup("../escape.c");
    KF_CHECK_EQ_INT(kf_program_save(&p, out, &err), KF_E_INVALID);
    char *esc = kf_asprintf("%s/escape.c", dir);
    KF_CHECK(access(esc, F_OK) != 0);
    free(esc);
    kf_program_free(&p);
    char *cmd = kf_asprintf("rm -rf '%s'", dir);
    KF_CHECK_EQ_INT(system(cmd), 0);
    free(cmd);
    free(src);
    free(out);
}

static void test_builder(void) {
    kf_program p = {0};
    p.target = kf_strdup("cpu");
    KF_CHECK_EQ_INT(kf_program_add_source(&p, "kernels.c", "void relu(void){}"), 0);
    kf_kparam kp[2] = {{"x", KF_KP_PTR}, {"n", KF_KP_I64}};
    kf_kparam kp2[3] = {{"x", KF_KP_PTR}, {"y", KF_KP_PTR}, {"n", KF_KP_I64}};
    KF_CHECK_EQ_INT(kf_program_add_kernel(&p, "unused", kp, 2), 0);
    KF_CHECK_EQ_INT(kf_program_add_kernel(&p, "relu", kp2, 3), 1);
    kf_tdesc d = {.dtype = KF_F32, .ndim = 1, .shape = {4096}};
    KF_CHECK_EQ_INT(kf_program_add_buf(&p, "x", KF_BUF_INPUT, 0, NULL, &d), 0);
    KF_CHECK_EQ_INT(kf_program_add_buf(&p, "y", KF_BUF_OUTPUT, 0, NULL, &d), 1);
    KF_CHECK_EQ_INT(p.bufs[1].nbytes, 16384);
    KF_CHECK_EQ_INT(p.bufs[1].desc.strides[0], 1);
    kf_step *s = kf_program_add_step(&p, KF_STEP_LAUNCH);
    KF_CHECK(s && s->grid[0] == 1 && s->block[2] == 1 && s->n_args == 0);
    s->kernel = 1;
    kf_karg args[3] = {{.kind = KF_KP_PTR, .buf = 0}, {.kind = KF_KP_PTR, .buf = 1},
                       {.kind = KF_KP_I64, .i = 4096}};
    kf_step_set_args(s, args, 3);
    KF_CHECK_EQ_INT(s->n_args, 3);
    kf_step *gm = kf_program_add_step(&p, KF_STEP_GEMM);
    KF_CHECK(gm && gm->alpha == 1.0 && gm->batch == 1 && gm->beta == 0.0);
    p.n_steps--; /* drop the gemm again */
    kf_err err;
    KF_CHECK_MSG(kf_program_validate(&p, NULL, &err) == 0, "%s", err.msg);
    const char *relu_graph =
        "{\"inputs\":[\"a\"],\"outputs\":[\"b\"],\"values\":{\"a\":{\"dtype\":\"f32\",\"shape\":[64,64]},"
        "\"b\":{\"dtype\":\"f32\",\"shape\":[4096]}},\"nodes\":[{\"op\":\"aten.relu.default\","
        "\"outputs\":[\"b\"],\"args\":[{\"name\":\"self\",\"tensor\":\"a\"}]}]}";
    kf_graph g;
    int rc = kf_graph_from_json(relu_graph, &g, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        /* same numel, other shape: fine */
        KF_CHECK_MSG(kf_program_validate(&p, &g, &err) == 0, "%s", err.msg);
        p.bufs[0].desc.dtype = KF_F64;
        p.bufs[0].nbytes = kf_tdesc_nbytes(&p.bufs[0].desc);
        KF_CHECK_EQ_INT(kf_program_validate(&p, &g, &err), KF_E_INVALID);
        KF_CHECK_STR(err.msg, "buffer 'x' is f64[4096] but graph input 0 ('a') is f32[64, 64]");
        kf_graph_free(&g);
    }
    p.bufs[0].desc.dtype = KF_F32;
    p.bufs[0].nbytes = kf_tdesc_nbytes(&p.bufs[0].desc);
    /* builder args are validated too */
    p.steps[0].args[2].kind = KF_KP_I32;
    KF_CHECK_EQ_INT(kf_program_validate(&p, NULL, &err), KF_E_INVALID);
    KF_CHECK_STR(err.msg, "step 0 (launch relu): argument 2 (n) is i32 but the kernel declares i64");
    p.steps[0].args[2].kind = KF_KP_I64;
    p.steps[0].args[1].buf = 7;
    KF_CHECK_EQ_INT(kf_program_validate(&p, NULL, &err), KF_E_INVALID);
    KF_CHECK(strstr(err.msg, "argument 1 (y) refers to buffer index 7") != NULL);
    p.steps[0].args[1].buf = 1;
    free(p.kernels[1].name);
    p.kernels[1].name = kf_strdup("relu kernel");
    KF_CHECK_EQ_INT(kf_program_validate(&p, NULL, &err), KF_E_INVALID);
    KF_CHECK_STR(err.msg, "kernel 1: name 'relu kernel' is not a C identifier");
    kf_program_free(&p);
}

/* Parses base_plan edited by (from -> to); expects parse_rc from parsing and, if parsing
 * succeeds, val_rc from validating against the graph; the message must contain want. */
static void expect(const char *from, const char *to, int parse_rc, int val_rc, const char *want) {
    char *plan = edit(from, to);
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_from_json(plan, NULL, &p, &err);
    KF_CHECK_MSG(rc == parse_rc, "'%s' -> '%s': parse rc %d (%s), wanted %d", from, to, rc,
                 err.msg, parse_rc);
    if (rc == 0) {
        kf_graph g;
        int grc = kf_graph_from_json(graph_json, &g, &err);
        KF_CHECK(grc == 0);
        rc = kf_program_validate(&p, grc == 0 ? &g : NULL, &err);
        KF_CHECK_MSG(rc == val_rc, "'%s' -> '%s': validate rc %d (%s), wanted %d", from, to, rc,
                     err.msg, val_rc);
        if (grc == 0) kf_graph_free(&g);
        kf_program_free(&p);
    }
    KF_CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    free(plan);
}

static void test_parse_errors(void) {
    kf_program p;
    kf_err err;
    KF_CHECK_EQ_INT(kf_program_from_json("{\"target\":", NULL, &p, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "not valid JSON") != NULL);
    expect("kforge-program/1", "kforge-program/9", KF_E_FORMAT, 0, "unknown format 'kforge-program/9'");
    expect("{\"op\":\"fill\"", "{\"op\":\"convolve\"", KF_E_FORMAT, 0, "step 3: unknown op 'convolve'");
    expect("\"trans_b\":true", "\"trans_B\":true", KF_E_FORMAT, 0,
           "step 0 (gemm): unknown field 'trans_B'");
    expect("{\"op\":\"fill\",\"dst\":\"t\",\"value\":\"-inf\"}",
           "{\"op\":\"launch\",\"kernel\":\"k2\",\"args\":[]}", KF_E_INVALID, 0,
           "step 3 (launch k2): unknown kernel 'k2'");
    expect("{\"op\":\"fill\",\"dst\":\"t\",\"value\":\"-inf\"}",
           "{\"op\":\"launch\",\"kernel\":\"k_bias\",\"args\":[\"y\",\"tmp9\"]}", KF_E_INVALID, 0,
           "step 3 (launch k_bias): argument 1 names unknown buffer 'tmp9'");
    expect("{\"i64\":8}", "{\"u64\":8}", KF_E_FORMAT, 0, "argument 2 has unknown kind 'u64'");
    expect("{\"i64\":8}", "8", KF_E_FORMAT, 0, "argument 2 must be a buffer name");
    expect("\"c\":\"y\"", "\"c\":\"z\"", KF_E_INVALID, 0, "step 0 (gemm): 'c' names unknown buffer 'z'");
    expect("\"file\":\"kernels.c\"", "\"file\":\"../kernels.c\"", KF_E_FORMAT, 0, "relative");
    expect("\"file\":\"kernels.c\"", "\"file\":\"/etc/kernels.c\"", KF_E_FORMAT, 0, "relative");
    expect("\"file\":\"kernels.c\"", "\"file\":\"a/../../k.c\"", KF_E_FORMAT, 0, "relative");
    expect("\"role\":\"scratch\"", "\"role\":\"temp\"", KF_E_FORMAT, 0, "unknown role 'temp'");
    expect("\"role\":\"input\",\"index\":0,", "\"role\":\"input\",", KF_E_FORMAT, 0,
           "buffer 'x': missing integer field 'index'");
    expect("\"shape\":[256]", "\"shape\":[256],\"index\":3", KF_E_FORMAT, 0,
           "buffer 't': unknown field 'index'");
    expect("\"dtype\":\"f32\",\"shape\":[256]", "\"dtype\":\"q8\",\"shape\":[256]", KF_E_FORMAT, 0,
           "unknown dtype 'q8'");
    expect("{\"name\":\"t\"", "{\"name\":\"x\"", KF_E_FORMAT, 0, "buffer 'x': name used twice");
    expect("\"kind\":\"f32\"", "\"kind\":\"float\"", KF_E_FORMAT, 0, "unknown kind 'float'");
    expect("\"grid\":[4]", "\"grid\":[4,1,1,1]", KF_E_FORMAT, 0, "'grid' must be an array");
    expect("\"m\":8,", "", KF_E_FORMAT, 0, "step 0 (gemm): missing integer field 'm'");
    expect("\"target\":\"cpu\"", "\"targt\":\"cpu\"", KF_E_FORMAT, 0, "unknown field 'targt'");
}

static void test_validate_errors(void) {
    expect(",{\"f32\":0.5}]", "]", 0, KF_E_INVALID,
           "step 1 (launch k_bias): 4 arguments given but kernel 'k_bias' declares 5 params "
           "(ptr y, ptr bias, i64 rows, i32 cols, f32 scale)");
    expect("{\"i32\":32}", "{\"i64\":32}", 0, KF_E_INVALID,
           "argument 3 (cols) is i64 but the kernel declares i32");
    expect("\"bias\",{\"i64\":8}", "{\"i64\":8},{\"i64\":8}", 0, KF_E_INVALID,
           "argument 1 (bias) is i64 but the kernel declares ptr");
    expect("{\"i32\":32}", "{\"i32\":3000000000}", 0, KF_E_INVALID, "does not fit in i32");
    expect("\"k\":64,", "\"k\":65,", 0, KF_E_INVALID, "step 0 (gemm): a reaches element");
    expect("\"n\":32,", "\"n\":32,\"ldc\":33,", 0, KF_E_INVALID,
           "step 0 (gemm): c reaches element 262 of buffer 'y', which has 256 elements");
    expect("\"n\":32,", "\"n\":32,\"lda\":32,", 0, KF_E_INVALID, "lda = 32 is less than the 64 columns");
    expect("\"n\":32,", "\"n\":32,\"batch\":2,\"stride_a\":0,\"stride_b\":0,\"stride_c\":0,", 0,
           KF_E_INVALID, "stride_c 0");
    expect("\"c\":\"y\"", "\"c\":\"x\"", 0, KF_E_INVALID, "c ('x') may not be the same buffer");
    expect("\"param\":\"p0\",\"dtype\":\"f32\"", "\"param\":\"p0\",\"dtype\":\"f64\"", 0,
           KF_E_INVALID, "step 0 (gemm): b buffer 'w' is f64; gemm needs f32");
    expect("\"a\":\"x\"", "\"a\":\"t\"", 0, KF_E_INVALID, "a reaches element");
    expect("\"bytes\":1024", "\"bytes\":1028", 0, KF_E_INVALID,
           "step 2 (copy): reads bytes 0..1028 of 'y', which has 1024");
    expect("\"bytes\":1024", "\"bytes\":8,\"dst_offset\":1020", 0, KF_E_INVALID,
           "step 2 (copy): writes bytes 1020..1028 of 't', which has 1024");
    expect("\"dst\":\"t\",\"bytes\":1024", "\"dst\":\"y\",\"bytes\":8,\"dst_offset\":4", 0,
           KF_E_INVALID, "ranges of 'y' overlap");
    expect("{\"op\":\"fill\",\"dst\":\"t\"", "{\"op\":\"fill\",\"dst\":\"w\"", 0, KF_E_INVALID,
           "step 3 (fill): dst 'w' is a param buffer, which steps may not write");
    expect("\"role\":\"output\",\"index\":0", "\"role\":\"output\",\"index\":1", 0, KF_E_INVALID,
           "buffer 'y' (output): index 1 is out of range");
    expect("\"role\":\"output\",\"index\":0", "\"role\":\"scratch\"", 0, KF_E_INVALID,
           "no output buffer");
    expect("\"shape\":[256]}],", "\"shape\":[256]},{\"name\":\"y2\",\"role\":\"output\","
           "\"index\":1,\"dtype\":\"f32\",\"shape\":[1]}],", 0, KF_E_INVALID,
           "buffer 'y2' (output 1) is never written by any step");
    expect("\"name\":\"rows\"", "\"name\":\"2rows\"", 0, KF_E_INVALID,
           "kernel 'k_bias': param 2 name '2rows' is not a C identifier");
    expect("\"sources\":[{\"file\":\"kernels.c\",\"text\":\"/* bias */\\n\"}]", "\"sources\":[]",
           0, KF_E_INVALID, "declares kernels but lists no sources");
    /* against the graph */
    expect("\"param\":\"p1\"", "\"param\":\"p9\"", 0, KF_E_INVALID,
           "buffer 'bias' (param) names 'p9', which is not a param of the graph");
    expect("\"param\":\"p1\"", "\"param\":\"p0\"", 0, KF_E_INVALID,
           "buffers 'w' and 'bias' both hold param 'p0'");
    expect("\"param\":\"p1\",\"dtype\":\"f32\",\"shape\":[32]",
           "\"param\":\"p1\",\"dtype\":\"f32\",\"shape\":[33]", 0, KF_E_INVALID,
           "buffer 'bias' is f32[33] but param 'p1' ('p1') is f32[32]");
    expect("\"dtype\":\"f32\",\"shape\":[8,64]", "\"dtype\":\"f32\",\"shape\":[8,65]", 0,
           KF_E_INVALID, "buffer 'x' is f32[8, 65] but graph input 0 ('x0') is f32[8, 64]");
    expect("\"shape\":[256]}],", "\"shape\":[256]},{\"name\":\"x2\",\"role\":\"input\","
           "\"index\":1,\"dtype\":\"f32\",\"shape\":[1]}],", 0, KF_E_INVALID,
           "buffer 'x2' is graph input 1, but the graph has 1 inputs");
}

/* A grouped, strided 2-d convolution with bias: x [2, 4, 9, 9], w [6, 2, 3, 3] (groups 2),
 * y [2, 6, 5, 5] = (9 + 2*1 - 2 - 1) / 2 + 1. */
static const char *conv_plan =
    "{\"target\":\"cuda\",\"buffers\":["
    "{\"name\":\"x\",\"role\":\"input\",\"index\":0,\"dtype\":\"f32\",\"shape\":[2,4,9,9]},"
    "{\"name\":\"w\",\"role\":\"param\",\"param\":\"p0\",\"dtype\":\"f32\",\"shape\":[6,2,3,3]},"
    "{\"name\":\"b\",\"role\":\"param\",\"param\":\"p1\",\"dtype\":\"f32\",\"shape\":[6]},"
    "{\"name\":\"y\",\"role\":\"output\",\"index\":0,\"dtype\":\"f32\",\"shape\":[2,6,5,5]}],"
    "\"steps\":[{\"op\":\"conv\",\"x\":\"x\",\"w\":\"w\",\"y\":\"y\",\"bias\":\"b\",\"n\":2,"
    "\"c_in\":4,\"c_out\":6,\"in\":[9,9],\"kernel\":[3,3],\"stride\":[2,2],\"padding\":1,"
    "\"groups\":2}]}";

/* conv_plan with from -> to; parse_rc from parsing, then val_rc from validating (no graph). */
static void conv_expect(const char *from, const char *to, int parse_rc, int val_rc, const char *want) {
    const char *at = strstr(conv_plan, from);
    KF_CHECK_MSG(at != NULL, "test bug: '%s' not in the conv plan", from);
    if (!at) return;
    char *plan = kf_asprintf("%.*s%s%s", (int)(at - conv_plan), conv_plan, to, at + strlen(from));
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_from_json(plan, NULL, &p, &err);
    KF_CHECK_MSG(rc == parse_rc, "'%s' -> '%s': parse rc %d (%s), wanted %d", from, to, rc, err.msg, parse_rc);
    if (rc == 0) {
        rc = kf_program_validate(&p, NULL, &err);
        KF_CHECK_MSG(rc == val_rc, "'%s' -> '%s': validate rc %d (%s), wanted %d", from, to, rc, err.msg, val_rc);
        kf_program_free(&p);
    }
    if (want) {
        KF_CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
        fprintf(stderr, "    rejected: %s\n", err.msg);
    }
    free(plan);
}

static void test_conv_step(void) {
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_program_from_json(conv_plan, NULL, &p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0) return;
    KF_CHECK_EQ_INT(p.n_steps, 1);
    const kf_conv_step *c = &p.steps[0].conv;
    KF_CHECK_EQ_INT(p.steps[0].kind, KF_STEP_CONV);
    KF_CHECK_STR(kf_step_kind_name(p.steps[0].kind), "conv");
    KF_CHECK_EQ_INT(c->x, 0);
    KF_CHECK_EQ_INT(c->w, 1);
    KF_CHECK_EQ_INT(c->bias, 2);
    KF_CHECK_EQ_INT(c->y, 3);
    KF_CHECK_EQ_INT(c->nsd, 2);
    KF_CHECK_EQ_INT(c->n, 2);
    KF_CHECK_EQ_INT(c->groups, 2);
    KF_CHECK_EQ_INT(c->padding[0], 1);   /* one integer: every dim */
    KF_CHECK_EQ_INT(c->padding[1], 1);
    KF_CHECK_EQ_INT(c->dilation[1], 1);  /* default */
    KF_CHECK_EQ_INT(c->transposed, 0);
    KF_CHECK_EQ_INT(kf_conv_step_out(c, 0), 5);
    KF_CHECK_EQ_INT(kf_conv_step_out(c, 1), 5);
    rc = kf_program_validate(&p, NULL, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    /* write round trip: the written plan reads back to the same text */
    char *t1 = kf_program_to_json(&p);
    kf_program q;
    rc = t1 ? kf_program_from_json(t1, NULL, &q, &err) : -1;
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        char *t2 = kf_program_to_json(&q);
        KF_CHECK(t2 && strcmp(t1, t2) == 0);
        KF_CHECK(strstr(t1, "\"conv\"") != NULL);
        KF_CHECK_EQ_INT(q.steps[0].conv.bias, 2);
        KF_CHECK_EQ_INT(q.steps[0].conv.stride[1], 2);
        KF_CHECK_EQ_INT(kf_program_validate(&q, NULL, &err), 0);
        free(t2);
        kf_program_free(&q);
    }
    free(t1);
    kf_program_free(&p);
    /* the builder's defaults */
    kf_program b;
    memset(&b, 0, sizeof b);
    kf_step *st = kf_program_add_step(&b, KF_STEP_CONV);
    KF_CHECK(st != NULL);
    if (st) {
        KF_CHECK_EQ_INT(st->conv.bias, -1);
        KF_CHECK_EQ_INT(st->conv.groups, 1);
        KF_CHECK_EQ_INT(st->conv.stride[2], 1);
        KF_CHECK_EQ_INT(st->conv.dilation[0], 1);
    }
    kf_program_free(&b);
    /* the 1-d form validates (x read as [2, 4, 49], y [2, 6, 25]); an output no step writes
     * is still caught */
    conv_expect("\"in\":[9,9],\"kernel\":[3,3],\"stride\":[2,2],\"padding\":1,\"groups\":2",
                "\"in\":[49],\"kernel\":[3],\"stride\":2,\"padding\":[1],\"groups\":2", 0, 0, NULL);
    conv_expect("\"shape\":[2,6,5,5]}],", "\"shape\":[2,6,5,5]},{\"name\":\"z\",\"role\":\"output\","
                "\"index\":1,\"dtype\":\"f32\",\"shape\":[2,4,10,10]}],", 0, KF_E_INVALID,
                "buffer 'z' (output 1) is never written");
}

static void test_conv_errors(void) {
    conv_expect("\"groups\":2", "\"groups\":2,\"stides\":[1,1]", KF_E_FORMAT, 0, "step 0 (conv): unknown field 'stides'");
    conv_expect("\"kernel\":[3,3],", "", KF_E_FORMAT, 0, "step 0 (conv): missing array field 'kernel'");
    conv_expect("\"kernel\":[3,3]", "\"kernel\":[3,3,3]", KF_E_FORMAT, 0, "'kernel' must be an integer or an array of 2");
    conv_expect("\"in\":[9,9]", "\"in\":[1,9,9,9]", KF_E_FORMAT, 0, "'in' must be an array of 1 to 3 integers");
    conv_expect("\"n\":2,", "", KF_E_FORMAT, 0, "step 0 (conv): missing integer field 'n'");
    conv_expect("\"y\":\"y\"", "\"y\":\"q\"", KF_E_INVALID, 0, "'y' names unknown buffer 'q'");
    conv_expect("\"groups\":2", "\"groups\":4", 0, KF_E_INVALID, "groups 4 does not divide c_in 4 and c_out 6");
    conv_expect("\"stride\":[2,2]", "\"stride\":[1,2]", 0, KF_E_INVALID,
                "step 0 (conv): y needs elements 0..540 of buffer 'y', which has 300 elements");
    conv_expect("\"c_in\":4", "\"c_in\":8", 0, KF_E_INVALID, "x needs elements 0..1296 of buffer 'x'");
    conv_expect("\"groups\":2", "\"groups\":2,\"w_offset\":1", 0, KF_E_INVALID, "w needs elements 1..109 of buffer 'w'");
    conv_expect("\"bias\":\"b\"", "\"bias\":\"w\",\"bias_offset\":104", 0, KF_E_INVALID,
                "bias needs elements 104..110 of buffer 'w'");
    conv_expect("\"padding\":1", "\"padding\":1,\"output_padding\":[1,1]", 0, KF_E_INVALID,
                "output_padding is only for transposed convolutions");
    conv_expect("\"padding\":1", "\"padding\":-1", 0, KF_E_INVALID, "padding and output_padding >= 0");
    conv_expect("\"in\":[9,9],\"kernel\":[3,3]", "\"in\":[1,9],\"kernel\":[5,3]", 0, KF_E_INVALID,
                "dim 0: the output would be empty");
    conv_expect("\"param\":\"p1\",\"dtype\":\"f32\"", "\"param\":\"p1\",\"dtype\":\"f64\"", 0, KF_E_INVALID,
                "bias buffer 'b' is f64; conv needs f32");
    conv_expect("\"y\":\"y\"", "\"y\":\"w\"", 0, KF_E_INVALID, "y ('w') may not be the same buffer");
    conv_expect("\"y\":\"y\"", "\"y\":\"x\"", 0, KF_E_INVALID, "y ('x') may not be the same buffer");
    conv_expect("\"y\":\"y\",\"bias\":\"b\"", "\"y\":\"b\"", 0, KF_E_INVALID,
                "y 'b' is a param buffer, which steps may not write");
    /* transposed: [2, 4, 9, 9] -> (9-1)*2 - 2 + 2 + 0 + 1 = 17 per dim, y is too small; and the
     * output_padding rule */
    conv_expect("\"groups\":2", "\"groups\":2,\"transposed\":true", 0, KF_E_INVALID, "y needs elements 0..");
    conv_expect("\"groups\":2", "\"groups\":2,\"transposed\":true,\"output_padding\":2", 0, KF_E_INVALID,
                "output_padding 2 must be smaller than stride or dilation");
}

int main(void) {
    KF_RUN(test_parse_base);
    KF_RUN(test_save_load);
    KF_RUN(test_builder);
    KF_RUN(test_parse_errors);
    KF_RUN(test_validate_errors);
    KF_RUN(test_conv_step);
    KF_RUN(test_conv_errors);
    return kf_test_report();
}
