/* fuse_lower.c: a fusion plan plus one schedule per group -> a kernel program. Buffers for
 * inputs, params and outputs, scratch for the other stored values; then each group in order:
 * an elementwise loop, an op builder of the naive lowering run with hooks (prologue inlined
 * into its loads, epilogue applied in its stores), or a library lowering (fuse_gemm.c,
 * fuse_conv.c); then copies for outputs that are inputs, params, repeats or views. Every
 * kernel goes through the group's schedule (kir_sched.h) and is rendered into kernels.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"
#include "kir/kir_sched.h"

int kf_fl_value_pbuf(const kf_fl *c, int v) {
    if (v < 0 || v >= c->g->n_values) return -1;
    return c->val_buf[c->plan->alias_of[v]];
}

int kf_fl_kbuf(kf_fl *c, int pb, int writes) {
    if (pb < 0 || !c->k) return -1;
    if (c->kbuf[pb] >= 0) {
        if (writes) c->k->bufs[c->kbuf[pb]].writes = 1;
        return c->kbuf[pb];
    }
    int kb = kir_add_buf(c->k, c->p->bufs[pb].name, c->p->bufs[pb].desc.dtype, writes);
    if (kb < 0) return -1;
    c->kbuf[pb] = kb;
    c->kbuf_pbuf[kb] = pb;
    return kb;
}

static int grow_maps(kf_fl *c) {
    int n = c->p->n_bufs + 1;
    int *a = realloc(c->kbuf, sizeof *a * (size_t)n);
    if (!a) return KF_E_NOMEM;
    c->kbuf = a;
    int *b = realloc(c->kbuf_pbuf, sizeof *b * (size_t)n);
    if (!b) return KF_E_NOMEM;
    c->kbuf_pbuf = b;
    return 0;
}

int kf_fl_scratch(kf_fl *c, kf_dtype dt, int64_t numel) {
    kf_tdesc d;
    memset(&d, 0, sizeof d);
    d.dtype = dt;
    d.ndim = 1;
    d.shape[0] = numel;
    kf_tdesc_set_contiguous(&d);
    char name[32];
    snprintf(name, sizeof name, "s%d", c->n_scratch++);
    int b = kf_program_add_buf(c->p, name, KF_BUF_SCRATCH, -1, NULL, &d);
    if (b < 0 || grow_maps(c)) return -1;
    c->kbuf[b] = -1;
    return b;
}

void kf_fl_chan_desc(kf_tdesc *d, kf_dtype dt, int64_t C, int spatial) {
    memset(d, 0, sizeof *d);
    d->dtype = dt;
    d->ndim = 1 + spatial;
    d->shape[0] = C;
    for (int j = 1; j < d->ndim; j++) d->shape[j] = 1;
    kf_tdesc_set_contiguous(d);
}

int kf_fl_kernel_begin(kf_fl *c, kf_err *err) {
    if (grow_maps(c)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    char name[32];
    snprintf(name, sizeof name, "k%d", c->n_kernels);
    c->k = kir_kernel_new(name);
    if (!c->k) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    for (int b = 0; b < c->p->n_bufs; b++) c->kbuf[b] = -1;
    for (int v = 0; v < c->g->n_values; v++) c->local[v] = -1;
    c->self_read = 0;
    return 0;
}

/* The vector math's constant table (kir_sched_vector_math) in a scratch buffer, written by a
 * small kernel before its first use. */
