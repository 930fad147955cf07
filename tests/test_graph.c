/* test_graph.c: parsing the oracle's graph JSON, including every error it must reject. */
#include "ir/kf_graph.h"
#include "kf_test.h"

#include <stdint.h>
#include <stdlib.h>

static const char *good_graph =
    "{\"inputs\":[\"x0\"], \"params\":[\"p0\",\"p1\"], \"outputs\":[\"v4\",\"x0\"],"
    " \"values\":{\"x0\":{\"dtype\":\"f32\",\"shape\":[8,64],\"strides\":[64,1]},"
    "             \"p0\":{\"dtype\":\"float32\",\"shape\":[32,64]},"
    "             \"p1\":{\"dtype\":\"torch.float32\",\"shape\":[32]},"
    "             \"v2\":{\"dtype\":\"f32\",\"shape\":[64,32],\"strides\":[1,64]},"
    "             \"v3\":{\"dtype\":\"f32\",\"shape\":[8,32]},"
    "             \"v4\":{\"dtype\":\"f32\",\"shape\":[8,32]},"
    "             \"v5\":{\"dtype\":\"i64\",\"shape\":[8]}},"
    " \"param_names\":{\"p0\":\"fc.weight\",\"p1\":\"fc.bias\"},"
    " \"nodes\":["
    "  {\"op\":\"aten.t.default\",\"outputs\":[\"v2\"],\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"}]},"
    "  {\"op\":\"aten.addmm.default\",\"outputs\":[\"v3\"],"
    "   \"args\":[{\"name\":\"self\",\"tensor\":\"p1\"},{\"name\":\"mat1\",\"tensor\":\"x0\"},"
    "             {\"name\":\"mat2\",\"tensor\":\"v2\"},{\"name\":\"beta\",\"int\":1},"
    "             {\"name\":\"alpha\",\"float\":0.5},"
    "             {\"name\":\"size\",\"list\":[{\"int\":8},{\"list\":[{\"int\":-1},{\"none\":true}]}]},"
    "             {\"name\":\"dtype\",\"str\":\"f32\"},{\"name\":\"bias\",\"none\":true},"
    "             {\"name\":\"train\",\"bool\":true},"
    "             {\"name\":\"end\",\"int\":9223372036854775807},"
    "             {\"name\":\"neg\",\"float\":\"-inf\"}]},"
    "  {\"op\":\"aten.max.dim\",\"outputs\":[\"v4\",\"\"],"
    "   \"args\":[{\"name\":\"self\",\"tensor\":\"v3\"},{\"name\":\"dim\",\"int\":1}]},"
    "  {\"op\":\"aten.argmax.default\",\"outputs\":[\"v5\"],"
    "   \"args\":[{\"name\":\"self\",\"tensor\":\"v3\"},{\"name\":\"dims\",\"list\":[{\"tensor\":\"v4\"}]}]}"
    " ]}";

