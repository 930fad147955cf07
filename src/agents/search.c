/* search.c: the search agent (search.h). Per problem it builds the schedule space
 * (search_space.c) and proposes in rounds:
 *  - round 1: the cached best schedule for this problem's signature (search_cache.c) when
 *    there is one and the automatic schedule, else the automatic schedule and its most
 *    promising neighbour;
 *  - later rounds: the verified candidates are ranked by their own median time; candidates
 *    more than drop_ratio times slower than the best are dropped; the best `beam` ones are
 *    expanded into neighbours not tried yet; when nothing verified yet, the one-op-per-group
 *    plan is tried (the safety net);
 *  - it stops (n = 0) when the budget is spent, max_candidates were proposed, or nothing new
 *    is left. The best verified schedule is written back to the cache on every call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "agents/search.h"
#include "core/kf_str.h"
#include "targets/kf_target.h"

typedef struct ks_cand {
    char *key;
    const kf_program *prog;   /* identity of the proposed program (owned by the caller) */
    int done;                 /* a result came back */
    kf_status status;
    double ms;
} ks_cand;

typedef struct ks_state {
    kf_search_opts o;
    char *cache_path;
    const kf_graph *g;        /* the problem the state is for */
    kf_search_space sp;
    int sp_ok;
    char sig[17];
    ks_cand *c;
    int n, cap;
    int rounds;
    double t0;
    double cached_ms;
} ks_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void kf_search_opts_default(kf_search_opts *o) {
    o->budget_s = 10.0;
    o->cache_path = NULL;
    o->beam = 2;
    o->first_batch = 2;
    o->per_round = 1;
    o->max_candidates = 4;
    o->drop_ratio = 3.0;
}

static void state_reset(ks_state *st) {
    for (int i = 0; i < st->n; i++) free(st->c[i].key);
    free(st->c);
    st->c = NULL;
    st->n = st->cap = 0;
    if (st->sp_ok) kf_search_space_free(&st->sp);
    st->sp_ok = 0;
    st->g = NULL;
    st->rounds = 0;
    st->cached_ms = 0;
}

static int tried(const ks_state *st, const char *key) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->c[i].key, key) == 0) return 1;
    return 0;
}

static ks_cand *add_cand(ks_state *st, const char *key) {
    if (st->n == st->cap) {
        int cap = st->cap ? st->cap * 2 : 16;
        ks_cand *nc = realloc(st->c, sizeof *nc * (size_t)cap);
        if (!nc) return NULL;
        st->c = nc;
        st->cap = cap;
    }
    ks_cand *c = &st->c[st->n];
    memset(c, 0, sizeof *c);
    c->key = kf_strdup(key);
    if (!c->key) return NULL;
    st->n++;
    return c;
}

/* Results of our earlier candidates, found by program identity. */
static void read_history(ks_state *st, const kf_history *h) {
    if (!h) return;
    for (int i = 0; i < h->n; i++) {
        const kf_attempt *a = &h->attempts[i];
        for (int j = 0; j < st->n; j++) {
            if (!st->c[j].prog || st->c[j].prog != a->program || st->c[j].done) continue;
            st->c[j].done = 1;
            st->c[j].status = a->result.status;
            st->c[j].ms = a->result.ms;
        }
    }
}

static int best_index(const ks_state *st) {
    int b = -1;
    for (int i = 0; i < st->n; i++) {
        const ks_cand *c = &st->c[i];
        if (!c->done || c->status != KF_ST_VERIFIED || c->ms <= 0) continue;
        if (b < 0 || c->ms < st->c[b].ms) b = i;
    }
    return b;
}

static int proposed(const ks_state *st) {
    int k = 0;
    for (int i = 0; i < st->n; i++) k += st->c[i].prog != NULL;
    return k;
}

/* Keys to try this round, in order (malloc'd list). */
typedef struct want { char **v; int n, cap; } want;

static void want_add(want *w, const ks_state *st, const char *key) {
    if (!key || tried(st, key)) return;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->v[i], key) == 0) return;
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 8;
        char **nv = realloc(w->v, sizeof *nv * (size_t)cap);
        if (!nv) return;
        w->v = nv;
        w->cap = cap;
    }
    char *k = kf_strdup(key);
    if (k) w->v[w->n++] = k;
}

