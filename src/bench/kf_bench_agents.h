/* kf_bench_agents.h: makes an agent from its spec string for `kforge bench`. */
#ifndef KF_BENCH_AGENTS_H
#define KF_BENCH_AGENTS_H

#include "agents/kf_agent.h"
#include "bench/kf_bench.h"

/* "naive" | "search" | "llm:<provider>:<model>". Unknown names are KF_E_INVALID listing the
 * known ones; an agent that cannot start (no key) fails with its own message. */
int kf_bench_make_agent(const char *spec, const kf_bench_opts *o, kf_agent **out, kf_err *err);

#endif
