/* fuse_plan.c: the fusion planner. Nodes are classified (fuse_ops.c), then merged into groups
 * with a union-find in three passes: elementwise nodes with their elementwise consumers of the
 * same element count; elementwise groups that only feed one reduction-like op become its
 * inlined prologue; elementwise groups consuming a gemm/conv/reduction result of the same
 * element count become its epilogue. A merge is refused when it would create a cycle (a path
 * between the two groups through a node outside both). Finally each group's stored values
 * are found and the groups are put in topological order. */
#include <stdlib.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

typedef struct plan_ctx {
    const kf_graph *g;
    const kf_fuse_opts *o;
    kf_fplan *p;
    unsigned char *live, *node_live;
    int *uf;                    /* union-find parent per node */
    int **cons; int *n_cons;    /* per value: consumer nodes (through row-major views) */
    unsigned char *out_use;     /* per value: a graph output (through row-major views) */
    unsigned char *in_a, *seen; /* scratch per node */
    unsigned char *recompute;   /* per node: elementwise, inlined into every consumer */
    int *stack;
    kf_err *err;
} plan_ctx;

static int find(plan_ctx *c, int n) {
    while (c->uf[n] != n) {
        c->uf[n] = c->uf[c->uf[n]];
        n = c->uf[n];
    }
    return n;
}

static int producer(const kf_graph *g, int v) {
    return g->values[v].kind == KF_VAL_NODE ? g->values[v].index : -1;
}

static int64_t numel(const kf_graph *g, int v) { return kf_tdesc_numel(&g->values[v].desc); }

typedef struct use_ctx { plan_ctx *c; int node; } use_ctx;

static void mark_live(int v, void *ctx) { ((plan_ctx *)ctx)->live[v] = 1; }

static int add_cons(plan_ctx *c, int v, int node) {
    for (int i = 0; i < c->n_cons[v]; i++)
        if (c->cons[v][i] == node) return 0;
    int *nl = realloc(c->cons[v], sizeof *nl * (size_t)(c->n_cons[v] + 1));
    if (!nl) return KF_E_NOMEM;
    c->cons[v] = nl;
    nl[c->n_cons[v]++] = node;
    return 0;
}

static void note_use(int v, void *ctx) {
    use_ctx *u = ctx;
    int r = u->c->p->alias_of[v];
    if (add_cons(u->c, r, u->node)) u->c->err->code = KF_E_NOMEM;
}

static int is_grouped(const kf_fplan *p, int m) {
    kf_fnode_kind k = p->kind[m];
    return k == KF_FN_EW || k == KF_FN_GEMM || k == KF_FN_CONV || k == KF_FN_OP;
}

/* Successor nodes of m: consumers of its outputs. */
static int n_succ(plan_ctx *c, int m, int **list, int *cnt, int max) {
    const kf_node *n = &c->g->nodes[m];
    int k = 0;
    for (int j = 0; j < n->n_outs && k < max; j++) {
        int v = n->outs[j];
        if (v < 0) continue;
        list[k] = c->cons[v];
        cnt[k++] = c->n_cons[v];
    }
    return k;
}

/* 1 if a path leaves group a or b through an outside node and comes back to a or b. */
static int would_cycle(plan_ctx *c, int a, int b) {
    const kf_graph *g = c->g;
    int nn = g->n_nodes, top = 0;
    memset(c->seen, 0, (size_t)nn);
    for (int m = 0; m < nn; m++) {
        int r = c->node_live[m] && is_grouped(c->p, m) ? find(c, m) : -1;
        c->in_a[m] = (r == a || r == b);
    }
    int *lists[KF_FGATHER_SLOTS], cnts[KF_FGATHER_SLOTS];
    for (int m = 0; m < nn; m++) {
        if (!c->in_a[m]) continue;
        int k = n_succ(c, m, lists, cnts, KF_FGATHER_SLOTS);
        for (int q = 0; q < k; q++)
            for (int i = 0; i < cnts[q]; i++) {
                int s = lists[q][i];
                if (!c->in_a[s] && !c->seen[s]) {
                    c->seen[s] = 1;
                    c->stack[top++] = s;
                }
            }
    }
    while (top > 0) {
        int m = c->stack[--top];
        int k = n_succ(c, m, lists, cnts, KF_FGATHER_SLOTS);
        for (int q = 0; q < k; q++)
            for (int i = 0; i < cnts[q]; i++) {
                int s = lists[q][i];
                if (c->in_a[s]) return 1;
                if (!c->seen[s]) {
                    c->seen[s] = 1;
                    c->stack[top++] = s;
                }
            }
    }
    return 0;
}

