/* fuse_view.c: re-indexing views for fusion. A view op's own builder (lower_view.c) is run
 * into a scratch kernel with hooks that record what it stores; when the result is one loop per
 * output slot storing a load of a single source value at an index computed from the loop
 * variable alone, the view is a pure gather and its consumers can read the source directly
 * at that index instead of a materialised copy. No view semantics are duplicated here. */
#include <stdlib.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef struct gather_cap {
    const kf_graph *g;
    int *buf_value;           /* kernel buffer -> graph value */
    int n_buf, cap_buf;
    int stores[KF_FGATHER_SLOTS];
    kir_expr *idx[KF_FGATHER_SLOTS], *val[KF_FGATHER_SLOTS];
    kir_stmt *mark[KF_FGATHER_SLOTS];
    int bad;
} gather_cap;

static int cap_value_buf(kf_lw *w, int value, int writes) {
    gather_cap *c = w->user;
    for (int b = 0; b < c->n_buf; b++)
        if (c->buf_value[b] == value) return b;
    if (value < 0 || value >= w->g->n_values) return -1;
    if (c->n_buf == c->cap_buf) {
        int cap = c->cap_buf ? c->cap_buf * 2 : 8;
        int *nb = realloc(c->buf_value, sizeof *nb * (size_t)cap);
        if (!nb) return -1;
        c->buf_value = nb;
        c->cap_buf = cap;
    }
    int b = kir_add_buf(w->k, w->g->values[value].name, w->g->values[value].desc.dtype, writes);
    if (b < 0) return -1;
    c->buf_value[c->n_buf++] = value;
    return b;
}

static kir_stmt *cap_store(kf_lw *w, int slot, kir_expr *idx, kir_expr *val) {
    gather_cap *c = w->user;
    if (slot < 0 || slot >= KF_FGATHER_SLOTS) {
        c->bad = 1;
        return kir_block(w->k);
    }
    c->stores[slot]++;
    c->idx[slot] = idx;
    c->val[slot] = val;
    c->mark[slot] = kir_block(w->k);
    return c->mark[slot];
}

/* 1 if e reads no buffer and no variable other than var. */
static int only_var(const kir_expr *e, int var) {
    if (!e) return 1;
    if (e->kind == KIR_E_LOAD) return 0;
    if (e->kind == KIR_E_VAR && e->var != var) return 0;
    return only_var(e->a, var) && only_var(e->b, var) && only_var(e->c, var);
}

static int check_shape(const kf_lw *w, gather_cap *c, kf_fgather *gt) {
    kir_stmt *body = w->k->body;
    const kf_node *n = w->n;
    if (n->n_outs > KF_FGATHER_SLOTS) return 0;
    int src = -1, found = 0;
    for (int i = 0; i < body->n_body; i++) {
        kir_stmt *s = body->body[i];
        if (s->kind != KIR_S_FOR || s->n_body != 1 || s->step != 1) return 0;
        if (!s->lo || s->lo->kind != KIR_E_CONST_I || s->lo->ival != 0) return 0;
        if (!s->hi || s->hi->kind != KIR_E_CONST_I) return 0;
        int slot = -1;
        for (int j = 0; j < n->n_outs; j++)
            if (c->mark[j] && s->body[0] == c->mark[j]) slot = j;
        if (slot < 0 || c->stores[slot] != 1) return 0;
        int out = n->outs[slot];
        if (out < 0 || s->hi->ival != kf_tdesc_numel(&w->g->values[out].desc)) return 0;
        kir_expr *idx = c->idx[slot], *val = c->val[slot];
        if (!idx || idx->kind != KIR_E_VAR || idx->var != s->var) return 0;
        if (!val || val->kind != KIR_E_LOAD || val->buf < 0 || val->buf >= c->n_buf) return 0;
        int v = c->buf_value[val->buf];
        if (w->g->values[v].desc.dtype != w->g->values[out].desc.dtype) return 0;
        if (src >= 0 && v != src) return 0;
        if (!only_var(val->a, s->var)) return 0;
        src = v;
        gt->var[slot] = s->var;
        gt->idx[slot] = val->a;
        found++;
    }
    if (!found || src < 0) return 0;
    for (int j = 0; j < n->n_outs; j++) {
        int out = n->outs[j];
        if (out >= 0 && !gt->idx[j] && c->stores[j] == 0) continue;
        if (out >= 0 && !gt->idx[j]) return 0;
    }
    gt->src = src;
    gt->n_slots = n->n_outs;
    return 1;
}

int kf_fuse_gather_capture(const kf_graph *g, int node, kf_fgather *gt, kf_err *err) {
    memset(gt, 0, sizeof *gt);
    const kf_node *n = &g->nodes[node];
    const kf_lop *l = kf_lop_find(n->op);
    if (!l || l->kind != KF_LOP_KERNEL || !l->build) return 0;
    if (n->n_outs < 1 || n->n_outs > KF_FGATHER_SLOTS) return 0;
    kir_kernel *k = kir_kernel_new("gather");
    if (!k) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    gather_cap c;
    memset(&c, 0, sizeof c);
    c.g = g;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = k;
    w.g = g;
    w.n = n;
    kf_lop_base(n->op, w.op, sizeof w.op);
    w.value_buf = cap_value_buf;
    w.store_hook = cap_store;
    w.user = &c;
    kf_err e2;
    kf_err_clear(&e2);
    int rc = l->build(&w, &e2);
    int ok = 0;
    if (rc == 0 && !kir_failure(k) && !c.bad) ok = check_shape(&w, &c, gt);
    free(c.buf_value);
    if (!ok) {
        const char *why = kir_failure(k);
        int oom = rc == KF_E_NOMEM || (why && strcmp(why, "out of memory") == 0);
        kir_kernel_free(k);
        memset(gt, 0, sizeof *gt);
        return oom ? kf_fail(err, KF_E_NOMEM, "fusion: out of memory") : 0;
    }
    gt->k = k;
    return 1;
}

void kf_fuse_gather_free(kf_fgather *gt) {
    if (!gt) return;
    kir_kernel_free(gt->k);
    memset(gt, 0, sizeof *gt);
}
