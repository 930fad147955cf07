/* kir_sched_gpu.c: the GPU mapping of a kernel (kir_sched.h: kir_sched_gpu). It changes only
 * how the CUDA renderer maps loops onto threads (kir_kernel.threads, kir_stmt.coop), never
 * the loops themselves, so the C renderer's output is the same with or without it.
 *
 * Cooperative rows. For every outermost PARALLEL nest (the loops kir_render_cuda collapses),
 * the loops of the nest's body that the threads of a group may split are marked coop = 1:
 * - a loop whose iterations only combine into variables declared outside it by sum, max or
 *   min (`a = a + e`, `a = max(a, e)`, `a = min(a, e)`, e not reading a, a read nowhere
 *   else in the loop): each thread accumulates its iterations and the group combines the
 *   partials afterwards;
 * - every store in it indexes with the loop's variable (directly or through locals derived
 *   from it), so iterations write distinct elements; a buffer it stores is loaded only at
 *   exactly a stored index (in-place updates of one element by its own iteration);
 * - no barrier inside, and not inside another marked loop (marking stops at the outermost
 *   legal loop; serial loops, ifs and blocks at the body's level are searched into).
 * The nest's outer loop then gets coop = the group size: a warp (32) or the whole block, or
 * for fewer than KIR_GPU_SPLIT_ROWS rows of KIR_GPU_SPLIT_WORK elements or more (constant),
 * KIR_COOP_SPLIT: several blocks per row.
 * Statements of the body outside marked loops run in every thread of the group (locals) or,
 * when they store, in the group's first thread; the renderer puts group barriers after them. */
#include "kir/kir_sched.h"
#include "kir/kir_int.h"

#include <stdlib.h>
#include <string.h>

#define KIR_GPU_UNKNOWN_ROW 4096     /* assumed trip of a loop without constant bounds */
#define KIR_GPU_BLOCK_GROUP 1024     /* coop value meaning "the whole block" (any >= threads) */
#define KIR_GPU_SPLIT_ROWS 512       /* block nests with fewer rows ... */
#define KIR_GPU_SPLIT_WORK 131072    /* ... of at least this many elements run each row on several blocks */

static int64_t kir_gpu_trip(const kir_stmt *s) {
    int64_t t = kir_sched_trip(s);
    return t < 0 ? KIR_GPU_UNKNOWN_ROW : t;
}

/* Marks vars declared inside s in flags. */
static void kir_gpu_mark_inside(const kir_stmt *s, int n_vars, unsigned char *flags) {
    if (!s) return;
    if ((s->kind == KIR_S_DECL || s->kind == KIR_S_FOR) && s->var >= 0 && s->var < n_vars) flags[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) kir_gpu_mark_inside(s->body[i], n_vars, flags);
    for (int i = 0; i < s->n_els; i++) kir_gpu_mark_inside(s->els[i], n_vars, flags);
}

static int kir_gpu_expr_uses_any(const kir_expr *e, const unsigned char *flags, int n_vars) {
    if (!e) return 0;
    if (e->kind == KIR_E_VAR && e->var >= 0 && e->var < n_vars && flags[e->var]) return 1;
    return kir_gpu_expr_uses_any(e->a, flags, n_vars) || kir_gpu_expr_uses_any(e->b, flags, n_vars) ||
           kir_gpu_expr_uses_any(e->c, flags, n_vars);
}

/* Vars whose value depends on the loop variable: the variable, then (in order) locals
 * declared or assigned from an expression reading a dependent var. */
static void kir_gpu_dependents(const kir_stmt *s, int n_vars, unsigned char *dep) {
    if (!s) return;
    if ((s->kind == KIR_S_DECL || s->kind == KIR_S_ASSIGN) && s->var >= 0 && s->var < n_vars &&
        kir_gpu_expr_uses_any(s->val, dep, n_vars))
        dep[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) kir_gpu_dependents(s->body[i], n_vars, dep);
    for (int i = 0; i < s->n_els; i++) kir_gpu_dependents(s->els[i], n_vars, dep);
}

static int kir_gpu_expr_eq(const kir_expr *a, const kir_expr *b) {
    if (!a || !b) return a == b;
    if (a->kind != b->kind || a->type != b->type) return 0;
    switch (a->kind) {
    case KIR_E_CONST_I: return a->ival == b->ival;
    case KIR_E_CONST_F: return a->fval == b->fval;
    case KIR_E_VAR: return a->var == b->var;
    case KIR_E_LOAD: return a->buf == b->buf && kir_gpu_expr_eq(a->a, b->a);
    default: return a->op == b->op && kir_gpu_expr_eq(a->a, b->a) && kir_gpu_expr_eq(a->b, b->b) &&
                    kir_gpu_expr_eq(a->c, b->c);
    }
}