/* 1 if a node of group `from` produces a value that a node of group `to` reads. */
static int direct_edge(plan_ctx *c, int from, int to) {
    const kf_graph *g = c->g;
    for (int m = 0; m < g->n_nodes; m++) {
        if (!c->node_live[m] || !is_grouped(c->p, m) || find(c, m) != from) continue;
        const kf_node *n = &g->nodes[m];
        for (int j = 0; j < n->n_outs; j++) {
            int v = n->outs[j];
            if (v < 0) continue;
            for (int i = 0; i < c->n_cons[v]; i++) {
                int s = c->cons[v][i];
                if (is_grouped(c->p, s) && find(c, s) == to) return 1;
            }
        }
    }
    return 0;
}

static int try_merge(plan_ctx *c, int x, int y) {
    int a = find(c, x), b = find(c, y);
    if (a == b) return 1;
    if (would_cycle(c, a, b)) return 0;
    /* keep the anchor (a non-elementwise node) as the root when there is one */
    if (c->p->kind[b] != KF_FN_EW) c->uf[a] = b;
    else c->uf[b] = a;
    return 1;
}

/* The anchor of node m's group, or -1. */
static int group_anchor(plan_ctx *c, int m) {
    int r = find(c, m);
    return c->p->kind[r] != KF_FN_EW ? r : -1;
}


/* ---- inline size of a prologue, measured by building it in a scratch kernel ---- */
static kir_expr *scratch_load(kf_fexpr *x, int v, kir_expr *idx) {
    int b = kir_add_buf(x->k, "s", x->g->values[v].desc.dtype, 0);
    return b < 0 ? NULL : kir_load(x->k, b, idx);
}

static int prologue_small(plan_ctx *c, const unsigned char *inl, int v, int max_calls) {
    kir_kernel *k = kir_kernel_new("probe");
    if (!k) return 0;
    int nn = c->g->n_nodes;
    kf_fgather *gs = calloc((size_t)nn + 1, sizeof *gs);
    unsigned char *done = calloc((size_t)nn + 1, 1);
    kf_err e;
    kf_fexpr x = {.k = k, .g = c->g, .kind = c->p->kind, .inl = inl, .gathers = gs,
                  .gather_done = done, .load = scratch_load, .err = &e};
    int var = kir_add_var(k, "i", KIR_T_I64);
    kir_expr *el = gs && done ? kf_fexpr_elem(&x, v, kir_var(k, var)) : NULL;
    int calls = 0, size = el ? kf_fexpr_size(el, &calls) : 1 << 30;
    for (int i = 0; gs && i < nn; i++) kf_fuse_gather_free(&gs[i]);
    free(gs);
    free(done);
    kir_kernel_free(k);
    return size <= c->o->max_inline && calls <= max_calls;
}

/* Pass 1: elementwise nodes with elementwise consumers of the same element count. */
static void merge_ew(plan_ctx *c) {
    const kf_graph *g = c->g;
    for (int m = 0; m < g->n_nodes; m++) {
        if (!c->node_live[m] || c->p->kind[m] != KF_FN_EW) continue;
        int v = g->nodes[m].outs[0];
        if (v < 0) continue;
        for (int i = 0; i < c->n_cons[v]; i++) {
            int q = c->cons[v][i];
            if (c->p->kind[q] != KF_FN_EW || g->nodes[q].outs[0] < 0) continue;
            if (numel(g, g->nodes[q].outs[0]) != numel(g, v)) continue;
            try_merge(c, m, q);
        }
    }
}

