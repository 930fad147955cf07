/* lower_core.c: the naive lowering of a whole graph into a kernel program: one buffer per
 * graph input, param and output, scratch buffers for intermediates, one KIR kernel per node
 * (views that move no data share their input's buffer), rendered to C in "kernels.c", and
 * copy steps for outputs that are inputs, params, or repeated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agents/lower.h"

typedef struct lw_core {
    kf_program *p;
    const int *val_buf;   /* graph value -> program buffer */
    int *kbuf;            /* program buffer -> kernel buffer of the kernel being built (-1) */
    int *kbuf_pbuf;       /* kernel buffer -> program buffer */
    int n_kbuf;
} lw_core;

static int core_value_buf(kf_lw *w, int value, int writes) {
    lw_core *c = w->user;
    if (value < 0 || value >= w->g->n_values) return -1;
    int pb = c->val_buf[value];
    if (pb < 0) return -1;
    if (c->kbuf[pb] >= 0) {
        if (writes) w->k->bufs[c->kbuf[pb]].writes = 1;
        return c->kbuf[pb];
    }
    int kb = kir_add_buf(w->k, c->p->bufs[pb].name, c->p->bufs[pb].desc.dtype, writes);
    if (kb < 0) return -1;
    c->kbuf[pb] = kb;
    c->kbuf_pbuf[kb] = pb;
    c->n_kbuf = kb + 1;
    return kb;
}

/* The value an aliasing node shares storage with. */
static int alias_source(const kf_node *n) {
    int t = kf_lw_arg_tensor(n, "self", -1);
    if (t < 0) t = kf_lw_arg_tensor(n, "input", -1);
    for (int i = 0; t < 0 && i < n->n_args; i++)
        if (n->args[i].kind == KF_ARG_TENSOR) t = n->args[i].tensor;
    return t;
}

static void mark_args_live(const kf_arg *a, int n, unsigned char *live) {
    for (int i = 0; i < n; i++) {
        if (a[i].kind == KF_ARG_TENSOR && a[i].tensor >= 0) live[a[i].tensor] = 1;
        else if (a[i].kind == KF_ARG_LIST) mark_args_live(a[i].items, a[i].n_items, live);
    }
}

static kf_tdesc contiguous(const kf_tdesc *d) {
    kf_tdesc t = *d;
    kf_tdesc_set_contiguous(&t);
    return t;
}

typedef struct lw_state {
    const kf_lop **lops;
    unsigned char *live, *node_live, *alias;
    int *root, *val_buf, *copy_from, *out_buf;
    kir_kernel **kernels;
    int n_kernels;
    int *kbuf, *kbuf_pbuf;
} lw_state;

static void state_free(lw_state *s) {
    for (int i = 0; i < s->n_kernels; i++) kir_kernel_free(s->kernels[i]);
    free(s->lops); free(s->live); free(s->node_live); free(s->alias); free(s->root);
    free(s->val_buf); free(s->copy_from); free(s->out_buf); free(s->kernels); free(s->kbuf); free(s->kbuf_pbuf);
}

static int add_launch(kf_program *p, kir_kernel *k, const lw_core *c, kf_err *err) {
    int np = 0;
    kf_kparam *params = kir_plan_params(k, &np);
    if (!params && k->n_bufs > 0) return kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    int ki = kf_program_add_kernel(p, k->name, params, np);
    free(params);
    if (ki < 0) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add kernel %s", k->name);
    kf_step *st = kf_program_add_step(p, KF_STEP_LAUNCH);
    if (!st) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add a step");
    st->kernel = ki;
    kf_karg *args = calloc((size_t)(np > 0 ? np : 1), sizeof *args);
    if (!args) return kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    for (int i = 0; i < np; i++) {
        args[i].kind = KF_KP_PTR;
        args[i].buf = c->kbuf_pbuf[i];
    }
    kf_step_set_args(st, args, np);
    free(args);
    return 0;
}