static int zero_pbuf(kf_fl *c) {
    if (c->zero_pbuf >= 0) return c->zero_pbuf;
    double v[64];
    int n = kir_sched_math_consts(v, 64);
    int pb = kf_fl_scratch(c, KF_F32, n);
    if (pb < 0) return -1;
    kir_kernel *saved = c->k;
    int *kb_saved = malloc(sizeof *kb_saved * (size_t)(c->p->n_bufs + 1));
    int *kp_saved = malloc(sizeof *kp_saved * (size_t)(c->p->n_bufs + 1));
    if (!kb_saved || !kp_saved) {
        free(kb_saved);
        free(kp_saved);
        return -1;
    }
    memcpy(kb_saved, c->kbuf, sizeof *kb_saved * (size_t)c->p->n_bufs);
    memcpy(kp_saved, c->kbuf_pbuf, sizeof *kp_saved * (size_t)c->p->n_bufs);
    kir_kernel *k = kir_kernel_new("kconsts");
    int rc = k ? 0 : -1;
    if (!rc) {
        c->k = k;
        for (int b = 0; b < c->p->n_bufs; b++) c->kbuf[b] = -1;
        int kb = kf_fl_kbuf(c, pb, 1);
        for (int i = 0; i < n; i++) kir_append(k, k->body, kir_store(k, kb, kir_int(k, i), kir_flt(k, v[i], KIR_T_F32)));
        kf_gsched s;
        kf_gsched_default(&s);
        s.vec = 0;
        s.parallel = 0;
        kf_err e;
        rc = kf_fl_kernel_end(c, &s, &e);
    }
    c->k = saved;
    memcpy(c->kbuf, kb_saved, sizeof *kb_saved * (size_t)c->p->n_bufs);
    memcpy(c->kbuf_pbuf, kp_saved, sizeof *kp_saved * (size_t)c->p->n_bufs);
    free(kb_saved);
    free(kp_saved);
    if (rc) return -1;
    c->zero_pbuf = pb;
    return pb;
}

static void apply_sched(kf_fl *c, kir_kernel *k, const kf_gsched *s) {
    if (!s && !c->gpu) return;
    if (c->gpu) { /* GPU knobs only: threads per block, cooperative rows, 16-byte accesses */
        if (s && s->gpu) kir_sched_gpu(k, s->block, s->tile, s->vec == 1);
        else kir_sched_gpu(k, 0, 0, 0);
        return;
    }
    if (!s->parallel) kir_sched_serialize(k);
    if (s->vec == 1 || s->vec == 2) kir_sched_auto_vector(k, s->chunk > 0 ? s->chunk : 1024);
    if (s->vec >= 2 && kir_sched_has_vector_math(k)) {
        int pb = zero_pbuf(c);
        int kb = pb >= 0 ? kf_fl_kbuf(c, pb, 0) : -1;
        kir_sched_vector_math(k, kb);
    }
}

static int grow_kernels(kf_fl *c) {
    if (c->n_kernels < c->cap_kernels) return 0;
    int cap = c->cap_kernels ? c->cap_kernels * 2 : 16;
    kir_kernel **nk = realloc(c->kernels, sizeof *nk * (size_t)cap);
    if (!nk) return KF_E_NOMEM;
    c->kernels = nk;
    char **nr = realloc(c->raw, sizeof *nr * (size_t)cap);
    if (!nr) return KF_E_NOMEM;
    c->raw = nr;
    c->cap_kernels = cap;
    return 0;
}

int kf_fl_kernel_raw(kf_fl *c, const char *name, const char *text, const int *bufs, int n, const int64_t grid[3],
                     const int64_t block[3], kf_err *err) {
    if (grow_kernels(c)) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    char *t = kf_strdup(text);
    kf_kparam *params = calloc((size_t)(n > 0 ? n : 1), sizeof *params);
    kf_karg *args = calloc((size_t)(n > 0 ? n : 1), sizeof *args);
    char pname[16][8];
    int ki = -1;
    if (t && params && args && n <= 16) {
        for (int i = 0; i < n; i++) {
            snprintf(pname[i], sizeof pname[i], "a%d", i);
            params[i].name = pname[i];
            params[i].kind = KF_KP_PTR;
            args[i].kind = KF_KP_PTR;
            args[i].buf = bufs[i];
        }
        ki = kf_program_add_kernel(c->p, name, params, n);
    }
    kf_step *st = ki >= 0 ? kf_program_add_step(c->p, KF_STEP_LAUNCH) : NULL;
    if (st) {
        st->kernel = ki;
        kf_step_set_args(st, args, n);
        memcpy(st->grid, grid, sizeof st->grid);
        memcpy(st->block, block, sizeof st->block);
        st->shared_bytes = 0;
        c->raw[c->n_kernels] = t;
        c->kernels[c->n_kernels++] = NULL;
    }
    free(params);
    free(args);
    if (!st) {
        free(t);
        return kf_fail(err, KF_E_NOMEM, "fusion: cannot add kernel %s", name);
    }
    return 0;
}