/* Pass 2: elementwise groups feeding only one reduction-like op become its prologue. */
typedef struct in_list { int v[64]; int n; } in_list;

static void collect_in(int v, void *ctx) {
    in_list *l = ctx;
    if (l->n < 64) l->v[l->n++] = v;
}

static int try_prologue(plan_ctx *c, int a, int m, unsigned char *inl) {
    const kf_graph *g = c->g;
    int nn = g->n_nodes, r = find(c, m), feeds_a = 0;
    memset(inl, 0, (size_t)nn);
    for (int q = 0; q < nn; q++) {
        if (!c->node_live[q] || !is_grouped(c->p, q) || find(c, q) != r) continue;
        if (c->p->kind[q] != KF_FN_EW) return 0;
        inl[q] = 1;
        int v = g->nodes[q].outs[0];
        if (v < 0) continue;
        if (c->out_use[v]) return 0;
        for (int i = 0; i < c->n_cons[v]; i++) {
            int s = c->cons[v][i];
            if (s == a) feeds_a = 1;
            else if (!is_grouped(c->p, s) || find(c, s) != r) return 0;
        }
    }
    if (!feeds_a) return 0;
    for (int q = 0; q < nn; q++) {
        if (!inl[q] || g->nodes[q].outs[0] < 0) continue;
        int v = g->nodes[q].outs[0];
        for (int i = 0; i < c->n_cons[v]; i++)
            if (c->cons[v][i] == a && !prologue_small(c, inl, v, kf_fuse_multipass(g, a) ? 0 : 4)) return 0;
    }
    if (direct_edge(c, find(c, a), r) || !try_merge(c, a, m)) return 0;
    for (int q = 0; q < nn; q++)
        if (inl[q]) c->p->prologue[q] = 1;
    return 1;
}

static void merge_prologues(plan_ctx *c) {
    const kf_graph *g = c->g;
    int nn = g->n_nodes;
    unsigned char *inl = calloc((size_t)nn + 1, 1);
    if (!inl) return;
    for (int a = 0; a < nn; a++) {
        if (!c->node_live[a] || c->p->kind[a] != KF_FN_OP || !kf_fuse_takes_prologue(g, a)) continue;
        in_list l;
        l.n = 0;
        kf_fuse_each_input(&g->nodes[a], collect_in, &l);
        for (int i = 0; i < l.n; i++) {
            int m = producer(g, c->p->alias_of[l.v[i]]);
            if (m < 0 || !c->node_live[m] || c->p->kind[m] != KF_FN_EW || c->p->prologue[m]) continue;
            if (group_anchor(c, m) >= 0) continue;
            try_prologue(c, a, m, inl);
        }
    }
    free(inl);
}

/* Pass 2b: a cheap elementwise group feeding a reduction and other consumers is recomputed
 * in each of them (inlined everywhere) instead of stored: exp(x - max) in a softmax written
 * out feeds both the sum and the division. */
typedef struct feed_ctx { plan_ctx *c; int r; int bad; } feed_ctx;

static void check_feed(int v, void *ctx) {
    feed_ctx *f = ctx;
    plan_ctx *c = f->c;
    int m = producer(c->g, c->p->alias_of[v]);
    if (m < 0 || !is_grouped(c->p, m)) return;
    int r = find(c, m);
    if (r == f->r) return;
    /* the producer's group must not consume this group's values */
    if (direct_edge(c, f->r, r)) f->bad = 1;
}

