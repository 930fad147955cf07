/* fuse_ops.c: what the fusion planner knows about ops: the kind of each node (view, gather,
 * elementwise, matrix product, convolution, other kernel), which ops take an inlined
 * elementwise prologue on their inputs and an epilogue on their first output, and a walk over
 * a node's tensor inputs (including tensors inside list arguments). */
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

static int in_table(const kf_lop *table, const kf_lop *l) {
    for (const kf_lop *t = table; t->name; t++)
        if (t == l) return 1;
    return 0;
}

kf_fnode_kind kf_fuse_classify(const kf_graph *g, int node) {
    const kf_node *n = &g->nodes[node];
    const kf_lop *l = kf_lop_find(n->op);
    if (!l) return KF_FN_OP;
    if (l->kind == KF_LOP_ALIAS || (l->kind == KF_LOP_KERNEL && l->alias && l->alias(g, n))) {
        if (n->n_outs >= 1 && n->outs[0] >= 0) return KF_FN_ALIAS;
    }
    if (l->kind == KF_LOP_EW) return KF_FN_EW;
    if (l->kind == KF_LOP_NONE) return KF_FN_OP;
    if (in_table(kf_lops_matmul, l)) return KF_FN_GEMM;
    if (in_table(kf_lops_conv, l)) return KF_FN_CONV;
    kf_fgather gt;
    kf_err e;
    if (kf_fuse_gather_capture(g, node, &gt, &e) == 1) {
        kf_fuse_gather_free(&gt);
        return KF_FN_GATHER;
    }
    return KF_FN_OP;
}

static int name_in(const char *base, const char *const *names) {
    for (int i = 0; names[i]; i++)
        if (strcmp(base, names[i]) == 0) return 1;
    return 0;
}

/* Ops that read every input element a bounded number of times, in any order. */
static const char *const prologue_ops[] = {
    "sum", "mean", "amax", "amin", "max", "min", "prod", "argmax", "argmin", "var", "std",
    "var_mean", "std_mean", "norm", "linalg_vector_norm", "logsumexp", "all", "any",
    "_softmax", "softmax", "_log_softmax", "log_softmax", "native_layer_norm", "layer_norm",
    "native_group_norm", "group_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "nll_loss_forward", "nll_loss",
    "kl_div", "binary_cross_entropy", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "cat", "stack",
    NULL,
};

/* Ops whose first output is stored exactly once per element, never read back. */
static const char *const epilogue_ops[] = {
    "sum", "mean", "amax", "amin", "max", "min", "prod", "var", "std", "norm",
    "linalg_vector_norm", "logsumexp", "_softmax", "softmax", "_log_softmax", "log_softmax",
    "native_layer_norm", "layer_norm", "native_group_norm", "group_norm", "native_batch_norm",
    "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
    "_native_batch_norm_legit_no_training", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "cat", "stack",
    NULL,
};

int kf_fuse_takes_prologue(const kf_graph *g, int node) {
    char base[96];
    kf_lop_base(g->nodes[node].op, base, sizeof base);
    return name_in(base, prologue_ops);
}

/* Ops whose builders read their input in several passes (statistics, then the output). */
static const char *const multipass_ops[] = {
    "_softmax", "softmax", "_log_softmax", "log_softmax", "native_layer_norm", "layer_norm",
    "native_group_norm", "group_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training", "var", "std",
    "var_mean", "std_mean", "logsumexp", NULL,
};

int kf_fuse_multipass(const kf_graph *g, int node) {
    char base[96];
    kf_lop_base(g->nodes[node].op, base, sizeof base);
    return name_in(base, multipass_ops);
}

int kf_fuse_takes_epilogue(const kf_graph *g, int node) {
    kf_fnode_kind k = kf_fuse_classify(g, node);
    if (k == KF_FN_GEMM || k == KF_FN_CONV) return 1;
    char base[96];
    kf_lop_base(g->nodes[node].op, base, sizeof base);
    return name_in(base, epilogue_ops);
}

static void each_arg(const kf_arg *a, int n, void (*fn)(int v, void *ctx), void *ctx) {
    for (int i = 0; i < n; i++) {
        if (a[i].kind == KF_ARG_TENSOR && a[i].tensor >= 0) fn(a[i].tensor, ctx);
        else if (a[i].kind == KF_ARG_LIST) each_arg(a[i].items, a[i].n_items, fn, ctx);
    }
}

void kf_fuse_each_input(const kf_node *n, void (*fn)(int v, void *ctx), void *ctx) {
    each_arg(n->args, n->n_args, fn, ctx);
}
