/* kf_graph.h: the problem graph, as captured by the oracle at the ATen level.
 *
 * Values are tensors: the forward's inputs, the module's params (and buffers and lifted
 * constants), and node outputs. Nodes are ATen ops ("aten.addmm.default") with arguments named
 * by the op's schema, every default filled in. The graph is functional: no in-place ops.
 *
 * JSON (the oracle's `graph` reply, field "graph"):
 * {"inputs":["x0",..], "params":["p0",..], "outputs":["v9",..],
 *  "values":{"x0":{"dtype":"f32","shape":[8,64],"strides":[64,1]}, ...},
 *  "param_names":{"p0":"fc.weight", ...},           (module attribute path, for people)
 *  "nodes":[{"op":"aten.addmm.default","outputs":["v3"],
 *            "args":[{"name":"self","tensor":"p1"},{"name":"mat1","tensor":"x0"},
 *                    {"name":"beta","int":1},{"name":"alpha","float":0.5},
 *                    {"name":"size","list":[{"int":8},{"int":64}]},
 *                    {"name":"dtype","str":"f32"},{"name":"bias","none":true},
 *                    {"name":"train","bool":true}]}]}
 * Outputs may name inputs or params directly. A tuple-returning op lists several outputs;
 * outputs nothing uses may be named "" (dropped). */
#ifndef KF_GRAPH_H
#define KF_GRAPH_H

#include "core/kf_dtype.h"
#include "core/kf_err.h"

typedef enum {
    KF_ARG_NONE, KF_ARG_TENSOR, KF_ARG_INT, KF_ARG_FLOAT, KF_ARG_BOOL, KF_ARG_STR, KF_ARG_LIST
} kf_arg_kind;

typedef struct kf_arg {
    char *name;            /* schema name; NULL inside lists */
    kf_arg_kind kind;
    int tensor;            /* value index, for KF_ARG_TENSOR (-1 otherwise) */
    int64_t i;             /* KF_ARG_INT, KF_ARG_BOOL (0/1) */
    double f;              /* KF_ARG_FLOAT (also set for INT) */
    char *s;               /* KF_ARG_STR */
    struct kf_arg *items;  /* KF_ARG_LIST */
    int n_items;
} kf_arg;

typedef enum { KF_VAL_INPUT, KF_VAL_PARAM, KF_VAL_NODE } kf_val_kind;

typedef struct kf_value {
    char *name;
    kf_tdesc desc;
    kf_val_kind kind;
    int index;     /* position in inputs / params, or producing node index */
    int slot;      /* for KF_VAL_NODE: which output of the node */
    char *label;   /* param attribute path ("fc.weight") or NULL */
} kf_value;

typedef struct kf_node {
    char *op;      /* "aten.addmm.default" */
    kf_arg *args;
    int n_args;
    int *outs;     /* value indices; -1 for a dropped output */
    int n_outs;
} kf_node;

typedef struct kf_graph {
    kf_value *values; int n_values;
    kf_node *nodes; int n_nodes;
    int *inputs; int n_inputs;    /* value indices, in forward-argument order */
    int *params; int n_params;    /* value indices */
    int *outputs; int n_outputs;  /* value indices, in output order */
} kf_graph;

int kf_graph_from_json(const char *json, kf_graph *g, kf_err *err);
int kf_graph_from_cjson(const void *cjson_obj, kf_graph *g, kf_err *err); /* cJSON* */
void kf_graph_free(kf_graph *g);
int kf_graph_find(const kf_graph *g, const char *value_name);          /* -1 if absent */
const kf_arg *kf_node_arg(const kf_node *n, const char *name);         /* NULL if absent */
/* Short op name: "aten.addmm.default" -> "addmm" (into buf). */
const char *kf_op_base(const char *op, char *buf, size_t n);

#endif