static void want_neighbours(want *w, const ks_state *st, const char *key, int minor, int max) {
    char **keys = NULL;
    int n = 0;
    if (kf_search_neighbours(&st->sp, key, minor, &keys, &n)) return;
    int added = 0;
    for (int i = 0; i < n; i++) {
        int before = w->n;
        if (added < max) want_add(w, st, keys[i]);
        added += w->n > before;
        free(keys[i]);
    }
    free(keys);
}

static void plan_round(ks_state *st, want *w, int limit) {
    /* chunk-size and vectorisation variants rarely beat the defaults and every candidate costs a
     * compile, a verification and a timing: they are left out */
    int minor = 0;
    if (kf_search_gpu(&st->sp)) minor = 1; /* on a GPU the block size matters as much */
    if (st->rounds == 0) {
        char *cached = NULL;
        double ms = 0;
        if (kf_search_cache_get(st->cache_path, st->sig, &cached, &ms)) {
            int plan;
            kf_gsched *s = NULL;
            if (kf_search_key_parse(&st->sp, cached, &plan, &s) == 0) {
                want_add(w, st, cached);
                st->cached_ms = ms;
            }
            free(s);
            free(cached);
        }
        /* a cache hit comes first, with the automatic schedule beside it (the cache may hold
         * a schedule chosen before better implementations existed, or timed on a busy
         * machine); later rounds explore around the better one */
        kf_gsched *d = kf_search_default(&st->sp, 0);
        char *dk = d ? kf_search_key(&st->sp, 0, d) : NULL;
        free(d);
        want_add(w, st, dk);
        if (dk && w->n < limit && st->cached_ms <= 0) want_neighbours(w, st, dk, minor, limit - w->n);
        free(dk);
        return;
    }
    int b = best_index(st);
    if (b < 0) {
        /* nothing verified: the unfused plan, then without vectorisation */
        kf_gsched *d = kf_search_default(&st->sp, 1);
        if (!d) return;
        char *k1 = kf_search_key(&st->sp, 1, d);
        want_add(w, st, k1);
        for (int i = 0; i < st->sp.plans[1].n_groups; i++) d[i].vec = 0;
        char *k2 = kf_search_key(&st->sp, 1, d);
        want_add(w, st, k2);
        free(k1);
        free(k2);
        free(d);
        return;
    }
    /* beam: the best verified candidates within drop_ratio of the best */
    double best = st->c[b].ms;
    int *idx = malloc(sizeof *idx * (size_t)(st->n + 1));
    if (!idx) return;
    int m = 0;
    for (int i = 0; i < st->n; i++) {
        const ks_cand *c = &st->c[i];
        if (c->done && c->status == KF_ST_VERIFIED && c->ms > 0 && c->ms <= st->o.drop_ratio * best)
            idx[m++] = i;
    }
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && st->c[idx[j]].ms < st->c[idx[j - 1]].ms; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    int beam = st->o.beam < m ? st->o.beam : m;
    for (int r = 0; r < beam && w->n < limit; r++)
        want_neighbours(w, st, st->c[idx[r]].key, minor, r == 0 ? limit - w->n : 1);
    free(idx);
}

