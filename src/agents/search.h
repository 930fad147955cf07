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
    double budget_s;          /* wall-clock budget per problem (default 10 s) */
    const char *cache_path;   /* best-schedule cache file; NULL: $KFORGE_CACHE/schedules.tsv
                               * (kforge's cache folder), else ~/.cache/kforge/schedules.tsv;
                               * "" disables the cache */
    int beam;                 /* best candidates expanded per round (default 2) */
    int first_batch;          /* candidates proposed in round 1 (default 2) */
    int per_round;            /* candidates proposed in later rounds (default 1) */
    int max_candidates;       /* total per problem (default 4) */
    double drop_ratio;        /* drop candidates this much slower than the best (default 3) */
} kf_search_opts;

/* Defaults as documented above. */
void kf_search_opts_default(kf_search_opts *o);

/* The search agent ("search"). o may be NULL (defaults); strings in o are copied. */
int kf_agent_search_new(const kf_search_opts *o, kf_agent **out, kf_err *err);

/* ---- shared by the search*.c files ---- */
#include "agents/fuse.h"

/* The schedule space of one graph: fusion plans (0: fused, 1: one group per op) and, per
 * plan, one kf_gsched per group. A point is named by a key string: "P<plan>" then one
 * ";<impl><parallel><vec>.<chunk>.<tile>.<unroll>.<block>" per group, impl one of A K L I D.
 * On a GPU target the same fields hold the GPU knobs (see kf_gsched in fuse.h): block =
 * threads per block, tile = rows of reductions per thread / warp / block, vec = 16-byte
 * accesses. */
typedef struct kf_search_space {
    const kf_graph *g;
    kf_fplan plans[2];
    int n_plans;
    char target[16];          /* "cpu" (kf_search_space_init's default) or "cuda" */
} kf_search_space;

int kf_search_space_init(kf_search_space *sp, const kf_graph *g, kf_err *err);
/* Sets the space's target; lib_conv: the target runs conv steps (cuda where cuDNN loads), so
 * convolutions default to the conv step (kf_fplan.lib_conv of every plan). */
void kf_search_space_set_target(kf_search_space *sp, const char *target, int lib_conv);
/* 1 when the space's target is a GPU ("cuda"): schedules carry GPU knobs (kf_gsched.gpu
 * says what the key's fields then mean) and the default and neighbours are GPU choices. */
int kf_search_gpu(const kf_search_space *sp);
void kf_search_space_free(kf_search_space *sp);
char *kf_search_key(const kf_search_space *sp, int plan, const kf_gsched *s);
/* 0 and *plan, *s (malloc'd, one per group) when key fits this space; KF_E_INVALID if not. */
int kf_search_key_parse(const kf_search_space *sp, const char *key, int *plan, kf_gsched **s);
/* The automatic schedule of a plan (malloc'd array). */
kf_gsched *kf_search_default(const kf_search_space *sp, int plan);
/* Keys of the variants one step away from key (other implementation, serial or parallel,
 * chunk size, vectorisation) for its heaviest groups, most promising first; *n of them
 * (malloc'd array of malloc'd strings). minor = 0 leaves out chunk and vectorisation steps. */
int kf_search_neighbours(const kf_search_space *sp, const char *key, int minor, char ***keys, int *n);
/* Lowers the point named by key. */
int kf_search_build(const kf_search_space *sp, const char *key, kf_program *out, kf_err *err);
/* Total work estimate of a plan (flops + bytes). */
double kf_search_work(const kf_search_space *sp, int plan);
/* Signature of a problem for the schedule cache: a hash of the graph (ops, attributes,
 * dtypes, shapes), the target, the CPU model and the search's version; 16 hex digits. */
void kf_search_signature(const kf_graph *g, const char *target, char out[17]);
/* The cache file to use: o->cache_path, else $KFORGE_CACHE/schedules.tsv, else
 * ~/.cache/kforge/schedules.tsv;
 * NULL when disabled (""). Malloc'd. */
char *kf_search_cache_path(const char *configured);
/* Best known schedule key for sig (malloc'd into *key) and its time; 1 found, 0 not. */
int kf_search_cache_get(const char *path, const char *sig, char **key, double *ms);
/* Records key as best for sig when it is faster than what the file has (or forced). */
int kf_search_cache_put(const char *path, const char *sig, const char *key, double ms, kf_err *err);

#endif
