/* search_space.c: the search agent's schedule space for one graph: the fused plan and the
 * one-op-per-group plan, points named by key strings (one schedule per group), the automatic
 * starting point, the neighbours of a point (one group's implementation, threading, chunk or
 * vectorisation changed, heaviest groups first) and lowering a point into a program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agents/search.h"
#include "core/kf_str.h"

static const char impl_chars[] = "AKLIDT";

int kf_search_space_init(kf_search_space *sp, const kf_graph *g, kf_err *err) {
    memset(sp, 0, sizeof *sp);
    sp->g = g;
    kf_fuse_opts o;
    kf_fuse_opts_default(&o);
    int rc = kf_fuse_plan(g, &o, &sp->plans[0], err);
    if (rc) return rc;
    o.prologues = o.epilogues = o.ew_chains = 0;
    rc = kf_fuse_plan(g, &o, &sp->plans[1], err);
    if (rc) {
        kf_fuse_plan_free(&sp->plans[0]);
        return rc;
    }
    sp->n_plans = 2;
    return 0;
}

void kf_search_space_set_target(kf_search_space *sp, const char *target, int lib_conv) {
    snprintf(sp->target, sizeof sp->target, "%s", target ? target : "cpu");
    int gpu = strcmp(sp->target, "cuda") == 0;
    for (int i = 0; i < sp->n_plans; i++) {
        sp->plans[i].lib_conv = lib_conv ? 1 : 0;
        sp->plans[i].defer_bias = gpu;
        sp->plans[i].gpu = gpu;
    }
}

void kf_search_space_free(kf_search_space *sp) {
    for (int i = 0; i < sp->n_plans; i++) kf_fuse_plan_free(&sp->plans[i]);
    sp->n_plans = 0;
}

char *kf_search_key(const kf_search_space *sp, int plan, const kf_gsched *s) {
    kf_str k;
    kf_str_init(&k);
    kf_str_appendf(&k, "P%d", plan);
    for (int i = 0; i < sp->plans[plan].n_groups; i++) {
        int impl = s[i].impl >= 0 && s[i].impl <= KF_IMPL_TILED ? s[i].impl : 0;
        kf_str_appendf(&k, ";%c%d%d.%d.%d.%d.%d", impl_chars[impl], s[i].parallel ? 1 : 0, s[i].vec,
                       s[i].chunk, s[i].tile, s[i].unroll, s[i].block);
    }
    return kf_str_take(&k);
}

int kf_search_key_parse(const kf_search_space *sp, const char *key, int *plan, kf_gsched **out) {
    *out = NULL;
    if (!key || key[0] != 'P') return KF_E_INVALID;
    char *end;
    long p = strtol(key + 1, &end, 10);
    if (end == key + 1 || p < 0 || p >= sp->n_plans) return KF_E_INVALID;
    int ng = sp->plans[p].n_groups;
    kf_gsched *s = calloc((size_t)ng + 1, sizeof *s);
    if (!s) return KF_E_NOMEM;
    const char *c = end;
    for (int i = 0; i < ng; i++) {
        if (*c != ';') goto bad;
        c++;
        const char *ic = *c ? strchr(impl_chars, *c) : NULL;
        if (!ic) goto bad;
        kf_gsched_default(&s[i]);
        s[i].impl = (kf_impl)(ic - impl_chars);
        if ((c[1] != '0' && c[1] != '1') || c[2] < '0' || c[2] > '2') goto bad;
        s[i].parallel = c[1] - '0';
        s[i].vec = c[2] - '0';
        int used = 0;
        if (sscanf(c + 3, ".%d.%d.%d.%d%n", &s[i].chunk, &s[i].tile, &s[i].unroll, &s[i].block, &used) != 4)
            goto bad;
        c += 3 + used;
        s[i].gpu = kf_search_gpu(sp);
        if (!kf_fuse_impl_ok(sp->g, &sp->plans[p], i, s[i].impl)) goto bad;
        if (s[i].chunk < 0 || s[i].tile < 0 || s[i].unroll < 0 || s[i].block < 0) goto bad;
    }
    if (*c) goto bad;
    *plan = (int)p;
    *out = s;
    return 0;
bad:
    free(s);
    return KF_E_INVALID;
}

/* 1 if group i's implementation calls the vendor gemm (its own thread pool). */
static int uses_blas(const kf_gsched *s) { return s->impl == KF_IMPL_LIB || s->impl == KF_IMPL_IM2COL; }