static int search_propose(kf_agent *a, const kf_problem *pb, const kf_history *h,
                          kf_program **cands, int *n, kf_err *err) {
    ks_state *st = a->ctx;
    if (!n) return kf_fail(err, KF_E_INVALID, "search agent: no candidate count");
    int cap = *n;
    *n = 0;
    if (!pb || !pb->graph) return kf_fail(err, KF_E_INVALID, "search agent: problem without a graph");
    const char *target = pb->target ? pb->target : "cpu";
    if (strcmp(target, "cpu") != 0 && strcmp(target, "cuda") != 0)
        return kf_fail(err, KF_E_UNSUPPORTED, "search agent: target %s has no kernel renderer yet", target);
    if (st->g != pb->graph || !st->sp_ok || strcmp(st->sp.target, target) != 0) {
        state_reset(st);
        int rc = kf_search_space_init(&st->sp, pb->graph, err);
        if (rc) return rc;
        /* convolutions go to the conv step (cuDNN) on cuda where the library loads; else they
         * stay generated kernels */
        int lib_conv = strcmp(target, "cuda") == 0 && kf_cuda_cudnn_available(NULL);
        kf_search_space_set_target(&st->sp, target, lib_conv);
        st->sp_ok = 1;
        st->g = pb->graph;
        st->t0 = now_s();
        kf_search_signature(pb->graph, target, st->sig);
    }
    read_history(st, h);
    int b = best_index(st);
    if (b >= 0) {
        kf_err cerr;
        kf_search_cache_put(st->cache_path, st->sig, st->c[b].key, st->c[b].ms, &cerr);
    }
    if (now_s() - st->t0 > st->o.budget_s) return 0;
    int left = st->o.max_candidates - proposed(st);
    int limit = st->rounds == 0 ? st->o.first_batch : st->o.per_round;
    if (limit > left) limit = left;
    if (limit > cap) limit = cap;
    if (limit <= 0) return 0;
    want w = {0};
    plan_round(st, &w, limit);
    st->rounds++;
    int rc = 0;
    kf_err first;
    kf_err_clear(&first);
    for (int i = 0; i < w.n && *n < limit && !rc; i++) {
        ks_cand *c = add_cand(st, w.v[i]);
        if (!c) {
            rc = kf_fail(err, KF_E_NOMEM, "search agent: out of memory");
            break;
        }
        kf_program *p = calloc(1, sizeof *p);
        if (!p) {
            rc = kf_fail(err, KF_E_NOMEM, "search agent: out of memory");
            break;
        }
        kf_err berr;
        kf_err_clear(&berr);
        int brc = kf_search_build(&st->sp, c->key, p, &berr);
        if (brc) {
            free(p);
            c->done = 1;
            c->status = KF_ST_ERROR;
            if (!first.code) first = berr;
            if (brc == KF_E_NOMEM) rc = kf_fail(err, brc, "%s", berr.msg);
            continue;
        }
        c->prog = p;
        cands[(*n)++] = p;
    }
    for (int i = 0; i < w.n; i++) free(w.v[i]);
    free(w.v);
    if (rc) {
        for (int i = 0; i < *n; i++) {
            kf_program_free(cands[i]);
            free(cands[i]);
        }
        *n = 0;
        return rc;
    }
    /* nothing could be built on the first round: report why */
    if (*n == 0 && proposed(st) == 0 && first.code) {
        *err = first;
        return first.code;
    }
    return 0;
}

static void search_destroy(kf_agent *a) {
    if (!a) return;
    ks_state *st = a->ctx;
    if (st) {
        state_reset(st);
        free(st->cache_path);
        free(st);
    }
    free(a);
}

int kf_agent_search_new(const kf_search_opts *o, kf_agent **out, kf_err *err) {
    if (!out) return kf_fail(err, KF_E_INVALID, "kf_agent_search_new: no output");
    *out = NULL;
    kf_agent *a = calloc(1, sizeof *a);
    ks_state *st = calloc(1, sizeof *st);
    if (!a || !st) {
        free(a);
        free(st);
        return kf_fail(err, KF_E_NOMEM, "search agent: out of memory");
    }
    kf_search_opts_default(&st->o);
    if (o) {
        if (o->budget_s > 0) st->o.budget_s = o->budget_s;
        if (o->beam > 0) st->o.beam = o->beam;
        if (o->first_batch > 0) st->o.first_batch = o->first_batch;
        if (o->per_round > 0) st->o.per_round = o->per_round;
        if (o->max_candidates > 0) st->o.max_candidates = o->max_candidates;
        if (o->drop_ratio > 1.0) st->o.drop_ratio = o->drop_ratio;
    }
    st->cache_path = kf_search_cache_path(o ? o->cache_path : NULL);
    st->o.cache_path = st->cache_path;
    a->name = "search";
    a->ctx = st;
    a->propose = search_propose;
    a->destroy = search_destroy;
    *out = a;
    return 0;
}