int kf_fl_kernel_end(kf_fl *c, const kf_gsched *s, kf_err *err) {
    kir_kernel *k = c->k;
    c->k = NULL;
    const char *why = kir_failure(k);
    if (why) {
        kir_kernel_free(k);
        return kf_fail(err, strcmp(why, "out of memory") == 0 ? KF_E_NOMEM : KF_E_INTERNAL,
                       "fusion: kernel IR: %s", why);
    }
    c->k = k;
    apply_sched(c, k, s);
    c->k = NULL;
    if (grow_kernels(c)) {
        kir_kernel_free(k);
        return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    }
    c->raw[c->n_kernels] = NULL;
    c->kernels[c->n_kernels++] = k;
    int np = 0;
    kf_kparam *params = kir_plan_params(k, &np);
    if (!params && k->n_bufs > 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int ki = kf_program_add_kernel(c->p, k->name, params, np);
    free(params);
    if (ki < 0) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add kernel %s", k->name);
    kf_step *st = kf_program_add_step(c->p, KF_STEP_LAUNCH);
    kf_karg *args = calloc((size_t)(np > 0 ? np : 1), sizeof *args);
    if (!st || !args) {
        free(args);
        return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    }
    st->kernel = ki;
    for (int i = 0; i < np; i++) {
        args[i].kind = KF_KP_PTR;
        args[i].buf = c->kbuf_pbuf[i];
    }
    kf_step_set_args(st, args, np);
    free(args);
    return 0;
}

static int is_anchor_out(const kf_fl *c, int v) {
    if (c->gi < 0) return 0;
    int a = c->plan->groups[c->gi].anchor;
    if (a < 0) return 0;
    const kf_node *n = &c->g->nodes[a];
    for (int j = 0; j < n->n_outs; j++)
        if (n->outs[j] >= 0 && c->plan->alias_of[v] == n->outs[j]) return 1;
    return 0;
}

static kir_expr *fl_load(kf_fexpr *x, int v, kir_expr *idx) {
    kf_fl *c = x->user;
    if (is_anchor_out(c, v)) c->self_read = 1;
    if (c->defer) {
        kir_expr *d = kf_fl_defer_load(c, x, v, idx);
        if (d) return d;
    }
    int kb = kf_fl_kbuf(c, kf_fl_value_pbuf(c, v), 0);
    if (kb < 0) return NULL;
    kir_expr *e = kir_load(c->k, kb, idx);
    return c->defer ? kf_fl_defer_add(c, x, v, idx, e) : e;
}

void kf_fl_fexpr(kf_fl *c, kf_fexpr *x) {
    memset(x, 0, sizeof *x);
    x->k = c->k;
    x->g = c->g;
    x->kind = c->plan->kind;
    x->inl = c->inl ? c->inl : c->plan->prologue;
    x->local = c->local;
    x->gathers = c->gathers;
    x->gather_done = c->gather_done;
    x->load = fl_load;
    x->user = c;
    x->err = c->err;
}

int kf_fl_has_epilogue(const kf_fl *c, int gi) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    for (int i = 0; i < gr->n_nodes; i++) {
        int m = gr->nodes[i];
        if (m != gr->anchor && !c->plan->prologue[m]) return 1;
    }
    return 0;
}

/* Computes the group's elementwise nodes (after the anchor) at flat index idx as locals in
 * parent, storing the stored ones. */
static int epilogue_into(kf_fl *c, kf_fexpr *x, int gi, kir_stmt *parent, kir_expr *idx) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    kir_kernel *k = c->k;
    for (int i = 0; i < gr->n_nodes && !x->rc; i++) {
        int m = gr->nodes[i];
        if (m == gr->anchor || c->plan->prologue[m]) continue;
        int v = c->g->nodes[m].outs[0];
        if (v < 0) continue;
        kir_expr *y = kf_fexpr_ew(x, m, idx, parent);
        if (!y) break;
        int var = kir_add_var(k, "e", kir_type_of_dtype(c->g->values[v].desc.dtype));
        kir_append(k, parent, kir_decl(k, var, y));
        c->local[v] = var;
        if (c->plan->stored[v]) {
            int kb = kf_fl_kbuf(c, kf_fl_value_pbuf(c, v), 1);
            if (kb < 0) return kf_fail(c->err, KF_E_INTERNAL, "fusion: stored value without a buffer");
            kir_append(k, parent, kir_store(k, kb, kir_expr_clone(k, idx), kir_var(k, var)));
        }
    }
    return x->rc;
}

