/* lower_args.c: reading a node's arguments (by schema name, else by position) for the
 * lowering's builders and emitters. */
#include <string.h>
#include "agents/lower.h"

const kf_arg *kf_lw_arg(const kf_node *n, const char *name, int pos) {
    if (!n) return NULL;
    if (name) {
        for (int i = 0; i < n->n_args; i++)
            if (n->args[i].name && strcmp(n->args[i].name, name) == 0) return &n->args[i];
    }
    if (pos >= 0 && pos < n->n_args && !n->args[pos].name) return &n->args[pos];
    return NULL;
}

int kf_lw_arg_tensor(const kf_node *n, const char *name, int pos) {
    const kf_arg *a = kf_lw_arg(n, name, pos);
    return (a && a->kind == KF_ARG_TENSOR) ? a->tensor : -1;
}

int kf_lw_arg_is_none(const kf_node *n, const char *name, int pos) {
    const kf_arg *a = kf_lw_arg(n, name, pos);
    return !a || a->kind == KF_ARG_NONE;
}

int64_t kf_lw_arg_int(const kf_node *n, const char *name, int pos, int64_t dflt) {
    const kf_arg *a = kf_lw_arg(n, name, pos);
    if (!a) return dflt;
    switch (a->kind) {
    case KF_ARG_INT: case KF_ARG_BOOL: return a->i;
    case KF_ARG_FLOAT: return (int64_t)a->f;
    case KF_ARG_LIST: return a->n_items == 1 ? (int64_t)a->items[0].i : dflt;
    default: return dflt;
    }
}

double kf_lw_arg_num(const kf_node *n, const char *name, int pos, double dflt) {
    const kf_arg *a = kf_lw_arg(n, name, pos);
    if (!a) return dflt;
    switch (a->kind) {
    case KF_ARG_INT: case KF_ARG_BOOL: return (double)a->i;
    case KF_ARG_FLOAT: return a->f;
    default: return dflt;
    }
}

int kf_lw_arg_ints(const kf_node *n, const char *name, int pos, int64_t *out, int max) {
    const kf_arg *a = kf_lw_arg(n, name, pos);
    if (!a || a->kind == KF_ARG_NONE) return -1;
    if (a->kind == KF_ARG_INT || a->kind == KF_ARG_BOOL) {
        if (max > 0) out[0] = a->i;
        return 1;
    }
    if (a->kind != KF_ARG_LIST) return -1;
    int c = 0;
    for (int i = 0; i < a->n_items && c < max; i++) {
        const kf_arg *it = &a->items[i];
        out[c++] = it->kind == KF_ARG_FLOAT ? (int64_t)it->f : it->i;
    }
    return c;
}

int kf_lw_wrap_dim(int64_t dim, int ndim) {
    int nd = ndim > 0 ? ndim : 1;
    if (dim < 0) dim += nd;
    if (dim < 0) dim = 0;
    if (dim >= nd) dim = nd - 1;
    return (int)dim;
}
