/* kf_graph.c: loading the oracle's ATen graph JSON into a kf_graph, resolving every tensor
 * name to a value index and rejecting inconsistent graphs with the offending name. */
#include "ir/kf_graph.h"
#include "ir/kf_json_num.h"

#include "core/kf_str.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- name -> value index (open addressing, local to one parse) ---- */

typedef struct {
    int *slots; /* value index + 1; 0 = empty */
    size_t cap;
    const kf_value *values;
} kf_gmap;

static uint64_t kf_gmap_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int kf_gmap_init(kf_gmap *m, const kf_value *values, int n) {
    m->cap = 16;
    while (m->cap < (size_t)n * 2 + 1) m->cap *= 2;
    m->slots = calloc(m->cap, sizeof *m->slots);
    m->values = values;
    return m->slots ? 0 : -1;
}

/* Returns the index, or -1; if insert >= 0 and absent, inserts it. */
static int kf_gmap_get(kf_gmap *m, const char *name, int insert) {
    size_t i = (size_t)kf_gmap_hash(name) & (m->cap - 1);
    while (m->slots[i]) {
        int v = m->slots[i] - 1;
        if (strcmp(m->values[v].name, name) == 0) return v;
        i = (i + 1) & (m->cap - 1);
    }
    if (insert >= 0) m->slots[i] = insert + 1;
    return -1;
}

/* ---- small JSON helpers ---- */

/* ---- parsing ---- */

typedef struct {
    kf_graph *g;
    kf_gmap map;
    int *produced; /* per value: 1 once something produces it */
    kf_err *err;
} kf_gparse;