int kf_fl_epilogue_at(kf_fl *c, kf_fexpr *x, int gi, kir_stmt *parent, int anchor_var, kir_expr *idx) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    int a = c->g->nodes[gr->anchor].outs[0];
    kir_kernel *k = c->k;
    int iv = kir_add_var(k, "o", KIR_T_I64);
    kir_append(k, parent, kir_decl(k, iv, idx));
    c->local[a] = anchor_var;
    if (c->plan->stored[a]) {
        int kb = kf_fl_kbuf(c, kf_fl_value_pbuf(c, a), 1);
        if (kb < 0) return kf_fail(c->err, KF_E_INTERNAL, "fusion: stored value without a buffer");
        kir_append(k, parent, kir_store(k, kb, kir_var(k, iv), kir_var(k, anchor_var)));
    }
    int rc = epilogue_into(c, x, gi, parent, kir_var(k, iv));
    for (int u = 0; u < c->g->n_values; u++) c->local[u] = -1;
    return rc;
}

int kf_fl_ew_loop(kf_fl *c, int gi, int seed_buf, int bias, const kf_tdesc *bias_desc, double beta,
                  const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    /* rows of the last dim when it is long enough to vectorise: broadcast operands then index
     * per row (see kf_fexpr) instead of dividing the flat index per element */
    int root = gr->anchor >= 0 ? c->g->nodes[gr->anchor].outs[0] : c->g->nodes[gr->nodes[gr->n_nodes - 1]].outs[0];
    const kf_tdesc *rd = &c->g->values[root].desc;
    int64_t W = rd->ndim >= 1 ? rd->shape[rd->ndim - 1] : 1;
    int i = kir_add_var(k, "i", KIR_T_I64);
    kir_stmt *loop;
    if (W >= 16 && gr->numel % W == 0 && gr->numel / W >= 1) {
        int r = kir_add_var(k, "r", KIR_T_I64), rb = kir_add_var(k, "rb", KIR_T_I64), col = kir_add_var(k, "c", KIR_T_I64);
        kir_stmt *rl = kir_for(k, r, kir_int(k, 0), kir_int(k, gr->numel / W), 1, KIR_LOOP_PARALLEL);
        kir_append(k, k->body, rl);
        kir_append(k, rl, kir_decl(k, rb, kir_mul(k, kir_var(k, r), kir_int(k, W))));
        loop = kir_for(k, col, kir_int(k, 0), kir_int(k, W), 1, KIR_LOOP_VECTOR);
        kir_append(k, rl, loop);
        kir_append(k, loop, kir_decl(k, i, kir_add(k, kir_var(k, rb), kir_var(k, col))));
        x.two_d = 1;
        x.root_var = i;
        x.row_var = rb;
        x.col_var = col;
        x.W = W;
    } else {
        loop = kir_for(k, i, kir_int(k, 0), kir_int(k, gr->numel), 1, KIR_LOOP_PARALLEL);
        kir_append(k, k->body, loop);
    }
    if (seed_buf >= 0 && gr->anchor >= 0) {
        int a = c->g->nodes[gr->anchor].outs[0];
        int src = kf_fl_kbuf(c, seed_buf, 0);
        kir_expr *y = src < 0 ? NULL : kir_load(k, src, kir_var(k, i));
        if (y && bias >= 0 && beta != 0.0) {
            kf_lw w;
            memset(&w, 0, sizeof w);
            w.k = k;
            const kf_tdesc *od = &c->g->values[a].desc;
            const kf_tdesc *bd = bias_desc ? bias_desc : &c->g->values[bias].desc;
            kir_expr *bi;
            if (x.two_d && od->ndim >= 1 && od->shape[od->ndim - 1] == x.W) {
                bi = kf_lw_bcast_index(&w, kir_var(k, x.row_var), od->shape, od->ndim, bd);
                if (bd->ndim >= 1 && bd->shape[bd->ndim - 1] == x.W) bi = kir_add(k, bi, kir_var(k, x.col_var));
            } else {
                bi = kf_lw_bcast_index(&w, kir_var(k, i), od->shape, od->ndim, bd);
            }
            kir_expr *b = kf_fexpr_elem(&x, bias, bi);
            if (b) {
                b = kf_lw_cvt(k, y->type, b);
                if (beta != 1.0) b = kir_mul(k, b, kf_lw_const(k, beta, b));
                y = kir_add(k, y, b);
            } else {
                y = NULL;
            }
        }
        if (!y) {
            kir_kernel_free(c->k);
            c->k = NULL;
            return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: gemm result has no buffer");
        }
        int var = kir_add_var(k, "acc", kir_type_of_dtype(c->g->values[a].desc.dtype));
        kir_append(k, loop, kir_decl(k, var, y));
        c->local[a] = var;
        int apb = kf_fl_value_pbuf(c, a);
        if (c->plan->stored[a] && apb >= 0 && (apb != seed_buf || (bias >= 0 && beta != 0.0))) {
            int kb = kf_fl_kbuf(c, apb, 1);
            kir_append(k, loop, kir_store(k, kb, kir_var(k, i), kir_var(k, var)));
        }
    }
    rc = epilogue_into(c, &x, gi, loop, kir_var(k, i));
    if (rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return rc;
    }
    return kf_fl_kernel_end(c, s, err);
}