static void merge_recompute(plan_ctx *c) {
    const kf_graph *g = c->g;
    int nn = g->n_nodes;
    unsigned char *inl = calloc((size_t)nn + 1, 1);
    if (!inl) return;
    for (int m0 = 0; m0 < nn; m0++) {
        if (!c->node_live[m0] || c->p->kind[m0] != KF_FN_EW || c->p->prologue[m0] || c->recompute[m0]) continue;
        if (group_anchor(c, m0) >= 0 || find(c, m0) != m0) continue;
        int r = m0, feeds_red = 0, ok = 1, outside = 0;
        memset(inl, 0, (size_t)nn);
        for (int q = 0; q < nn && ok; q++) {
            if (!c->node_live[q] || !is_grouped(c->p, q) || find(c, q) != r) continue;
            inl[q] = 1;
            int v = g->nodes[q].outs[0];
            if (v < 0) continue;
            if (c->out_use[v]) ok = 0;
            for (int i = 0; i < c->n_cons[v] && ok; i++) {
                int s = c->cons[v][i];
                if (is_grouped(c->p, s) && find(c, s) == r) continue;
                kf_fnode_kind k = c->p->kind[s];
                if (!is_grouped(c->p, s) || k == KF_FN_GEMM || k == KF_FN_CONV) ok = 0;
                if (k == KF_FN_OP && !kf_fuse_takes_prologue(g, s)) ok = 0;
                if (k == KF_FN_OP) feeds_red = 1;
                outside++;
            }
        }
        if (!ok || !feeds_red || outside < 2) continue;
        feed_ctx f = {c, r, 0};
        for (int q = 0; q < nn && !f.bad; q++)
            if (inl[q]) kf_fuse_each_input(&g->nodes[q], check_feed, &f);
        if (f.bad) continue;
        int small = 1;
        for (int q = 0; q < nn && small; q++)
            if (inl[q] && g->nodes[q].outs[0] >= 0 && !prologue_small(c, inl, g->nodes[q].outs[0], 2)) small = 0;
        if (!small) continue;
        for (int q = 0; q < nn; q++)
            if (inl[q]) {
                c->recompute[q] = 1;
                c->p->prologue[q] = 1;
            }
    }
    free(inl);
}

/* 1 if an elementwise group reads any output of anchor a other than the first. */
static int reads_other_slots(plan_ctx *c, int r, int a) {
    const kf_graph *g = c->g;
    const kf_node *an = &g->nodes[a];
    for (int j = 1; j < an->n_outs; j++) {
        int v = an->outs[j];
        if (v < 0) continue;
        for (int i = 0; i < c->n_cons[v]; i++) {
            int s = c->cons[v][i];
            if (is_grouped(c->p, s) && find(c, s) == r) return 1;
        }
    }
    return 0;
}

/* Pass 3: elementwise groups consuming an anchor's result become its epilogue. */
static void merge_epilogues(plan_ctx *c) {
    const kf_graph *g = c->g;
    for (int a = 0; a < g->n_nodes; a++) {
        kf_fnode_kind k = c->p->kind[a];
        if (!c->node_live[a] || (k != KF_FN_GEMM && k != KF_FN_CONV && k != KF_FN_OP)) continue;
        if (!kf_fuse_takes_epilogue(g, a) || g->nodes[a].n_outs < 1) continue;
        int v = g->nodes[a].outs[0];
        if (v < 0) continue;
        for (int i = 0; i < c->n_cons[v]; i++) {
            int q = c->cons[v][i];
            if (c->p->kind[q] != KF_FN_EW || c->p->prologue[q] || group_anchor(c, q) >= 0) continue;
            if (g->nodes[q].outs[0] < 0 || numel(g, g->nodes[q].outs[0]) != numel(g, v)) continue;
            if (reads_other_slots(c, find(c, q), a) || direct_edge(c, find(c, q), find(c, a))) continue;
            try_merge(c, a, q);
        }
    }
}

static int group_add(kf_fgroup *gr, int **arr, int *n, int x) {
    int *na = realloc(*arr, sizeof *na * (size_t)(*n + 1));
    if (!na) return KF_E_NOMEM;
    *arr = na;
    na[(*n)++] = x;
    (void)gr;
    return 0;
}