static int lower_graph(const kf_graph *g, kf_program *p, lw_state *s, kf_err *err) {
    int nv = g->n_values, nn = g->n_nodes;
    /* find every node's lowering; the first unknown op is the error */
    for (int i = 0; i < nn; i++) {
        s->lops[i] = kf_lop_find(g->nodes[i].op);
    }
    /* liveness, from the outputs back */
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] >= 0 && g->outputs[i] < nv) s->live[g->outputs[i]] = 1;
    for (int i = nn - 1; i >= 0; i--) {
        const kf_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_outs; j++)
            if (n->outs[j] >= 0 && s->live[n->outs[j]]) s->node_live[i] = 1;
        if (s->node_live[i]) mark_args_live(n->args, n->n_args, s->live);
    }
    for (int i = 0; i < nn; i++)
        if (s->node_live[i] && !s->lops[i]) return kf_lw_unsupported(err, &g->nodes[i], NULL);
    /* storage roots */
    for (int v = 0; v < nv; v++) s->root[v] = v;
    for (int i = 0; i < nn; i++) {
        const kf_node *n = &g->nodes[i];
        if (!s->node_live[i] || !kf_lop_is_alias(g, n, s->lops[i])) continue;
        int src = alias_source(n);
        if (src < 0 || n->n_outs < 1 || n->outs[0] < 0)
            return kf_lw_unsupported(err, n, "view without a tensor input");
        const kf_tdesc *a = &g->values[src].desc, *b = &g->values[n->outs[0]].desc;
        if (a->dtype != b->dtype || kf_tdesc_numel(a) != kf_tdesc_numel(b))
            return kf_lw_unsupported(err, n, "view that changes the dtype or the element count");
        s->alias[i] = 1;
        s->root[n->outs[0]] = s->root[src];
    }
    /* buffers: inputs, params, outputs, scratch */
    for (int v = 0; v < nv; v++) s->val_buf[v] = -1;
    char name[64];
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        kf_tdesc d = contiguous(&g->values[v].desc);
        snprintf(name, sizeof name, "in%d", i);
        int b = kf_program_add_buf(p, name, KF_BUF_INPUT, i, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add buffer %s", name);
        s->val_buf[v] = b;
    }
    for (int i = 0; i < g->n_params; i++) {
        int v = g->params[i];
        kf_tdesc d = contiguous(&g->values[v].desc);
        snprintf(name, sizeof name, "p%d", i);
        int b = kf_program_add_buf(p, name, KF_BUF_PARAM, -1, g->values[v].name, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add buffer %s", name);
        s->val_buf[v] = b;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        if (v < 0 || v >= nv) return kf_fail(err, KF_E_INVALID, "lowering: output %d names no value", i);
        int r = s->root[v];
        kf_tdesc d = contiguous(&g->values[v].desc);
        snprintf(name, sizeof name, "out%d", i);
        int b = kf_program_add_buf(p, name, KF_BUF_OUTPUT, i, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add buffer %s", name);
        s->out_buf[i] = b;
        if (g->values[r].kind == KF_VAL_NODE && s->val_buf[r] < 0) {
            s->val_buf[r] = b;
            s->copy_from[i] = -1;
        } else {
            s->copy_from[i] = r;
        }
    }
    for (int v = 0; v < nv; v++) {
        if (s->root[v] != v || s->val_buf[v] >= 0 || !s->live[v]) continue;
        if (g->values[v].kind != KF_VAL_NODE) continue;
        kf_tdesc d = contiguous(&g->values[v].desc);
        snprintf(name, sizeof name, "t%d", v);
        int b = kf_program_add_buf(p, name, KF_BUF_SCRATCH, -1, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add buffer %s", name);
        s->val_buf[v] = b;
    }
    for (int v = 0; v < nv; v++)
        if (s->val_buf[v] < 0) s->val_buf[v] = s->val_buf[s->root[v]];
    /* one kernel per node that computes */
    s->kbuf = malloc(sizeof(int) * (size_t)(p->n_bufs > 0 ? p->n_bufs : 1));
    s->kbuf_pbuf = malloc(sizeof(int) * (size_t)(p->n_bufs > 0 ? p->n_bufs : 1));
    if (!s->kbuf || !s->kbuf_pbuf) return kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    for (int i = 0; i < nn; i++) {
        const kf_node *n = &g->nodes[i];
        const kf_lop *l = s->lops[i];
        if (!s->node_live[i] || s->alias[i] || l->kind == KF_LOP_NONE || l->kind == KF_LOP_ALIAS) continue;
        snprintf(name, sizeof name, "k%d", s->n_kernels);
        kir_kernel *k = kir_kernel_new(name);
        if (!k) return kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
        s->kernels[s->n_kernels++] = k;
        for (int b = 0; b < p->n_bufs; b++) s->kbuf[b] = -1;
        lw_core c = {p, s->val_buf, s->kbuf, s->kbuf_pbuf, 0};
        kf_lw w;
        memset(&w, 0, sizeof w);
        w.k = k;
        w.g = g;
        w.n = n;
        kf_lop_base(n->op, w.op, sizeof w.op);
        w.value_buf = core_value_buf;
        w.live = s->live;
        w.user = &c;
        int rc = l->kind == KF_LOP_EW ? kf_lw_build_ew(&w, l, err) : l->build(&w, err);
        if (!rc) rc = kf_lw_check(&w, err);
        if (rc) return rc;
        rc = add_launch(p, k, &c, err);
        if (rc) return rc;
    }
    /* outputs that are inputs, params or repeated values: copies */
    for (int i = 0; i < g->n_outputs; i++) {
        if (s->copy_from[i] < 0) continue;
        int src = s->val_buf[s->copy_from[i]];
        int dst = s->out_buf[i];
        if (src < 0 || dst < 0) return kf_fail(err, KF_E_INTERNAL, "lowering: output %d has no source", i);
        kf_step *st = kf_program_add_step(p, KF_STEP_COPY);
        if (!st) return kf_fail(err, KF_E_NOMEM, "lowering: cannot add a step");
        st->src = src;
        st->dst = dst;
        st->bytes = (int64_t)p->bufs[dst].nbytes;
        st->src_offset = st->dst_offset = 0;
    }
    return 0;
}

int kf_lower_naive(const kf_graph *g, const char *target, kf_program *out, kf_err *err) {
    if (!g || !out) return kf_fail(err, KF_E_INVALID, "kf_lower_naive: no graph or program");
    if (!target) target = "cpu";
    if (!kf_lower_is_target(target))
        return kf_fail(err, KF_E_UNSUPPORTED, "naive lowering: target %s has no kernel renderer yet", target);
    memset(out, 0, sizeof *out);
    out->target = kf_strdup(target);
    out->agent = kf_strdup("naive");
    int nv = g->n_values, nn = g->n_nodes;
    lw_state s;
    memset(&s, 0, sizeof s);
    s.lops = calloc((size_t)nn + 1, sizeof *s.lops);
    s.live = calloc((size_t)nv + 1, 1);
    s.node_live = calloc((size_t)nn + 1, 1);
    s.alias = calloc((size_t)nn + 1, 1);
    s.root = calloc((size_t)nv + 1, sizeof *s.root);
    s.val_buf = calloc((size_t)nv + 1, sizeof *s.val_buf);
    s.copy_from = calloc((size_t)g->n_outputs + 1, sizeof *s.copy_from);
    s.out_buf = calloc((size_t)g->n_outputs + 1, sizeof *s.out_buf);
    s.kernels = calloc((size_t)nn + 1, sizeof *s.kernels);
    int rc;
    if (!out->target || !out->agent || !s.lops || !s.live || !s.node_live || !s.alias || !s.root ||
        !s.val_buf || !s.copy_from || !s.out_buf || !s.kernels) {
        rc = kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    } else {
        rc = lower_graph(g, out, &s, err);
    }
    if (!rc) rc = kf_lower_render(s.kernels, s.n_kernels, target, out, err);
    state_free(&s);
    if (rc) kf_program_free(out);
    return rc;
}