static void test_parse_good(void) {
    kf_graph g;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_graph_from_json(good_graph, &g, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0) return;
    KF_CHECK_EQ_INT(g.n_values, 7);
    KF_CHECK_EQ_INT(g.n_nodes, 4);
    KF_CHECK_EQ_INT(g.n_inputs, 1);
    KF_CHECK_EQ_INT(g.n_params, 2);
    KF_CHECK_EQ_INT(g.n_outputs, 2);
    int x0 = kf_graph_find(&g, "x0"), p0 = kf_graph_find(&g, "p0"), v2 = kf_graph_find(&g, "v2");
    int v3 = kf_graph_find(&g, "v3"), v4 = kf_graph_find(&g, "v4");
    KF_CHECK(x0 >= 0 && p0 >= 0 && v2 >= 0 && v3 >= 0 && v4 >= 0);
    KF_CHECK_EQ_INT(kf_graph_find(&g, "nope"), -1);
    KF_CHECK_EQ_INT(g.inputs[0], x0);
    KF_CHECK_EQ_INT(g.params[0], p0);
    KF_CHECK_EQ_INT(g.outputs[0], v4);
    KF_CHECK_EQ_INT(g.outputs[1], x0);
    KF_CHECK_EQ_INT(g.values[x0].kind, KF_VAL_INPUT);
    KF_CHECK_EQ_INT(g.values[x0].index, 0);
    KF_CHECK_EQ_INT(g.values[p0].kind, KF_VAL_PARAM);
    KF_CHECK_STR(g.values[p0].label, "fc.weight");
    KF_CHECK_STR(g.values[kf_graph_find(&g, "p1")].label, "fc.bias");
    KF_CHECK(g.values[x0].label == NULL);
    /* strides: given, or contiguous when missing */
    KF_CHECK_EQ_INT(g.values[p0].desc.strides[0], 64);
    KF_CHECK_EQ_INT(g.values[p0].desc.strides[1], 1);
    KF_CHECK_EQ_INT(g.values[v2].desc.strides[0], 1);
    KF_CHECK_EQ_INT(g.values[v2].desc.strides[1], 64);
    KF_CHECK(!kf_tdesc_is_contiguous(&g.values[v2].desc));
    KF_CHECK_EQ_INT(g.values[kf_graph_find(&g, "v5")].desc.dtype, KF_I64);
    KF_CHECK_EQ_INT(g.values[v3].kind, KF_VAL_NODE);
    KF_CHECK_EQ_INT(g.values[v3].index, 1);
    KF_CHECK_EQ_INT(g.values[v3].slot, 0);

    const kf_node *n = &g.nodes[1];
    KF_CHECK_STR(n->op, "aten.addmm.default");
    KF_CHECK_EQ_INT(n->n_outs, 1);
    KF_CHECK_EQ_INT(n->outs[0], v3);
    const kf_arg *a = kf_node_arg(n, "mat2");
    KF_CHECK(a && a->kind == KF_ARG_TENSOR && a->tensor == v2);
    a = kf_node_arg(n, "beta");
    KF_CHECK(a && a->kind == KF_ARG_INT && a->i == 1 && a->f == 1.0 && a->tensor == -1);
    a = kf_node_arg(n, "alpha");
    KF_CHECK(a && a->kind == KF_ARG_FLOAT && a->f == 0.5);
    a = kf_node_arg(n, "size");
    KF_CHECK(a && a->kind == KF_ARG_LIST && a->n_items == 2);
    if (a && a->n_items == 2) {
        KF_CHECK(a->items[0].name == NULL && a->items[0].kind == KF_ARG_INT && a->items[0].i == 8);
        KF_CHECK(a->items[1].kind == KF_ARG_LIST && a->items[1].n_items == 2);
        if (a->items[1].n_items == 2) {
            KF_CHECK(a->items[1].items[0].i == -1);
            KF_CHECK(a->items[1].items[1].kind == KF_ARG_NONE);
        }
    }
    a = kf_node_arg(n, "dtype");
    KF_CHECK(a && a->kind == KF_ARG_STR && strcmp(a->s, "f32") == 0);
    a = kf_node_arg(n, "bias");
    KF_CHECK(a && a->kind == KF_ARG_NONE);
    a = kf_node_arg(n, "train");
    KF_CHECK(a && a->kind == KF_ARG_BOOL && a->i == 1);
    a = kf_node_arg(n, "end");
    KF_CHECK(a && a->kind == KF_ARG_INT && a->i == INT64_MAX);
    a = kf_node_arg(n, "neg");
    KF_CHECK(a && a->kind == KF_ARG_FLOAT && isinf(a->f) && a->f < 0);
    KF_CHECK(kf_node_arg(n, "missing") == NULL);
    /* dropped output */
    KF_CHECK_EQ_INT(g.nodes[2].n_outs, 2);
    KF_CHECK_EQ_INT(g.nodes[2].outs[0], v4);
    KF_CHECK_EQ_INT(g.nodes[2].outs[1], -1);
    /* tensor inside a list */
    a = kf_node_arg(&g.nodes[3], "dims");
    KF_CHECK(a && a->n_items == 1 && a->items[0].kind == KF_ARG_TENSOR && a->items[0].tensor == v4);
    kf_graph_free(&g);
    KF_CHECK(g.values == NULL && g.n_values == 0);
}

