/* lower_ops.c: finding the lowering of an ATen op (across every lowering file's op table)
 * and deciding whether a node moves no data (its output may share its input's storage). */
#include <string.h>
#include "agents/lower.h"

const char *kf_lop_base(const char *op, char *buf, size_t n) {
    if (!buf || n == 0) return "";
    buf[0] = '\0';
    if (!op) return buf;
    const char *s = op;
    if (strncmp(s, "aten.", 5) == 0) s += 5;
    else if (strncmp(s, "aten::", 6) == 0) s += 6;
    const char *dot = strchr(s, '.');
    size_t len = dot ? (size_t)(dot - s) : strlen(s);
    if (len >= n) len = n - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* in-place variant: one trailing '_' (but not dunder names like __and__) */
    if (len > 1 && buf[len - 1] == '_' && !(len > 2 && buf[len - 2] == '_'))
        buf[len - 1] = '\0';
    return buf;
}

static const kf_lop *const kf_lop_tables[] = {
    kf_lops_view, kf_lops_elementwise, kf_lops_matmul, kf_lops_conv, kf_lops_pool,
    kf_lops_reduce, kf_lops_dim, kf_lops_norm, kf_lops_loss, kf_lops_misc, kf_lops_index, kf_lops_resize,
};

const kf_lop *kf_lop_find(const char *op) {
    char base[96];
    kf_lop_base(op, base, sizeof base);
    for (size_t t = 0; t < sizeof kf_lop_tables / sizeof kf_lop_tables[0]; t++)
        for (const kf_lop *l = kf_lop_tables[t]; l->name; l++)
            if (strcmp(l->name, base) == 0) return l;
    return NULL;
}

int kf_lop_is_alias(const kf_graph *g, const kf_node *n, const kf_lop *l) {
    if (!l) return 0;
    if (l->kind == KF_LOP_ALIAS) return 1;
    return l->alias ? l->alias(g, n) : 0;
}