int kf_fuse_value_group(const kf_graph *g, const kf_fplan *plan, int v) {
    for (int guard = 0; guard < g->n_nodes + 1; guard++) {
        int p = producer(g, v);
        if (p < 0) return -1;
        if (plan->kind[p] == KF_FN_ALIAS) {
            v = kf_fuse_alias_src(&g->nodes[p]);
        } else if (plan->kind[p] == KF_FN_GATHER) {
            kf_fgather gt;
            kf_err e;
            if (kf_fuse_gather_capture(g, p, &gt, &e) != 1) return -1;
            v = gt.src;
            kf_fuse_gather_free(&gt);
        } else {
            return plan->group[p];
        }
        if (v < 0) return -1;
    }
    return -1;
}

/* Multiply-adds per output element of a gemm or conv anchor (1 for other ops). */
static double reduction_len(const kf_graph *g, const kf_fplan *p, int a) {
    const kf_node *n = &g->nodes[a];
    if (p->kind[a] == KF_FN_CONV) {
        int w = kf_lw_arg_tensor(n, "weight", 1);
        if (w < 0) return 1;
        const kf_tdesc *wd = &g->values[w].desc;
        int64_t per = wd->shape[0] > 0 ? kf_tdesc_numel(wd) / wd->shape[0] : 1;
        return (double)per;
    }
    if (p->kind[a] == KF_FN_GEMM) {
        static const char *const names[] = {"mat1", "batch1", "mat", "input", "self", NULL};
        for (int i = 0; names[i]; i++) {
            int t = kf_lw_arg_tensor(n, names[i], -1);
            if (t < 0) continue;
            const kf_tdesc *d = &g->values[t].desc;
            if (strcmp(names[i], "self") == 0 && kf_lw_arg_tensor(n, "mat1", -1) >= 0) continue;
            return d->ndim ? (double)d->shape[d->ndim - 1] : 1;
        }
    }
    return 1;
}

/* Group dependency edges: from the group producing each input of a group's node, looking
 * through views and recomputed elementwise nodes. */
typedef struct edge_ctx {
    plan_ctx *c;
    unsigned char *edge;
    int *indeg;
    int ng, gi, depth;
} edge_ctx;

static void add_edge(int v, void *ctx) {
    edge_ctx *e = ctx;
    const kf_graph *g = e->c->g;
    const kf_fplan *p = e->c->p;
    if (e->depth > g->n_nodes) return;
    int m = producer(g, v);
    if (m < 0) return;
    if (p->kind[m] == KF_FN_ALIAS || p->kind[m] == KF_FN_GATHER || (p->group[m] < 0 && e->c->recompute[m])) {
        e->depth++;
        kf_fuse_each_input(&g->nodes[m], add_edge, e);
        e->depth--;
        return;
    }
    int pg = p->group[m];
    if (pg >= 0 && pg != e->gi && !e->edge[(size_t)pg * (size_t)e->ng + (size_t)e->gi]) {
        e->edge[(size_t)pg * (size_t)e->ng + (size_t)e->gi] = 1;
        e->indeg[e->gi]++;
    }
}