static void test_wrapped_reply(void) {
    const char *reply =
        "{\"ok\":true,\"graph\":{\"inputs\":[\"a\"],\"outputs\":[\"b\"],"
        "\"values\":{\"a\":{\"dtype\":\"f32\",\"shape\":[]},\"b\":{\"dtype\":\"f32\",\"shape\":[]}},"
        "\"nodes\":[{\"op\":\"aten.relu.default\",\"outputs\":[\"b\"],"
        "\"args\":[{\"name\":\"self\",\"tensor\":\"a\"}]}]}}";
    kf_graph g;
    kf_err err;
    int rc = kf_graph_from_json(reply, &g, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(g.n_params, 0);
        KF_CHECK_EQ_INT(g.values[0].desc.ndim, 0);
        KF_CHECK_EQ_INT(kf_tdesc_numel(&g.values[0].desc), 1);
        kf_graph_free(&g);
    }
}

/* Builds a graph from small parts; expects rc and a message containing want. */
static void expect_bad(const char *values, const char *nodes, const char *extra, int want_rc,
                       const char *want) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"inputs\":[\"x\"],\"params\":[\"w\"],\"outputs\":[\"y\"],"
             "\"values\":{\"x\":{\"dtype\":\"f32\",\"shape\":[4]},"
             "\"w\":{\"dtype\":\"f32\",\"shape\":[4]}%s},\"nodes\":[%s]%s}",
             values, nodes, extra);
    kf_graph g;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_graph_from_json(json, &g, &err);
    KF_CHECK_MSG(rc == want_rc, "rc %d, wanted %d (%s) for %s", rc, want_rc, err.msg, json);
    KF_CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    KF_CHECK(g.values == NULL && g.n_values == 0 && g.nodes == NULL);
    fprintf(stderr, "    rejected: %s\n", err.msg);
    if (rc == 0) kf_graph_free(&g);
}

#define Y ",\"y\":{\"dtype\":\"f32\",\"shape\":[4]}"
#define RELU(out, in) "{\"op\":\"aten.relu.default\",\"outputs\":[\"" out "\"]," \
    "\"args\":[{\"name\":\"self\",\"tensor\":\"" in "\"}]}"

