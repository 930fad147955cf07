/* search.h: the built-in search agent. It fuses the graph into kernels (fuse.h), enumerates
 * schedules for them (kir_sched.h: parallel split, tiling, vector width, loop order,
 * unrolling, a vendor gemm step with a fused epilogue), lets the harness verify and time
 * them, and expands the best ones (beam) over the agent's rounds. The best schedule per
 * problem signature (ops with shapes, target, CPU model) is kept in a persistent cache so a
 * later run starts from it. */
#ifndef KF_SEARCH_H
#define KF_SEARCH_H

#include "agents/kf_agent.h"

typedef struct kf_search_opts {
    double budget_s;          /* wall-clock budget per problem (default 20 s) */
    const char *cache_path;   /* best-schedule cache file; NULL: $KFORGE_CACHE, else
                               * ~/.cache/kforge/schedules.tsv; "" disables the cache */
    int beam;                 /* best candidates expanded per round (default 2) */
    int first_batch;          /* candidates proposed in round 1 (default 4) */
    int per_round;            /* candidates proposed in later rounds (default 3) */
    int max_candidates;       /* total per problem (default 8) */
    double drop_ratio;        /* drop candidates this much slower than the best (default 3) */
} kf_search_opts;

/* Defaults as documented above. */
void kf_search_opts_default(kf_search_opts *o);

/* The search agent ("search"). o may be NULL (defaults); strings in o are copied. */
int kf_agent_search_new(const kf_search_opts *o, kf_agent **out, kf_err *err);

#endif