typedef struct kir_gpu_chk {
    const kir_kernel *k;
    const kir_stmt *loop;
    const unsigned char *inside, *dep;
    const kir_stmt **stores; int n_stores, cap_stores;
    int ok;
} kir_gpu_chk;

/* The reduction op of `var = val` (KIR_ADD, KIR_MAX, KIR_MIN) or -1. */
int kir_sched_gpu_reduction(const kir_expr *val, int var) {
    if (!val || val->kind != KIR_E_BIN) return -1;
    if (val->op != KIR_ADD && val->op != KIR_MAX && val->op != KIR_MIN) return -1;
    const kir_expr *self = val->a, *rest = val->b;
    if (!(self && self->kind == KIR_E_VAR && self->var == var)) {
        self = val->b;
        rest = val->a;
    }
    if (!(self && self->kind == KIR_E_VAR && self->var == var) || kir_expr_uses(rest, var)) return -1;
    return val->op;
}

static void kir_gpu_walk(kir_gpu_chk *h, const kir_stmt *s) {
    if (!s || !h->ok) return;
    const kir_kernel *k = h->k;
    if (s->kind == KIR_S_BARRIER || (s->kind == KIR_S_FOR && (s->coop || s->step <= 0))) {
        h->ok = 0;
        return;
    }
    if (s->kind == KIR_S_ASSIGN && (s->var < 0 || s->var >= k->n_vars || !h->inside[s->var])) {
        int op = kir_sched_gpu_reduction(s->val, s->var);
        if (op < 0) {
            h->ok = 0;
            return;
        }
        kir_type t = k->vars[s->var].type;
        if (t != KIR_T_F32 && t != KIR_T_F64 && t != KIR_T_I32 && t != KIR_T_I64) {
            h->ok = 0;
            return;
        }
    }
    if (s->kind == KIR_S_STORE) {
        if (!kir_gpu_expr_uses_any(s->idx, h->dep, k->n_vars)) {
            h->ok = 0;
            return;
        }
        if (h->n_stores == h->cap_stores) {
            int cap = h->cap_stores ? h->cap_stores * 2 : 8;
            const kir_stmt **ns = realloc(h->stores, (size_t)cap * sizeof *ns);
            if (!ns) {
                h->ok = 0;
                return;
            }
            h->stores = ns;
            h->cap_stores = cap;
        }
        h->stores[h->n_stores++] = s;
    }
    for (int i = 0; i < s->n_body; i++) kir_gpu_walk(h, s->body[i]);
    for (int i = 0; i < s->n_els; i++) kir_gpu_walk(h, s->els[i]);
}

/* Every load of a stored buffer is at a stored index of that buffer. */
static int kir_gpu_loads_ok(const kir_gpu_chk *h, const kir_expr *e) {
    if (!e) return 1;
    if (e->kind == KIR_E_LOAD) {
        int stored = 0, same = 0;
        for (int i = 0; i < h->n_stores; i++)
            if (h->stores[i]->buf == e->buf) {
                stored = 1;
                if (kir_gpu_expr_eq(h->stores[i]->idx, e->a)) same = 1;
            }
        if (stored && !same) return 0;
    }
    return kir_gpu_loads_ok(h, e->a) && kir_gpu_loads_ok(h, e->b) && kir_gpu_loads_ok(h, e->c);
}

static int kir_gpu_stmt_loads_ok(const kir_gpu_chk *h, const kir_stmt *s) {
    if (!s) return 1;
    if (!kir_gpu_loads_ok(h, s->lo) || !kir_gpu_loads_ok(h, s->hi) || !kir_gpu_loads_ok(h, s->idx) ||
        !kir_gpu_loads_ok(h, s->val) || !kir_gpu_loads_ok(h, s->cond))
        return 0;
    for (int i = 0; i < s->n_body; i++)
        if (!kir_gpu_stmt_loads_ok(h, s->body[i])) return 0;
    for (int i = 0; i < s->n_els; i++)
        if (!kir_gpu_stmt_loads_ok(h, s->els[i])) return 0;
    return 1;
}

/* Outer variables assigned in s (flags), and whether each is read only inside its updates. */
static void kir_gpu_outer_assigned(const kir_stmt *s, const unsigned char *inside, int n_vars, unsigned char *out) {
    if (!s) return;
    if (s->kind == KIR_S_ASSIGN && s->var >= 0 && s->var < n_vars && !inside[s->var]) out[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) kir_gpu_outer_assigned(s->body[i], inside, n_vars, out);
    for (int i = 0; i < s->n_els; i++) kir_gpu_outer_assigned(s->els[i], inside, n_vars, out);
}