/* ---- an anchor op through its naive builder, with hooks ---- */
static int fl_value_buf(kf_lw *w, int value, int writes) {
    kf_fl *c = w->user;
    if (!writes && is_anchor_out(c, value)) c->self_read = 1;
    return kf_fl_kbuf(c, kf_fl_value_pbuf(c, value), writes);
}

static kir_expr *fl_load_hook(kf_lw *w, int value, kir_expr *idx) {
    kf_fl *c = w->user;
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    kir_expr *e = kf_fexpr_elem(&x, value, idx);
    if (x.rc && !c->err->code) c->err->code = x.rc;
    return e;
}

static kir_stmt *fl_store_hook(kf_lw *w, int slot, kir_expr *idx, kir_expr *val) {
    kf_fl *c = w->user;
    kir_kernel *k = c->k;
    int v = kf_lw_out(w, slot);
    kir_stmt *blk = kir_block(k);
    if (slot != 0 || !kf_fl_has_epilogue(c, c->gi)) {
        if (c->plan->stored[v] || kf_fl_value_pbuf(c, v) >= 0) { /* (a deferred norm's mean/rstd) */
            int kb = kf_fl_kbuf(c, kf_fl_value_pbuf(c, v), 1);
            if (kb >= 0) kir_append(k, blk, kir_store(k, kb, idx, val));
        }
        return blk;
    }
    int iv = kir_add_var(k, "o", KIR_T_I64);
    kir_append(k, blk, kir_decl(k, iv, idx));
    int av = kir_add_var(k, "a", kir_type_of_dtype(c->g->values[v].desc.dtype));
    kir_append(k, blk, kir_decl(k, av, val));
    if (c->plan->stored[v]) {
        int kb = kf_fl_kbuf(c, kf_fl_value_pbuf(c, v), 1);
        if (kb >= 0) kir_append(k, blk, kir_store(k, kb, kir_var(k, iv), kir_var(k, av)));
    }
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    c->local[v] = av;
    int rc = epilogue_into(c, &x, c->gi, blk, kir_var(k, iv));
    for (int u = 0; u < c->g->n_values; u++) c->local[u] = -1;
    if (rc && !c->err->code) c->err->code = rc;
    return blk;
}