static void test_errors(void) {
    /* the base form parses */
    kf_graph g;
    kf_err err;
    const char *ok = "{\"inputs\":[\"x\"],\"params\":[\"w\"],\"outputs\":[\"y\"],"
                     "\"values\":{\"x\":{\"dtype\":\"f32\",\"shape\":[4]},"
                     "\"w\":{\"dtype\":\"f32\",\"shape\":[4]}" Y "},\"nodes\":[" RELU("y", "x") "]}";
    KF_CHECK_MSG(kf_graph_from_json(ok, &g, &err) == 0, "%s", err.msg);
    kf_graph_free(&g);

    expect_bad(Y, RELU("y", "ghost"), "", KF_E_FORMAT, "unknown value 'ghost'");
    expect_bad(Y, RELU("y", "x") "," RELU("y", "x"), "", KF_E_FORMAT, "'y' is produced twice");
    expect_bad(Y, RELU("y", "x") "," RELU("z", "y"), "", KF_E_FORMAT,
               "output 'z' is not declared in 'values'");
    expect_bad(Y, RELU("x", "w"), "", KF_E_FORMAT, "'x' is produced twice");
    expect_bad(Y, RELU("y", "y"), "", KF_E_FORMAT, "uses value 'y' before");
    expect_bad(Y ",\"z\":{\"dtype\":\"f32\",\"shape\":[4]}", RELU("z", "y") "," RELU("y", "x"), "",
               KF_E_FORMAT, "uses value 'y' before");
    expect_bad(Y ",\"z\":{\"dtype\":\"f32\",\"shape\":[4]}", RELU("y", "x"), "", KF_E_FORMAT,
               "'z' is declared but");
    expect_bad(",\"y\":{\"dtype\":\"complex64\",\"shape\":[4]}", RELU("y", "x"), "",
               KF_E_UNSUPPORTED, "unsupported dtype 'complex64'");
    expect_bad(",\"y\":{\"dtype\":\"f32\",\"shape\":[4,-1]}", RELU("y", "x"), "", KF_E_FORMAT,
               "value 'y': shape[1]");
    expect_bad(",\"y\":{\"dtype\":\"f32\",\"shape\":[4],\"strides\":[1,1]}", RELU("y", "x"), "",
               KF_E_FORMAT, "value 'y': 'strides'");
    expect_bad(Y, "{\"op\":\"aten.relu.default\",\"outputs\":[\"y\"],\"args\":[{\"tensor\":\"x\"}]}",
               "", KF_E_FORMAT, "argument without a 'name'");
    expect_bad(Y, "{\"op\":\"aten.relu.default\",\"outputs\":[\"y\"],"
               "\"args\":[{\"name\":\"self\",\"weird\":1}]}", "", KF_E_FORMAT, "has no value");
    expect_bad(Y, "{\"op\":\"aten.relu.default\",\"outputs\":[\"y\"],"
               "\"args\":[{\"name\":\"self\",\"int\":1,\"float\":2}]}", "", KF_E_FORMAT,
               "has both 'int' and 'float'");
    expect_bad(Y, "{\"op\":\"aten.relu.default\",\"outputs\":[\"y\"],"
               "\"args\":[{\"name\":\"k\",\"int\":1.5}]}", "", KF_E_FORMAT, "'int' is not an integer");
    expect_bad(Y, "{\"op\":\"aten.cat.default\",\"outputs\":[\"y\"],"
               "\"args\":[{\"name\":\"tensors\",\"list\":[{\"tensor\":\"x\"},{\"tensor\":\"q\"}]}]}",
               "", KF_E_FORMAT, "unknown value 'q'");
    expect_bad(Y, "{\"outputs\":[\"y\"],\"args\":[]}", "", KF_E_FORMAT, "missing string field 'op'");
    expect_bad(Y, RELU("y", "x"), ",\"param_names\":{\"x\":\"not.a.param\"}", KF_E_FORMAT,
               "labels 'x'");
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_graph_from_json("{\"values\": [", &g, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "not valid JSON") != NULL);
    KF_CHECK_EQ_INT(kf_graph_from_json("{\"inputs\":[],\"outputs\":[],\"nodes\":[]}", &g, &err),
                    KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "'values'") != NULL);
    const char *bad_out = "{\"inputs\":[\"x\"],\"outputs\":[\"nope\"],\"nodes\":[],"
                          "\"values\":{\"x\":{\"dtype\":\"f32\",\"shape\":[1]}}}";
    KF_CHECK_EQ_INT(kf_graph_from_json(bad_out, &g, &err), KF_E_FORMAT);
    KF_CHECK(strstr(err.msg, "'nope'") != NULL);
}

static void test_op_base(void) {
    char buf[64];
    KF_CHECK_STR(kf_op_base("aten.addmm.default", buf, sizeof buf), "addmm");
    KF_CHECK_STR(kf_op_base("aten.add.Tensor", buf, sizeof buf), "add");
    KF_CHECK_STR(kf_op_base("aten._softmax.default", buf, sizeof buf), "_softmax");
    KF_CHECK_STR(kf_op_base("aten::relu", buf, sizeof buf), "relu");
    KF_CHECK_STR(kf_op_base("torch.ops.aten.mm.default", buf, sizeof buf), "mm");
    KF_CHECK_STR(kf_op_base("prims.convert_element_type.default", buf, sizeof buf),
                 "convert_element_type");
    KF_CHECK_STR(kf_op_base("relu.default", buf, sizeof buf), "relu");
    KF_CHECK_STR(kf_op_base("relu", buf, sizeof buf), "relu");
    KF_CHECK_STR(kf_op_base("aten.convolution.default", buf, 5), "conv");
    KF_CHECK_STR(kf_op_base(NULL, buf, sizeof buf), "");
}

int main(void) {
    KF_RUN(test_parse_good);
    KF_RUN(test_wrapped_reply);
    KF_RUN(test_errors);
    KF_RUN(test_op_base);
    return kf_test_report();
}
