/* kf_bench_agents.h: makes an agent from its spec string for `kforge bench`. */
#ifndef KF_BENCH_AGENTS_H
#define KF_BENCH_AGENTS_H

#include "agents/kf_agent.h"
#include "bench/kf_bench.h"

/* What the LLM agents' optional extra context reads; owned by the bench run, outlives agents. */
typedef struct kf_bench_llm_ctx {
    void *store;                 /* kf_store*: another target's winner (NULL: none) */
    const char *context_target;  /* that target, or NULL for no such context */
    int profile;                 /* a hint on the last candidate's achieved bandwidth */
} kf_bench_llm_ctx;

/* "naive" | "search" | "llm:<provider>:<model>". Unknown names are KF_E_INVALID listing the
 * known ones; an agent that cannot start (no key) fails with its own message. lc may be NULL. */
int kf_bench_make_agent(const char *spec, const kf_bench_opts *o, const kf_bench_llm_ctx *lc,
                        kf_agent **out, kf_err *err);

#endif