static int anchor_kir(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    const kf_lop *l = kf_lop_find(n->op);
    if (!l) return kf_lw_unsupported(err, n, NULL);
    if (l->kind == KF_LOP_NONE) return 0;
    if (l->kind != KF_LOP_KERNEL || !l->build) return kf_lw_unsupported(err, n, "no kernel builder");
    c->gi = gi;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    int epi = kf_fl_has_epilogue(c, gi);
    int dn = kf_fl_defer_norm(c, gi, err); /* a batch norm whose readers normalise */
    if (dn < 0) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return dn;
    }
    for (int v = 0; v < c->g->n_values; v++) c->live[v] = c->plan->stored[v];
    if (epi && n->outs[0] >= 0) c->live[n->outs[0]] = 1;
    if (dn) c->live[n->outs[0]] = 0;
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = c->k;
    w.g = c->g;
    w.n = n;
    kf_lop_base(n->op, w.op, sizeof w.op);
    w.value_buf = fl_value_buf;
    w.load_hook = fl_load_hook;
    w.store_hook = fl_store_hook;
    w.live = c->live;
    w.one_pass_stats = c->gpu;
    if (dn) {
        const kf_fdefer *d = &c->defer[n->outs[0]];
        w.stats_out = 1;
        w.stats_kbuf[0] = kf_fl_kbuf(c, d->norm_mean_pb, 1);
        w.stats_kbuf[1] = kf_fl_kbuf(c, d->norm_rstd_pb, 1);
    }
    w.user = c;
    kf_err_clear(err);
    rc = l->build(&w, err);
    if (!rc && err->code) rc = kf_fail(err, err->code, "fusion: building %s with its prologue/epilogue failed", n->op);
    if (!rc && c->self_read && epi)
        rc = kf_lw_unsupported(err, n, "the op reads its own output, so it cannot take an epilogue");
    if (!rc) rc = kf_lw_check(&w, err);
    if (rc) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return rc;
    }
    return kf_fl_kernel_end(c, s, err);
}