/* Groups, stored values and topological order. */
static int build_groups(plan_ctx *c) {
    const kf_graph *g = c->g;
    kf_fplan *p = c->p;
    int nn = g->n_nodes;
    int *root_gid = malloc(sizeof *root_gid * (size_t)(nn + 1));
    if (!root_gid) return KF_E_NOMEM;
    for (int m = 0; m < nn; m++) root_gid[m] = -1;
    int ng = 0;
    for (int m = 0; m < nn; m++) {
        p->group[m] = -1;
        if (!c->node_live[m] || !is_grouped(p, m) || c->recompute[m]) continue;
        int r = find(c, m);
        if (root_gid[r] < 0) root_gid[r] = ng++;
        p->group[m] = root_gid[r];
    }
    free(root_gid);
    kf_fgroup *gs = calloc((size_t)ng + 1, sizeof *gs);
    if (!gs) return KF_E_NOMEM;
    for (int i = 0; i < ng; i++) gs[i].anchor = -1;
    int rc = 0;
    for (int m = 0; m < nn && !rc; m++) {
        int gi = p->group[m];
        if (gi < 0) continue;
        kf_fgroup *gr = &gs[gi];
        rc = group_add(gr, &gr->nodes, &gr->n_nodes, m);
        if (p->kind[m] != KF_FN_EW) gr->anchor = m;
    }
    /* stored values */
    for (int m = 0; m < nn && !rc; m++) {
        int gi = p->group[m];
        if (gi < 0 || p->prologue[m]) continue;
        const kf_node *n = &g->nodes[m];
        for (int j = 0; j < n->n_outs && !rc; j++) {
            int v = n->outs[j];
            if (v < 0 || !c->live[v]) continue;
            int st = c->out_use[v] || (p->kind[m] != KF_FN_EW && j > 0);
            for (int i = 0; i < c->n_cons[v] && !st; i++) {
                int s = c->cons[v][i];
                if (!is_grouped(p, s) || p->group[s] != gi) st = 1;
            }
            if (p->kind[m] == KF_FN_OP) {
                const kf_lop *l = kf_lop_find(n->op);
                if (l && l->kind == KF_LOP_NONE) st = 1;
            }
            if (st) {
                p->stored[v] = 1;
                rc = group_add(&gs[gi], &gs[gi].stores, &gs[gi].n_stores, v);
            }
        }
    }
    /* element counts and work estimates */
    for (int gi = 0; gi < ng; gi++) {
        kf_fgroup *gr = &gs[gi];
        int m = gr->anchor >= 0 ? gr->anchor : gr->nodes[gr->n_nodes - 1];
        int v = g->nodes[m].outs[0];
        gr->numel = v >= 0 ? numel(g, v) : 0;
        double fl = 0, by = 0;
        for (int i = 0; i < gr->n_nodes; i++) {
            const kf_node *n = &g->nodes[gr->nodes[i]];
            int ov = n->outs[0];
            fl += ov >= 0 ? (double)numel(g, ov) : 0;
        }
        for (int i = 0; i < gr->n_stores; i++)
            by += (double)kf_tdesc_nbytes(&g->values[gr->stores[i]].desc);
        if (gr->anchor >= 0) {
            const kf_node *an = &g->nodes[gr->anchor];
            for (int i = 0; i < an->n_args; i++)
                if (an->args[i].kind == KF_ARG_TENSOR && an->args[i].tensor >= 0)
                    by += (double)kf_tdesc_nbytes(&g->values[an->args[i].tensor].desc);
            fl += 2.0 * (double)gr->numel * reduction_len(g, p, gr->anchor);
        }
        gr->flops = fl;
        gr->bytes = by;
    }
    if (rc) {
        for (int i = 0; i < ng; i++) {
            free(gs[i].nodes);
            free(gs[i].stores);
        }
        free(gs);
        return rc;
    }
    /* topological order of groups (Kahn) */
    int *indeg = calloc((size_t)ng + 1, sizeof *indeg);
    unsigned char *edge = calloc((size_t)ng * (size_t)ng + 1, 1);
    int *order = malloc(sizeof *order * (size_t)(ng + 1));
    int *newid = malloc(sizeof *newid * (size_t)(ng + 1));
    if (!indeg || !edge || !order || !newid) rc = KF_E_NOMEM;
    p->groups = gs;
    p->n_groups = ng;
    for (int m = 0; m < nn && !rc; m++) {
        int gi = p->group[m];
        if (gi < 0) continue;
        edge_ctx e = {c, edge, indeg, ng, gi, 0};
        kf_fuse_each_input(&g->nodes[m], add_edge, &e);
    }
    int head = 0, tail = 0;
    for (int i = 0; i < ng && !rc; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail && !rc) {
        int x = order[head++];
        for (int y = 0; y < ng; y++)
            if (edge[(size_t)x * (size_t)ng + (size_t)y] && --indeg[y] == 0) order[tail++] = y;
    }
    if (!rc && tail != ng) rc = KF_E_INTERNAL;
    if (!rc) {
        kf_fgroup *sorted = calloc((size_t)ng + 1, sizeof *sorted);
        if (!sorted) {
            rc = KF_E_NOMEM;
        } else {
            for (int i = 0; i < ng; i++) {
                sorted[i] = gs[order[i]];
                newid[order[i]] = i;
            }
            for (int m = 0; m < nn; m++)
                if (p->group[m] >= 0) p->group[m] = newid[p->group[m]];
            free(gs);
            p->groups = sorted;
        }
    }
    free(indeg);
    free(edge);
    free(order);
    free(newid);
    return rc;
}