static int kf_parse_value(kf_gparse *ps, const cJSON *j, kf_value *v) {
    const char *name = j->string;
    v->name = kf_strdup(name);
    v->index = -1;
    v->slot = -1;
    if (!v->name) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    if (!cJSON_IsObject(j))
        return kf_fail(ps->err, KF_E_FORMAT, "value '%s': not a JSON object", name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    if (!cJSON_IsString(jd))
        return kf_fail(ps->err, KF_E_FORMAT, "value '%s': missing string field 'dtype'", name);
    if (kf_dtype_parse(jd->valuestring, &v->desc.dtype) != 0)
        return kf_fail(ps->err, KF_E_UNSUPPORTED, "value '%s': unsupported dtype '%s'", name,
                       jd->valuestring);
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (!cJSON_IsArray(js))
        return kf_fail(ps->err, KF_E_FORMAT, "value '%s': missing array field 'shape'", name);
    int nd = cJSON_GetArraySize(js);
    if (nd > KF_MAX_DIMS)
        return kf_fail(ps->err, KF_E_UNSUPPORTED, "value '%s': %d dimensions (at most %d)", name,
                       nd, KF_MAX_DIMS);
    v->desc.ndim = nd;
    for (int i = 0; i < nd; i++) {
        int64_t x;
        if (kf_json_i64(cJSON_GetArrayItem(js, i), &x) != 0 || x < 0)
            return kf_fail(ps->err, KF_E_FORMAT,
                           "value '%s': shape[%d] is not a non-negative integer", name, i);
        v->desc.shape[i] = x;
    }
    const cJSON *jst = cJSON_GetObjectItemCaseSensitive(j, "strides");
    if (!jst || cJSON_IsNull(jst)) {
        kf_tdesc_set_contiguous(&v->desc);
        return 0;
    }
    if (!cJSON_IsArray(jst) || cJSON_GetArraySize(jst) != nd)
        return kf_fail(ps->err, KF_E_FORMAT, "value '%s': 'strides' must be an array of %d "
                       "integers, like 'shape'", name, nd);
    for (int i = 0; i < nd; i++) {
        int64_t x;
        if (kf_json_i64(cJSON_GetArrayItem(jst, i), &x) != 0 || x < 0)
            return kf_fail(ps->err, KF_E_FORMAT,
                           "value '%s': strides[%d] is not a non-negative integer", name, i);
        v->desc.strides[i] = x;
    }
    return 0;
}

static void kf_arg_free(kf_arg *a) {
    free(a->name);
    free(a->s);
    for (int i = 0; i < a->n_items; i++) kf_arg_free(&a->items[i]);
    free(a->items);
}

static const char *const kf_arg_keys[] = {"none", "tensor", "int", "float", "bool", "str", "list"};

/* Parses one argument (named at top level, unnamed in lists). node_i is the node that uses it:
 * tensor references must name values produced before that node. */
static int kf_parse_arg(kf_gparse *ps, const cJSON *j, kf_arg *a, int named, int node_i,
                        const char *where) {
    a->tensor = -1;
    if (!cJSON_IsObject(j))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: argument is not a JSON object", where);
    if (named) {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(j, "name");
        if (!cJSON_IsString(jn) || !jn->valuestring[0])
            return kf_fail(ps->err, KF_E_FORMAT, "%s: argument without a 'name'", where);
        a->name = kf_strdup(jn->valuestring);
        if (!a->name) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    }
    char ctx[512];
    if (named) snprintf(ctx, sizeof ctx, "%s: argument '%s'", where, a->name);
    else snprintf(ctx, sizeof ctx, "%s", where);
    const cJSON *jv = NULL;
    int kind = -1;
    for (int k = 0; k < (int)(sizeof kf_arg_keys / sizeof kf_arg_keys[0]); k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, kf_arg_keys[k]);
        if (!x) continue;
        if (jv)
            return kf_fail(ps->err, KF_E_FORMAT, "%s has both '%s' and '%s'", ctx,
                           kf_arg_keys[kind], kf_arg_keys[k]);
        jv = x;
        kind = k;
    }
    if (!jv)
        return kf_fail(ps->err, KF_E_FORMAT, "%s has no value (one of none, tensor, int, float, "
                       "bool, str, list)", ctx);
    switch (kind) {
    case 0:
        a->kind = KF_ARG_NONE;
        return 0;
    case 1: {
        a->kind = KF_ARG_TENSOR;
        if (!cJSON_IsString(jv))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'tensor' must be a value name", ctx);
        int v = kf_gmap_get(&ps->map, jv->valuestring, -1);
        if (v < 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s names unknown value '%s'", ctx,
                           jv->valuestring);
        const kf_value *val = &ps->g->values[v];
        if (!ps->produced[v] || (val->kind == KF_VAL_NODE && val->index >= node_i))
            return kf_fail(ps->err, KF_E_FORMAT, "%s uses value '%s' before any node produces it",
                           ctx, jv->valuestring);
        a->tensor = v;
        return 0;
    }
    case 2:
        a->kind = KF_ARG_INT;
        if (kf_json_i64(jv, &a->i) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'int' is not an integer", ctx);
        a->f = (double)a->i;
        return 0;
    case 3:
        a->kind = KF_ARG_FLOAT;
        if (kf_json_f64(jv, &a->f) != 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'float' is not a number", ctx);
        return 0;
    case 4:
        a->kind = KF_ARG_BOOL;
        if (!cJSON_IsBool(jv))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'bool' is not true/false", ctx);
        a->i = cJSON_IsTrue(jv) ? 1 : 0;
        return 0;
    case 5:
        a->kind = KF_ARG_STR;
        if (!cJSON_IsString(jv))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'str' is not a string", ctx);
        a->s = kf_strdup(jv->valuestring);
        return a->s ? 0 : kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    default: {
        a->kind = KF_ARG_LIST;
        if (!cJSON_IsArray(jv))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: 'list' is not an array", ctx);
        int n = cJSON_GetArraySize(jv);
        a->items = calloc(n ? (size_t)n : 1, sizeof *a->items);
        if (!a->items) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        int i = 0;
        for (const cJSON *it = jv->child; it; it = it->next, i++) {
            a->n_items = i + 1;
            char sub[600];
            snprintf(sub, sizeof sub, "%s item %d", ctx, i);
            int rc = kf_parse_arg(ps, it, &a->items[i], 0, node_i, sub);
            if (rc != 0) return rc;
        }
        return 0;
    }
    }
}

static int kf_parse_node(kf_gparse *ps, const cJSON *j, int ni) {
    kf_node *n = &ps->g->nodes[ni];
    if (!cJSON_IsObject(j)) return kf_fail(ps->err, KF_E_FORMAT, "node %d: not a JSON object", ni);
    const cJSON *jop = cJSON_GetObjectItemCaseSensitive(j, "op");
    if (!cJSON_IsString(jop) || !jop->valuestring[0])
        return kf_fail(ps->err, KF_E_FORMAT, "node %d: missing string field 'op'", ni);
    n->op = kf_strdup(jop->valuestring);
    if (!n->op) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    char where[256];
    snprintf(where, sizeof where, "node %d (%s)", ni, n->op);
    /* Outputs first: args may not use them, but the check needs to know the producer. */
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    if (!cJSON_IsArray(jo))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: missing array field 'outputs'", where);
    int no = cJSON_GetArraySize(jo);
    n->outs = malloc((no ? (size_t)no : 1) * sizeof *n->outs);
    if (!n->outs) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    int slot = 0;
    for (const cJSON *o = jo->child; o; o = o->next, slot++) {
        n->n_outs = slot + 1;
        n->outs[slot] = -1;
        if (!cJSON_IsString(o))
            return kf_fail(ps->err, KF_E_FORMAT, "%s: output %d is not a string", where, slot);
        if (!o->valuestring[0]) continue;
        int v = kf_gmap_get(&ps->map, o->valuestring, -1);
        if (v < 0)
            return kf_fail(ps->err, KF_E_FORMAT, "%s: output '%s' is not declared in 'values'",
                           where, o->valuestring);
        if (ps->produced[v])
            return kf_fail(ps->err, KF_E_FORMAT, "%s: value '%s' is produced twice", where,
                           o->valuestring);
        ps->produced[v] = 1;
        kf_value *val = &ps->g->values[v];
        val->kind = KF_VAL_NODE;
        val->index = ni;
        val->slot = slot;
        n->outs[slot] = v;
    }
    const cJSON *ja = cJSON_GetObjectItemCaseSensitive(j, "args");
    if (ja && !cJSON_IsArray(ja))
        return kf_fail(ps->err, KF_E_FORMAT, "%s: 'args' is not an array", where);
    int na = ja ? cJSON_GetArraySize(ja) : 0;
    n->args = calloc(na ? (size_t)na : 1, sizeof *n->args);
    if (!n->args) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    int ai = 0;
    for (const cJSON *a = ja ? ja->child : NULL; a; a = a->next, ai++) {
        n->n_args = ai + 1;
        int rc = kf_parse_arg(ps, a, &n->args[ai], 1, ni, where);
        if (rc != 0) return rc;
        for (int k = 0; k < ai; k++)
            if (strcmp(n->args[k].name, n->args[ai].name) == 0)
                return kf_fail(ps->err, KF_E_FORMAT, "%s: argument '%s' given twice", where,
                               n->args[ai].name);
    }
    return 0;
}

/* Reads a list of value names ("inputs"/"params"/"outputs") into indices. For inputs and
 * params (kind >= 0) the values are marked as produced with that kind. */
static int kf_parse_names(kf_gparse *ps, const cJSON *root, const char *field, int kind,
                          int **out, int *n_out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (j && !cJSON_IsArray(j))
        return kf_fail(ps->err, KF_E_FORMAT, "'%s' is not an array of value names", field);
    if (!j && strcmp(field, "params") != 0)
        return kf_fail(ps->err, KF_E_FORMAT, "missing array field '%s'", field);
    int n = j ? cJSON_GetArraySize(j) : 0;
    *out = malloc((n ? (size_t)n : 1) * sizeof **out);
    if (!*out) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            return kf_fail(ps->err, KF_E_FORMAT, "'%s'[%d] is not a string", field, i);
        int v = kf_gmap_get(&ps->map, e->valuestring, -1);
        if (v < 0)
            return kf_fail(ps->err, KF_E_FORMAT, "'%s'[%d] names unknown value '%s'", field, i,
                           e->valuestring);
        if (kind >= 0) {
            if (ps->produced[v])
                return kf_fail(ps->err, KF_E_FORMAT, "value '%s' is produced twice ('%s'[%d])",
                               e->valuestring, field, i);
            ps->produced[v] = 1;
            ps->g->values[v].kind = (kf_val_kind)kind;
            ps->g->values[v].index = i;
        }
        (*out)[i] = v;
        *n_out = i + 1;
    }
    return 0;
}

static int kf_graph_parse(kf_gparse *ps, const cJSON *root) {
    kf_graph *g = ps->g;
    if (!cJSON_IsObject(root)) return kf_fail(ps->err, KF_E_FORMAT, "graph is not a JSON object");
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(root, "values");
    if (!cJSON_IsObject(jv)) return kf_fail(ps->err, KF_E_FORMAT, "missing object field 'values'");
    int nv = cJSON_GetArraySize(jv);
    g->values = calloc(nv ? (size_t)nv : 1, sizeof *g->values);
    if (!g->values || kf_gmap_init(&ps->map, g->values, nv) != 0)
        return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    ps->produced = calloc(nv ? (size_t)nv : 1, sizeof *ps->produced);
    if (!ps->produced) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    for (const cJSON *e = jv->child; e; e = e->next) {
        int i = g->n_values++;
        int rc = kf_parse_value(ps, e, &g->values[i]);
        if (rc != 0) return rc;
        if (kf_gmap_get(&ps->map, e->string, i) >= 0)
            return kf_fail(ps->err, KF_E_FORMAT, "value '%s' is declared twice", e->string);
    }
    int rc = kf_parse_names(ps, root, "inputs", KF_VAL_INPUT, &g->inputs, &g->n_inputs);
    if (rc == 0) rc = kf_parse_names(ps, root, "params", KF_VAL_PARAM, &g->params, &g->n_params);
    if (rc != 0) return rc;
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    if (!cJSON_IsArray(jn)) return kf_fail(ps->err, KF_E_FORMAT, "missing array field 'nodes'");
    int nn = cJSON_GetArraySize(jn);
    g->nodes = calloc(nn ? (size_t)nn : 1, sizeof *g->nodes);
    if (!g->nodes) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
    for (const cJSON *e = jn->child; e; e = e->next) {
        int i = g->n_nodes++;
        rc = kf_parse_node(ps, e, i);
        if (rc != 0) return rc;
    }
    rc = kf_parse_names(ps, root, "outputs", -1, &g->outputs, &g->n_outputs);
    if (rc != 0) return rc;
    for (int i = 0; i < g->n_values; i++)
        if (!ps->produced[i])
            return kf_fail(ps->err, KF_E_FORMAT, "value '%s' is declared but is no input, param "
                           "or node output", g->values[i].name);
    const cJSON *jl = cJSON_GetObjectItemCaseSensitive(root, "param_names");
    if (jl && !cJSON_IsNull(jl)) {
        if (!cJSON_IsObject(jl))
            return kf_fail(ps->err, KF_E_FORMAT, "'param_names' is not an object");
        for (const cJSON *e = jl->child; e; e = e->next) {
            int v = kf_gmap_get(&ps->map, e->string, -1);
            if (v < 0 || g->values[v].kind != KF_VAL_PARAM)
                return kf_fail(ps->err, KF_E_FORMAT, "'param_names' labels '%s', which is not a "
                               "param", e->string);
            if (!cJSON_IsString(e))
                return kf_fail(ps->err, KF_E_FORMAT, "'param_names'['%s'] is not a string",
                               e->string);
            free(g->values[v].label);
            g->values[v].label = kf_strdup(e->valuestring);
            if (!g->values[v].label) return kf_fail(ps->err, KF_E_NOMEM, "out of memory");
        }
    }
    return 0;
}

int kf_graph_from_cjson(const void *cjson_obj, kf_graph *g, kf_err *err) {
    memset(g, 0, sizeof *g);
    const cJSON *root = cjson_obj;
    /* Accept the oracle's whole reply too: {"graph": {...}, ...}. */
    if (cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "values")) {
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(root, "graph");
        if (cJSON_IsObject(inner)) root = inner;
    }
    kf_gparse ps = {.g = g, .err = err};
    int rc = kf_graph_parse(&ps, root);
    free(ps.map.slots);
    free(ps.produced);
    if (rc != 0) {
        kf_graph_free(g);
        return kf_err_prefix(err, "graph");
    }
    return 0;
}