int kf_fl_materialise(kf_fl *c, int v, const kf_gsched *s, kf_err *err) {
    int pb = kf_fl_value_pbuf(c, v);
    if (pb >= 0) return pb;
    const kf_tdesc *d = &c->g->values[v].desc;
    pb = kf_fl_scratch(c, d->dtype, kf_tdesc_numel(d));
    if (pb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int saved = c->gi;
    c->gi = -1;
    int rc = kf_fl_kernel_begin(c, err);
    if (rc) return rc;
    kir_kernel *k = c->k;
    int i = kir_add_var(k, "i", KIR_T_I64);
    kir_stmt *loop = kir_for(k, i, kir_int(k, 0), kir_int(k, kf_tdesc_numel(d)), 1, KIR_LOOP_PARALLEL);
    kir_append(k, k->body, loop);
    kf_fexpr x;
    kf_fl_fexpr(c, &x);
    kir_expr *e = kf_fexpr_elem(&x, v, kir_var(k, i));
    int kb = kf_fl_kbuf(c, pb, 1);
    if (!e || kb < 0) {
        kir_kernel_free(c->k);
        c->k = NULL;
        return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: cannot gather a view");
    }
    kir_append(k, loop, kir_store(k, kb, kir_var(k, i), e));
    c->gi = saved;
    kf_gsched def;
    kf_gsched_default(&def);
    if (s) def.parallel = s->parallel;
    rc = kf_fl_kernel_end(c, &def, err);
    return rc ? rc : pb;
}

static int lower_group(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    if (gr->anchor < 0) return kf_fl_ew_loop(c, gi, -1, -1, NULL, 0.0, s, err);
    kf_fnode_kind kind = c->plan->kind[gr->anchor];
    if (kind == KF_FN_GEMM && s->impl == KF_IMPL_LIB) return kf_fl_gemm_lib(c, gi, s, err);
    if (kind == KF_FN_CONV && s->impl == KF_IMPL_LIB) return kf_fl_conv_lib(c, gi, s, err);
    if (kind == KF_FN_CONV && s->impl == KF_IMPL_IM2COL)
        return kf_fl_convt_ok(c->g, c->plan, gi) ? kf_fl_convt(c, gi, s, err) : kf_fl_conv_im2col(c, gi, s, err);
    if (kind == KF_FN_CONV && s->impl == KF_IMPL_DIRECT) return kf_fl_conv_direct(c, gi, s, err);
    if (kind == KF_FN_CONV && s->impl == KF_IMPL_TILED) return kf_fl_convtile(c, gi, s, err);
    if (kind == KF_FN_GEMM && s->impl == KF_IMPL_TILED) return kf_fl_gemmrow(c, gi, s, err);
    if (kind == KF_FN_OP && s->impl == KF_IMPL_DIRECT) {
        if (kf_fl_softmax_ok(c->g, c->plan, gi)) return kf_fl_softmax(c, gi, s, err);
        if (kf_fl_pool_ok(c->g, c->plan, gi)) return kf_fl_pool(c, gi, s, err);
        if (kf_fl_bnorm_ok(c->g, c->plan, gi)) return kf_fl_bnorm(c, gi, s, err);
        return kf_fl_reduce_cols(c, gi, s, err);
    }
    return anchor_kir(c, gi, s, err);
}

/* The schedule group gi is lowered with (scheds, or the automatic one). */
static kf_gsched group_sched(const kf_graph *g, const kf_fplan *plan, const kf_gsched *scheds, int gi) {
    kf_gsched s;
    if (scheds) s = scheds[gi];
    else kf_gsched_auto(g, plan, gi, &s);
    if (s.impl == KF_IMPL_AUTO) {
        kf_gsched a;
        kf_gsched_auto(g, plan, gi, &a);
        s.impl = a.impl;
    }
    return s;
}

/* Program buffers for inputs, params, outputs and stored values; skip[v]: a stored value that
 * no kernel writes (a product fused with its softmax) gets none. */
static int add_io(kf_fl *c, int *copy_from, int *out_buf, const unsigned char *skip, kf_err *err) {
    const kf_graph *g = c->g;
    char name[64];
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        kf_tdesc d = g->values[v].desc;
        kf_tdesc_set_contiguous(&d);
        snprintf(name, sizeof name, "in%d", i);
        int b = kf_program_add_buf(c->p, name, KF_BUF_INPUT, i, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add buffer %s", name);
        c->val_buf[v] = b;
    }
    for (int i = 0; i < g->n_params; i++) {
        int v = g->params[i];
        kf_tdesc d = g->values[v].desc;
        kf_tdesc_set_contiguous(&d);
        snprintf(name, sizeof name, "p%d", i);
        int b = kf_program_add_buf(c->p, name, KF_BUF_PARAM, -1, g->values[v].name, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add buffer %s", name);
        c->val_buf[v] = b;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        if (v < 0 || v >= g->n_values) return kf_fail(err, KF_E_INVALID, "fusion: output %d names no value", i);
        kf_tdesc d = g->values[v].desc;
        kf_tdesc_set_contiguous(&d);
        snprintf(name, sizeof name, "out%d", i);
        int b = kf_program_add_buf(c->p, name, KF_BUF_OUTPUT, i, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add buffer %s", name);
        out_buf[i] = b;
        int r = c->plan->alias_of[v];
        if (g->values[r].kind == KF_VAL_NODE && c->plan->stored[r] && c->val_buf[r] < 0) {
            c->val_buf[r] = b;
            copy_from[i] = -1;
        } else {
            copy_from[i] = v;
        }
    }
    for (int v = 0; v < g->n_values; v++) {
        if (!c->plan->stored[v] || c->val_buf[v] >= 0 || skip[v]) continue;
        kf_tdesc d = g->values[v].desc;
        kf_tdesc_set_contiguous(&d);
        snprintf(name, sizeof name, "t%d", v);
        int b = kf_program_add_buf(c->p, name, KF_BUF_SCRATCH, -1, NULL, &d);
        if (b < 0) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add buffer %s", name);
        c->val_buf[v] = b;
    }
    return 0;
}

static int add_output_copies(kf_fl *c, const int *copy_from, const int *out_buf, kf_err *err) {
    const kf_graph *g = c->g;
    kf_gsched def;
    kf_gsched_default(&def);
    for (int i = 0; i < g->n_outputs; i++) {
        int v = copy_from[i];
        if (v < 0) continue;
        int src = kf_fl_value_pbuf(c, v);
        int dst = out_buf[i];
        if (src >= 0) {
            kf_step *st = kf_program_add_step(c->p, KF_STEP_COPY);
            if (!st) return kf_fail(err, KF_E_NOMEM, "fusion: cannot add a step");
            st->src = src;
            st->dst = dst;
            st->bytes = (int64_t)c->p->bufs[dst].nbytes;
            continue;
        }
        /* a view that is not stored: gather it into the output */
        c->gi = -1;
        int rc = kf_fl_kernel_begin(c, err);
        if (rc) return rc;
        kir_kernel *k = c->k;
        int64_t n = kf_tdesc_numel(&g->values[v].desc);
        int iv = kir_add_var(k, "i", KIR_T_I64);
        kir_stmt *loop = kir_for(k, iv, kir_int(k, 0), kir_int(k, n), 1, KIR_LOOP_PARALLEL);
        kir_append(k, k->body, loop);
        kf_fexpr x;
        kf_fl_fexpr(c, &x);
        kir_expr *e = kf_fexpr_elem(&x, v, kir_var(k, iv));
        int kb = kf_fl_kbuf(c, dst, 1);
        if (!e || kb < 0) {
            kir_kernel_free(c->k);
            c->k = NULL;
            return x.rc ? x.rc : kf_fail(err, KF_E_INTERNAL, "fusion: output %d has no source", i);
        }
        kir_append(k, loop, kir_store(k, kb, kir_var(k, iv), e));
        rc = kf_fl_kernel_end(c, &def, err);
        if (rc) return rc;
    }
    return 0;
}

int kf_fuse_lower(const kf_graph *g, const kf_fplan *plan, const kf_gsched *scheds,
                  const char *target, const char *agent, kf_program *out, kf_err *err) {
    if (!target) target = "cpu";
    if (!kf_lower_is_target(target))
        return kf_fail(err, KF_E_UNSUPPORTED, "fusion: target %s has no kernel renderer yet", target);
    memset(out, 0, sizeof *out);
    out->target = kf_strdup(target);
    out->agent = kf_strdup(agent ? agent : "search");
    kf_fl c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.plan = plan;
    c.p = out;
    c.err = err;
    c.gi = -1;
    c.zero_pbuf = -1;
    c.gpu = strcmp(target, "cuda") == 0;
    int nv = g->n_values, nn = g->n_nodes;
    c.val_buf = malloc(sizeof *c.val_buf * (size_t)(nv + 1));
    c.local = malloc(sizeof *c.local * (size_t)(nv + 1));
    c.live = calloc((size_t)nv + 1, 1);
    c.gathers = calloc((size_t)nn + 1, sizeof *c.gathers);
    c.gather_done = calloc((size_t)nn + 1, 1);
    c.inl = calloc((size_t)nn + 1, 1);
    if (c.inl) memcpy(c.inl, plan->prologue, (size_t)nn);
    int *copy_from = calloc((size_t)g->n_outputs + 1, sizeof *copy_from);
    int *out_buf = calloc((size_t)g->n_outputs + 1, sizeof *out_buf);
    /* products fused with their softmax: the softmax group is lowered with them (absorbed) and
     * the product, never written, gets no buffer (skip) */
    unsigned char *skip = calloc((size_t)nv + 1, 1), *absorbed = calloc((size_t)plan->n_groups + 1, 1);
    int rc = 0;
    if (!out->target || !out->agent || !c.val_buf || !c.local || !c.live || !c.gathers ||
        !c.gather_done || !c.inl || !copy_from || !out_buf || !skip || !absorbed)
        rc = kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    for (int v = 0; !rc && v < nv; v++) c.val_buf[v] = -1;
    for (int gi = 0; !rc && gi < plan->n_groups; gi++) {
        int gj = group_sched(g, plan, scheds, gi).impl == KF_IMPL_TILED ? kf_fl_gemmrow_absorbs(g, plan, gi) : -1;
        if (gj < 0) continue;
        absorbed[gj] = 1;
        skip[g->nodes[plan->groups[gi].anchor].outs[0]] = 1;
    }
    if (!rc) rc = add_io(&c, copy_from, out_buf, skip, err);
    for (int gi = 0; !rc && gi < plan->n_groups; gi++) {
        if (absorbed[gi]) continue;
        kf_gsched s = group_sched(g, plan, scheds, gi);
        rc = lower_group(&c, gi, &s, err);
    }
    if (!rc) rc = add_output_copies(&c, copy_from, out_buf, err);
    if (!rc) rc = kf_lower_render_raw(c.kernels, c.raw, c.n_kernels, target, out, err);
    for (int i = 0; i < c.n_kernels; i++) {
        kir_kernel_free(c.kernels[i]);
        free(c.raw[i]);
    }
    if (c.k) kir_kernel_free(c.k);
    for (int m = 0; c.gathers && m < nn; m++) kf_fuse_gather_free(&c.gathers[m]);
    free(c.kernels); free(c.raw); free(c.val_buf); free(c.local); free(c.live); free(c.gathers);
    free(c.gather_done); free(c.defer); free(c.inl); free(skip); free(absorbed); free(c.kbuf); free(c.kbuf_pbuf); free(copy_from); free(out_buf);
    if (rc) kf_program_free(out);
    return rc;
}