/* OpenBLAS runs its own threads; OpenMP's idle workers spin after each parallel region (and
 * OpenBLAS's after each call), so a program that alternates the two fights itself for the
 * cores. The default avoids the mix: when the library gemms are a small part of the work they
 * become generated loops, else the generated kernels run on one thread beside them. The
 * other side of each choice stays in the neighbourhood for the search to measure. */
static void avoid_pool_mix(const kf_search_space *sp, int plan, kf_gsched *s) {
    const kf_fplan *p = &sp->plans[plan];
    /* a GPU has no thread pools to mix (and a serial kernel there is one thread) */
    if (strcmp(sp->target, "cuda") == 0) return;
    double lib = 0, other = 0;
    int any_lib = 0, any_par = 0;
    for (int i = 0; i < p->n_groups; i++) {
        double w = p->groups[i].flops + p->groups[i].bytes;
        if (uses_blas(&s[i])) {
            lib += w;
            any_lib = 1;
        } else {
            other += w;
        }
        any_par |= s[i].parallel;   /* a library group's epilogue kernel is threaded too */
    }
    if (!any_lib || !any_par) return;
    if (lib < 0.05 * (lib + other)) {
        for (int i = 0; i < p->n_groups; i++)
            if (s[i].impl == KF_IMPL_LIB && kf_fuse_impl_ok(sp->g, p, i, KF_IMPL_KIR) && p->groups[i].flops < 2e7)
                s[i].impl = KF_IMPL_KIR;
        int still = 0;
        for (int i = 0; i < p->n_groups; i++) still |= uses_blas(&s[i]);
        if (!still) return;
    }
    for (int i = 0; i < p->n_groups; i++) s[i].parallel = 0;
}

int kf_search_gpu(const kf_search_space *sp) { return strcmp(sp->target, "cuda") == 0; }

/* The GPU's first choice for group gi: the library gemm (cuBLAS) for matrix products with the
 * epilogue in the kernel after it, im2col + gemm for convolutions, the op builders' loops
 * (whose row loops kir_sched_gpu makes cooperative) for everything else; GPU knobs at their
 * automatic values, 16-byte accesses allowed (a minor neighbour turns them off). */
static void gpu_auto(const kf_search_space *sp, int plan, int gi, kf_gsched *s) {
    const kf_fplan *p = &sp->plans[plan];
    kf_gsched_default(s);
    s->gpu = 1;
    s->vec = 1; /* 16-byte accesses where the renderer can (flat and row loops) */
    s->impl = KF_IMPL_KIR;
    int a = p->groups[gi].anchor;
    if (a < 0) return;
    if (p->kind[a] == KF_FN_GEMM && kf_fuse_impl_ok(sp->g, p, gi, KF_IMPL_LIB)) s->impl = KF_IMPL_LIB;
    if (p->kind[a] == KF_FN_CONV && kf_fuse_impl_ok(sp->g, p, gi, KF_IMPL_IM2COL)) s->impl = KF_IMPL_IM2COL;
    /* where the target has a library convolution (cuDNN), it comes first */
    if (p->kind[a] == KF_FN_CONV && kf_fl_conv_lib_ok(sp->g, p, gi)) s->impl = KF_IMPL_LIB;
}

kf_gsched *kf_search_default(const kf_search_space *sp, int plan) {
    const kf_fplan *p = &sp->plans[plan];
    kf_gsched *s = calloc((size_t)p->n_groups + 1, sizeof *s);
    if (!s) return NULL;
    if (kf_search_gpu(sp)) {
        for (int i = 0; i < p->n_groups; i++) gpu_auto(sp, plan, i, &s[i]);
        return s;
    }
    for (int i = 0; i < p->n_groups; i++) kf_gsched_auto(sp->g, p, i, &s[i]);
    avoid_pool_mix(sp, plan, s);
    return s;
}

double kf_search_work(const kf_search_space *sp, int plan) {
    double w = 0;
    for (int i = 0; i < sp->plans[plan].n_groups; i++)
        w += sp->plans[plan].groups[i].flops + sp->plans[plan].groups[i].bytes;
    return w;
}

typedef struct key_list { char **v; int n, cap; } key_list;

static int push_key(key_list *l, const kf_search_space *sp, int plan, const kf_gsched *s) {
    char *k = kf_search_key(sp, plan, s);
    if (!k) return KF_E_NOMEM;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], k) == 0) {
            free(k);
            return 0;
        }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        char **nv = realloc(l->v, sizeof *nv * (size_t)cap);
        if (!nv) {
            free(k);
            return KF_E_NOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = k;
    return 0;
}