/* Number of assignments to var in s and whether they all use op. */
static int kir_gpu_count_updates(const kir_stmt *s, int var, int *op) {
    if (!s) return 0;
    int n = 0;
    if (s->kind == KIR_S_ASSIGN && s->var == var) {
        int o = kir_sched_gpu_reduction(s->val, var);
        if (*op == -2) *op = o;
        else if (*op != o) *op = -1;
        n++;
    }
    for (int i = 0; i < s->n_body; i++) n += kir_gpu_count_updates(s->body[i], var, op);
    for (int i = 0; i < s->n_els; i++) n += kir_gpu_count_updates(s->els[i], var, op);
    return n;
}

int kir_sched_gpu_coop_legal(const kir_kernel *k, const kir_stmt *loop) {
    if (!loop || loop->kind != KIR_S_FOR || loop->var < 0 || loop->var >= k->n_vars || loop->step <= 0) return 0;
    kir_type vt = k->vars[loop->var].type;
    if (vt != KIR_T_I32 && vt != KIR_T_I64) return 0;
    size_t nv = k->n_vars ? (size_t)k->n_vars : 1;
    unsigned char *inside = calloc(nv * 3, 1);
    if (!inside) return 0;
    unsigned char *dep = inside + nv, *outer = inside + 2 * nv;
    kir_gpu_mark_inside(loop, k->n_vars, inside);
    dep[loop->var] = 1;
    for (int i = 0; i < loop->n_body; i++) kir_gpu_dependents(loop->body[i], k->n_vars, dep);
    kir_gpu_chk h = {.k = k, .loop = loop, .inside = inside, .dep = dep, .ok = 1};
    for (int i = 0; i < loop->n_body && h.ok; i++) kir_gpu_walk(&h, loop->body[i]);
    for (int i = 0; i < loop->n_body && h.ok; i++) h.ok = kir_gpu_stmt_loads_ok(&h, loop->body[i]);
    if (h.ok) {
        kir_gpu_outer_assigned(loop, inside, k->n_vars, outer);
        for (int v = 0; v < k->n_vars && h.ok; v++) {
            if (!outer[v]) continue;
            int op = -2;
            int n = kir_gpu_count_updates(loop, v, &op);
            /* each update reads the var once; no other reads */
            if (op < 0 || kir_stmt_uses(loop, v) != n) h.ok = 0;
        }
    }
    free(h.stores);
    free(inside);
    return h.ok;
}

typedef struct kir_gpu_nest { int64_t rows, row_work; int marked; } kir_gpu_nest;

/* Marks the legal loops at the group level of a nest body (searching into serial loops, ifs
 * and blocks); returns how many; row_work gets the largest trip among them. */
/* 1 if s stores inside a loop nested in it (its own body's stores do not count). */
static int kir_gpu_nested_store(const kir_stmt *s, int in_loop) {
    if (!s) return 0;
    if (s->kind == KIR_S_STORE) return in_loop;
    int inner = in_loop || (s->kind == KIR_S_FOR);
    for (int i = 0; i < s->n_body; i++)
        if (kir_gpu_nested_store(s->body[i], inner)) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (kir_gpu_nested_store(s->els[i], inner)) return 1;
    return 0;
}

static int kir_gpu_mark_body(kir_kernel *k, kir_stmt *const *body, int n, int64_t outer_trip, int64_t *row_work,
                             int inner_first) {
    int marked = 0;
    for (int i = 0; i < n; i++) {
        kir_stmt *s = body[i];
        if (!s) continue;
        if (s->kind == KIR_S_FOR && inner_first) {
            /* a loop whose inner loops store rows: its threads take the inner loops instead
             * (consecutive threads, consecutive elements) when they can */
            int nested = 0;
            for (int j = 0; j < s->n_body && !nested; j++) nested = kir_gpu_nested_store(s->body[j], 0);
            if (nested) {
                int64_t w = 0;
                int m = kir_gpu_mark_body(k, s->body, s->n_body, outer_trip * kir_gpu_trip(s), &w, inner_first);
                if (m) {
                    marked += m;
                    if (w > *row_work) *row_work = w;
                    continue;
                }
            }
        }
        if (s->kind == KIR_S_FOR && kir_sched_gpu_coop_legal(k, s)) {
            s->coop = 1;
            marked++;
            int64_t w = kir_sched_trip(s); /* loops of unknown trip count: the others decide */
            if (w > *row_work) *row_work = w;
            if (w < 0 && *row_work == 0) *row_work = -1;
            continue;
        }
        if (s->kind == KIR_S_FOR)
            marked += kir_gpu_mark_body(k, s->body, s->n_body, outer_trip * kir_gpu_trip(s), row_work, inner_first);
        else if (s->kind == KIR_S_IF || s->kind == KIR_S_BLOCK) {
            marked += kir_gpu_mark_body(k, s->body, s->n_body, outer_trip, row_work, inner_first);
            marked += kir_gpu_mark_body(k, s->els, s->n_els, outer_trip, row_work, inner_first);
        }
    }
    return marked;
}