void kf_fuse_opts_default(kf_fuse_opts *o) {
    o->prologues = 1;
    o->epilogues = 1;
    o->ew_chains = 1;
    o->max_inline = 64;
}

static int plan_run(plan_ctx *c) {
    const kf_graph *g = c->g;
    kf_fplan *p = c->p;
    int nn = g->n_nodes, nv = g->n_values;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] >= 0 && g->outputs[i] < nv) c->live[g->outputs[i]] = 1;
    for (int m = nn - 1; m >= 0; m--) {
        const kf_node *n = &g->nodes[m];
        for (int j = 0; j < n->n_outs; j++)
            if (n->outs[j] >= 0 && c->live[n->outs[j]]) c->node_live[m] = 1;
        if (c->node_live[m]) kf_fuse_each_input(n, mark_live, c);
    }
    for (int m = 0; m < nn; m++) {
        c->uf[m] = m;
        p->group[m] = -1;
        if (!c->node_live[m]) {
            p->kind[m] = KF_FN_DEAD;
            continue;
        }
        if (!kf_lop_find(g->nodes[m].op)) return kf_lw_unsupported(c->err, &g->nodes[m], NULL);
        p->kind[m] = kf_fuse_classify(g, m);
    }
    for (int v = 0; v < nv; v++) p->alias_of[v] = v;
    for (int m = 0; m < nn; m++) {
        if (p->kind[m] != KF_FN_ALIAS) continue;
        int src = kf_fuse_alias_src(&g->nodes[m]);
        int out = g->nodes[m].outs[0];
        if (src < 0 || out < 0) return kf_lw_unsupported(c->err, &g->nodes[m], "view without a tensor input");
        const kf_tdesc *a = &g->values[src].desc, *b = &g->values[out].desc;
        if (a->dtype != b->dtype || kf_tdesc_numel(a) != kf_tdesc_numel(b))
            return kf_lw_unsupported(c->err, &g->nodes[m], "view that changes the dtype or the element count");
        p->alias_of[out] = p->alias_of[src];
    }
    c->err->code = 0;
    for (int m = 0; m < nn; m++) {
        if (!c->node_live[m] || p->kind[m] == KF_FN_ALIAS) continue;
        use_ctx u = {c, m};
        kf_fuse_each_input(&g->nodes[m], note_use, &u);
    }
    if (c->err->code) return kf_fail(c->err, KF_E_NOMEM, "fusion: out of memory");
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] >= 0 && g->outputs[i] < nv) c->out_use[p->alias_of[g->outputs[i]]] = 1;
    if (c->o->ew_chains) merge_ew(c);
    if (c->o->prologues) merge_prologues(c);
    if (c->o->prologues) merge_recompute(c);
    if (c->o->epilogues) merge_epilogues(c);
    int rc = build_groups(c);
    if (rc == KF_E_NOMEM) return kf_fail(c->err, rc, "fusion: out of memory");
    if (rc) return kf_fail(c->err, rc, "fusion: the groups form a cycle");
    return 0;
}