/* Generated matmul and direct-convolution loops of the op builders only have a chance
 * against the library on tiny problems; other alternatives are always worth a try. */
static int impl_plausible(const kf_search_space *sp, int plan, int gi, kf_impl impl) {
    const kf_fplan *p = &sp->plans[plan];
    const kf_fgroup *gr = &p->groups[gi];
    if (impl != KF_IMPL_KIR || gr->anchor < 0) return 1;
    kf_fnode_kind k = p->kind[gr->anchor];
    if (k == KF_FN_GEMM) return gr->flops < 4e6;
    if (k == KF_FN_CONV) {
        int other = kf_fuse_impl_ok(sp->g, p, gi, KF_IMPL_IM2COL) || kf_fuse_impl_ok(sp->g, p, gi, KF_IMPL_DIRECT);
        return !other || gr->flops < 4e6;
    }
    return 1;
}

/* Groups of a plan by work, heaviest first (malloc'd). */
static int *groups_by_work(const kf_fplan *p) {
    int ng = p->n_groups;
    int *order = malloc(sizeof *order * (size_t)(ng + 1));
    if (!order) return NULL;
    for (int i = 0; i < ng; i++) order[i] = i;
    for (int i = 1; i < ng; i++)
        for (int j = i; j > 0; j--) {
            const kf_fgroup *a = &p->groups[order[j - 1]], *b = &p->groups[order[j]];
            if (a->flops + a->bytes >= b->flops + b->bytes) break;
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return order;
}

/* GPU neighbours of s, for the heaviest groups, most promising first: threads per block,
 * rows of reductions per warp or per block, another implementation (gemm through the
 * library or generated loops only for tiny products; convolutions im2col, direct or loops;
 * other ops their loops or the direct kernel), a thread per row, 16-byte accesses on or off.
 * minor = 0 leaves out the threads-per-block and 16-byte variants. */
static int gpu_neighbours(const kf_search_space *sp, int plan, kf_gsched *s, int minor, key_list *l) {
    const kf_fplan *p = &sp->plans[plan];
    int ng = p->n_groups, rc = 0;
    int *order = groups_by_work(p);
    if (!order) return KF_E_NOMEM;
    int top = ng < 3 ? ng : 3;
    double total = kf_search_work(sp, plan);
    /* the tiled convolution first: with a library convolution, the generated ones never won */
    static const kf_impl impls[] = {KF_IMPL_TILED, KF_IMPL_IM2COL, KF_IMPL_KIR, KF_IMPL_DIRECT, KF_IMPL_LIB};
    /* groups lowered inside a fused product (a gemm's TILED softmax): their schedules do
     * nothing, so they get no neighbours */
    unsigned char *absorbed = calloc((size_t)ng + 1, 1);
    if (!absorbed) {
        free(order);
        return KF_E_NOMEM;
    }
    for (int gi = 0; gi < ng; gi++) {
        int gj = s[gi].impl == KF_IMPL_TILED ? kf_fl_gemmrow_absorbs(sp->g, p, gi) : -1;
        if (gj >= 0) absorbed[gj] = 1;
    }
    /* first, a product fused with the softmax reading it: it removes a pass over the product */
    for (int gi = 0; gi < ng && !rc; gi++) {
        if (s[gi].impl == KF_IMPL_TILED || !kf_fl_gemmrow_ok(sp->g, p, gi)) continue;
        kf_gsched keep = s[gi];
        s[gi].impl = KF_IMPL_TILED;
        rc = push_key(l, sp, plan, s);
        s[gi] = keep;
    }
    for (int step = 0; step < 5 && !rc; step++) {
        if ((step == 0 || step == 4) && !minor) continue;
        for (int t = 0; t < top && !rc; t++) {
            int gi = order[t];
            const kf_fgroup *gr = &p->groups[gi];
            if (gr->flops + gr->bytes < 0.05 * total || absorbed[gi]) continue;
            int reduces = gr->anchor >= 0 && p->kind[gr->anchor] == KF_FN_OP && s[gi].impl != KF_IMPL_LIB;
            /* the templates (TILED) take neither threads per block nor the 16-byte switch */
            if ((step == 0 || step == 4) && s[gi].impl == KF_IMPL_TILED) continue;
            kf_gsched keep = s[gi];
            if (step == 1 || step == 3) { /* rows per warp / block; per thread */
                static const int rows[] = {2, 3, 1};
                for (int q = step == 1 ? 0 : 2; q < (step == 1 ? 2 : 3) && !rc && reduces; q++) {
                    if (s[gi].tile == rows[q]) continue;
                    s[gi].tile = rows[q];
                    rc = push_key(l, sp, plan, s);
                    s[gi] = keep;
                }
            } else if (step == 0) { /* threads per block */
                static const int blocks[] = {512, 1024, 128};
                for (int q = 0; q < 3 && !rc && s[gi].impl != KF_IMPL_LIB; q++) {
                    if ((s[gi].block ? s[gi].block : 256) == blocks[q]) continue;
                    s[gi].block = blocks[q];
                    rc = push_key(l, sp, plan, s);
                    s[gi] = keep;
                }
            } else if (step == 2) { /* implementation */
                for (size_t q = 0; q < sizeof impls / sizeof impls[0] && !rc; q++) {
                    if (impls[q] == s[gi].impl || !kf_fuse_impl_ok(sp->g, p, gi, impls[q])) continue;
                    if (!impl_plausible(sp, plan, gi, impls[q])) continue;
                    s[gi].impl = impls[q];
                    rc = push_key(l, sp, plan, s);
                    if (!rc && impls[q] == KF_IMPL_TILED) { /* and the other channel blocking */
                        kf_conv_attr ca;
                        int an = p->groups[gi].anchor;
                        if (kf_fl_conv_attr(sp->g, &sp->g->nodes[an], &ca)) {
                            s[gi].block = kf_fl_convtile_cob(ca.Cout, 0) == 16 ? 32 : 16;
                            rc = push_key(l, sp, plan, s);
                        }
                    }
                    s[gi] = keep;
                }
            } else { /* 16-byte accesses */
                s[gi].vec = s[gi].vec == 1 ? 0 : 1;
                rc = push_key(l, sp, plan, s);
                s[gi] = keep;
            }
        }
    }
    free(order);
    free(absorbed);
    return rc;
}

int kf_search_neighbours(const kf_search_space *sp, const char *key, int minor, char ***keys, int *n) {
    *keys = NULL;
    *n = 0;
    int plan;
    kf_gsched *s;
    int rc = kf_search_key_parse(sp, key, &plan, &s);
    if (rc) return rc;
    const kf_fplan *p = &sp->plans[plan];
    int ng = p->n_groups;
    key_list l = {0};
    if (kf_search_gpu(sp)) {
        rc = gpu_neighbours(sp, plan, s, minor, &l);
        free(s);
        if (rc) {
            for (int i = 0; i < l.n; i++) free(l.v[i]);
            free(l.v);
            return rc;
        }
        *keys = l.v;
        *n = l.n;
        return 0;
    }
    /* groups by work, heaviest first */
    int *order = groups_by_work(p);
    if (!order) {
        free(s);
        return KF_E_NOMEM;
    }
    int top = ng < 3 ? ng : 3;
    double total = kf_search_work(sp, plan);
    /* 0. every convolution direct, or every one through im2col + gemm (threads re-derived) */
    for (int v = 0; v < 2 && !rc; v++) {
        kf_impl want = v == 0 ? KF_IMPL_DIRECT : KF_IMPL_IM2COL;
        kf_gsched *t = malloc(sizeof *t * (size_t)(ng + 1));
        if (!t) {
            rc = KF_E_NOMEM;
            break;
        }
        memcpy(t, s, sizeof *t * (size_t)ng);
        int changed = 0;
        for (int i = 0; i < ng; i++) {
            int a = p->groups[i].anchor;
            if (a < 0 || p->kind[a] != KF_FN_CONV || t[i].impl == want || !kf_fuse_impl_ok(sp->g, p, i, want)) continue;
            t[i].impl = want;
            changed++;
        }
        if (changed > 1) {
            for (int i = 0; i < ng; i++) {
                kf_gsched a;
                kf_gsched_auto(sp->g, p, i, &a);
                t[i].parallel = a.parallel;
            }
            avoid_pool_mix(sp, plan, t);
            rc = push_key(&l, sp, plan, t);
        }
        free(t);
    }
    /* 1. another implementation of a heavy group */
    static const kf_impl impls[] = {KF_IMPL_DIRECT, KF_IMPL_IM2COL, KF_IMPL_LIB, KF_IMPL_KIR};
    for (int t = 0; t < top && !rc; t++) {
        int gi = order[t];
        const kf_fgroup *gr = &p->groups[gi];
        if (gr->flops + gr->bytes < 0.05 * total) continue;
        for (size_t q = 0; q < sizeof impls / sizeof impls[0] && !rc; q++) {
            if (impls[q] == s[gi].impl || !kf_fuse_impl_ok(sp->g, p, gi, impls[q])) continue;
            if (!impl_plausible(sp, plan, gi, impls[q])) continue;
            /* the threading follows the new mix of library and generated kernels */
            kf_gsched *t = malloc(sizeof *t * (size_t)(ng + 1));
            if (!t) {
                rc = KF_E_NOMEM;
                break;
            }
            memcpy(t, s, sizeof *t * (size_t)ng);
            t[gi].impl = impls[q];
            for (int i = 0; i < ng; i++) {
                kf_gsched a;
                kf_gsched_auto(sp->g, p, i, &a);
                t[i].parallel = a.parallel;
            }
            avoid_pool_mix(sp, plan, t);
            rc = push_key(&l, sp, plan, t);
            free(t);
        }
    }
    /* 1b. output channels per register block of a heavy direct convolution */
    for (int t = 0; t < top && !rc; t++) {
        int gi = order[t];
        const kf_fgroup *gr = &p->groups[gi];
        if (gr->anchor < 0 || p->kind[gr->anchor] != KF_FN_CONV || s[gi].impl != KF_IMPL_DIRECT) continue;
        if (gr->flops + gr->bytes < 0.2 * total) continue;
        static const int blocks[] = {8, 16, 4};
        for (int q = 0; q < 3 && !rc; q++) {
            int cur = s[gi].block ? s[gi].block : 4;
            if (blocks[q] == cur) continue;
            kf_gsched keep = s[gi];
            s[gi].block = blocks[q];
            rc = push_key(&l, sp, plan, s);
            s[gi] = keep;
        }
    }
    /* 2. every generated kernel threaded, or none (beside library gemms) */
    if (!rc) {
        int any_lib = 0, n_par = 0, n_kir = ng;
        for (int i = 0; i < ng; i++) {
            if (uses_blas(&s[i])) any_lib = 1;
            n_par += s[i].parallel != 0;
        }
        if (any_lib) {
            kf_gsched *t = malloc(sizeof *t * (size_t)(ng + 1));
            if (!t) rc = KF_E_NOMEM;
            for (int v = 0; v < 2 && !rc; v++) {
                if ((v == 0 && n_par == n_kir) || (v == 1 && n_par == 0)) continue;
                memcpy(t, s, sizeof *t * (size_t)ng);
                for (int i = 0; i < ng; i++) t[i].parallel = v == 0;
                rc = push_key(&l, sp, plan, t);
            }
            free(t);
        }
    }
    /* 3. threads on or off for groups of moderate size */
    for (int t = 0; t < top && !rc; t++) {
        int gi = order[t];
        const kf_fgroup *gr = &p->groups[gi];
        if (gr->flops + gr->bytes > 4e6 || gr->flops + gr->bytes < 0.05 * total) continue;
        kf_gsched keep = s[gi];
        s[gi].parallel = !s[gi].parallel;
        rc = push_key(&l, sp, plan, s);
        s[gi] = keep;
    }
    /* 4. chunk size and vectorisation of big loops */
    for (int t = 0; t < top && !rc && minor; t++) {
        int gi = order[t];
        const kf_fgroup *gr = &p->groups[gi];
        if (gr->numel < 65536 || s[gi].impl == KF_IMPL_LIB) continue;
        static const int chunks[] = {256, 4096};
        for (int q = 0; q < 2 && !rc; q++) {
            if (s[gi].chunk == chunks[q]) continue;
            kf_gsched keep = s[gi];
            s[gi].chunk = chunks[q];
            rc = push_key(&l, sp, plan, s);
            s[gi] = keep;
        }
        if (!rc && s[gi].vec >= 1) {
            kf_gsched keep = s[gi];
            s[gi].vec = s[gi].vec == 2 ? 1 : 2;
            rc = push_key(&l, sp, plan, s);
            s[gi] = keep;
        }
    }
    free(order);
    free(s);
    if (rc) {
        for (int i = 0; i < l.n; i++) free(l.v[i]);
        free(l.v);
        return rc;
    }
    *keys = l.v;
    *n = l.n;
    return 0;
}

int kf_search_build(const kf_search_space *sp, const char *key, kf_program *out, kf_err *err) {
    int plan;
    kf_gsched *s;
    int rc = kf_search_key_parse(sp, key, &plan, &s);
    if (rc) return kf_fail(err, rc, "search: schedule key '%s' does not fit this problem", key);
    rc = kf_fuse_lower(sp->g, &sp->plans[plan], s, sp->target[0] ? sp->target : "cpu", "search", out, err);
    free(s);
    return rc;
}