static void kir_gpu_clear(kir_stmt *s) {
    if (!s) return;
    s->coop = 0;
    for (int i = 0; i < s->n_body; i++) kir_gpu_clear(s->body[i]);
    for (int i = 0; i < s->n_els; i++) kir_gpu_clear(s->els[i]);
}

/* The nest from s as kir_render_cuda collapses it; returns its innermost loop. */
static kir_stmt *kir_gpu_collapse(const kir_kernel *k, kir_stmt *s, int64_t *rows) {
    kir_stmt *run[64];
    int n = 0;
    *rows = 1;
    for (kir_stmt *cur = s;; cur = cur->body[0]) {
        run[n++] = cur;
        int64_t t = kir_sched_trip(cur);
        *rows = (t < 0 || *rows < 0) ? -1 : *rows * t;
        if (n == 64 || cur->n_body != 1) break;
        kir_stmt *in = cur->body[0];
        if (!in || in->kind != KIR_S_FOR || in->loop != KIR_LOOP_PARALLEL || in->step <= 0 || in->var < 0 ||
            in->var >= k->n_vars)
            break;
        int dep = 0;
        for (int i = 0; i < n && !dep; i++)
            dep = kir_expr_uses(in->lo, run[i]->var) || kir_expr_uses(in->hi, run[i]->var);
        if (dep) break;
    }
    return run[n - 1];
}

typedef struct kir_gpu_sum { int nests, split; int64_t min_block_rows, max_block_work; } kir_gpu_sum;

static void kir_gpu_nests(kir_kernel *k, kir_stmt *s, int mode, kir_gpu_sum *sum) {
    if (!s) return;
    if (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_PARALLEL) {
        int64_t rows;
        kir_stmt *inner = kir_gpu_collapse(k, s, &rows);
        int64_t work = 0;
        int marked = mode == 1 ? 0 : kir_gpu_mark_body(k, inner->body, inner->n_body, 1, &work, mode == 0);
        if (!marked) return;
        if (work <= 0) work = KIR_GPU_UNKNOWN_ROW;
        int group = mode == 2 ? 32 : KIR_GPU_BLOCK_GROUP;
        if (mode == 0) { /* auto: a warp for short rows, the block for long ones */
            if (work <= 8 && (rows < 0 || rows >= 65536)) group = 0;
            else if (work <= 1024) group = 32;
        }
        if (!group) {
            kir_gpu_clear(s);
            return;
        }
        s->coop = group;
        sum->nests++;
        if (group == KIR_GPU_BLOCK_GROUP && rows > 0 && rows < KIR_GPU_SPLIT_ROWS && work >= KIR_GPU_SPLIT_WORK) {
            /* few long rows: several blocks per row (measured on an H100: batch-norm statistics
             * of 64 rows x 512K elements 1.235 -> 1.153 ms for the problem; 128 rows x 50K
             * elements, which L2 holds, were slower split, hence the row length) */
            s->coop = KIR_COOP_SPLIT;
            sum->split = 1;
        }
        if (group == KIR_GPU_BLOCK_GROUP) {
            if (rows >= 0 && (sum->min_block_rows < 0 || rows < sum->min_block_rows)) sum->min_block_rows = rows;
            if (work > sum->max_block_work) sum->max_block_work = work;
        }
        return;
    }
    for (int i = 0; i < s->n_body; i++) kir_gpu_nests(k, s->body[i], mode, sum);
    for (int i = 0; i < s->n_els; i++) kir_gpu_nests(k, s->els[i], mode, sum);
}

int kir_sched_gpu(kir_kernel *k, int threads, int rows, int vec4) {
    if (!k || !k->body) return KF_E_INVALID;
    if (threads < 0 || (threads > 0 && (threads < 32 || threads > 1024 || threads % 32))) return KF_E_INVALID;
    kir_gpu_clear(k->body);
    kir_gpu_sum sum = {0, 0, -1, 0};
    kir_gpu_nests(k, k->body, rows, &sum);
    if (threads == 0) {
        /* long rows read in several passes (softmax: 3) get the biggest blocks: fewer rows
         * in flight per SM keep a row in L2 between its passes; and few long rows (batch-norm
         * statistics) need all the threads they can get; but split nests run each row on
         * several blocks (kir_render_cuda), where smaller blocks let more of them be
         * resident */
        threads = 256;
        if (sum.max_block_work >= 16384 && !sum.split) threads = 1024;
    }
    k->threads = threads;
    k->vec4 = vec4 ? 1 : 0;
    return sum.nests;
}