int kf_fuse_plan(const kf_graph *g, const kf_fuse_opts *o, kf_fplan *p, kf_err *err) {
    kf_fuse_opts dflt;
    if (!o) {
        kf_fuse_opts_default(&dflt);
        o = &dflt;
    }
    memset(p, 0, sizeof *p);
    int nn = g->n_nodes, nv = g->n_values;
    p->n_nodes = nn;
    p->n_values = nv;
    p->kind = calloc((size_t)nn + 1, sizeof *p->kind);
    p->group = calloc((size_t)nn + 1, sizeof *p->group);
    p->prologue = calloc((size_t)nn + 1, 1);
    p->stored = calloc((size_t)nv + 1, 1);
    p->alias_of = calloc((size_t)nv + 1, sizeof *p->alias_of);
    plan_ctx c = {.g = g, .o = o, .p = p, .err = err};
    c.live = calloc((size_t)nv + 1, 1);
    c.node_live = calloc((size_t)nn + 1, 1);
    c.uf = calloc((size_t)nn + 1, sizeof *c.uf);
    c.cons = calloc((size_t)nv + 1, sizeof *c.cons);
    c.n_cons = calloc((size_t)nv + 1, sizeof *c.n_cons);
    c.out_use = calloc((size_t)nv + 1, 1);
    c.in_a = calloc((size_t)nn + 1, 1);
    c.seen = calloc((size_t)nn + 1, 1);
    c.stack = calloc((size_t)nn + 1, sizeof *c.stack);
    c.recompute = calloc((size_t)nn + 1, 1);
    int rc;
    if (!p->kind || !p->group || !p->prologue || !p->stored || !p->alias_of || !c.live ||
        !c.node_live || !c.uf || !c.cons || !c.n_cons || !c.out_use || !c.in_a || !c.seen || !c.stack ||
        !c.recompute)
        rc = kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    else
        rc = plan_run(&c);
    if (c.cons)
        for (int v = 0; v < nv; v++) free(c.cons[v]);
    free(c.cons); free(c.n_cons); free(c.live); free(c.node_live); free(c.uf); free(c.out_use);
    free(c.in_a); free(c.seen); free(c.stack); free(c.recompute);
    if (rc) kf_fuse_plan_free(p);
    return rc;
}

void kf_fuse_plan_free(kf_fplan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_groups; i++) {
        free(p->groups[i].nodes);
        free(p->groups[i].stores);
    }
    free(p->groups); free(p->kind); free(p->group); free(p->prologue); free(p->stored); free(p->alias_of);
    memset(p, 0, sizeof *p);
}

char *kf_fuse_plan_describe(const kf_graph *g, const kf_fplan *p) {
    kf_str s;
    kf_str_init(&s);
    char base[96];
    for (int gi = 0; gi < p->n_groups; gi++) {
        const kf_fgroup *gr = &p->groups[gi];
        kf_str_appendf(&s, "g%d:", gi);
        for (int i = 0; i < gr->n_nodes; i++) {
            int m = gr->nodes[i];
            kf_lop_base(g->nodes[m].op, base, sizeof base);
            kf_str_appendf(&s, "%s%s%s%s", i ? "+" : " ", p->prologue[m] ? "^" : "", base,
                           m == gr->anchor ? "*" : "");
        }
        kf_str_append(&s, " stores");
        for (int i = 0; i < gr->n_stores; i++) kf_str_appendf(&s, " %s", g->values[gr->stores[i]].name);
        kf_str_append(&s, "\n");
    }
    int any = 0;
    for (int m = 0; m < p->n_nodes; m++) {
        if (!p->prologue[m] || p->group[m] >= 0) continue;
        kf_lop_base(g->nodes[m].op, base, sizeof base);
        kf_str_appendf(&s, "%s%s", any ? "+" : "recomputed: ", base);
        any = 1;
    }
    if (any) kf_str_append(&s, "\n");
    return kf_str_take(&s);
}