int kf_graph_from_json(const char *json, kf_graph *g, kf_err *err) {
    memset(g, 0, sizeof *g);
    if (!json) return kf_fail(err, KF_E_INVALID, "graph: no JSON text");
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= json) ? (long)(at - json) : -1;
        return kf_fail(err, KF_E_FORMAT, "graph: not valid JSON (error near byte %ld)", off);
    }
    int rc = kf_graph_from_cjson(root, g, err);
    cJSON_Delete(root);
    return rc;
}

void kf_graph_free(kf_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        free(g->values[i].label);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        kf_node *n = &g->nodes[i];
        free(n->op);
        for (int k = 0; k < n->n_args; k++) kf_arg_free(&n->args[k]);
        free(n->args);
        free(n->outs);
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->params);
    free(g->outputs);
    memset(g, 0, sizeof *g);
}

int kf_graph_find(const kf_graph *g, const char *value_name) {
    if (!value_name) return -1;
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, value_name) == 0) return i;
    return -1;
}

const kf_arg *kf_node_arg(const kf_node *n, const char *name) {
    for (int i = 0; i < n->n_args; i++)
        if (n->args[i].name && strcmp(n->args[i].name, name) == 0) return &n->args[i];
    return NULL;
}

/* Namespaces that may lead an op name; after one comes the op, then the overload. */
static int kf_op_is_namespace(const char *s, size_t n) {
    static const char *const ns[] = {"aten", "prims", "torch", "quantized", "_ops", "ops"};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        if (strlen(ns[i]) == n && strncmp(ns[i], s, n) == 0) return 1;
    return 0;
}

const char *kf_op_base(const char *op, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    buf[0] = '\0';
    if (!op) return buf;
    const char *s = op;
    for (;;) { /* strip "torch.ops.aten." / "aten::" style prefixes */
        size_t len = strcspn(s, ".:");
        if (s[len] && kf_op_is_namespace(s, len)) {
            s += len;
            while (*s == '.' || *s == ':') s++;
            continue;
        }
        break;
    }
    size_t len = strcspn(s, ".:");
    if (len >= n) len = n - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}
