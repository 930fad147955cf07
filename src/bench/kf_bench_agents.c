/* kf_bench_agents.c: agent construction from spec strings, with the bench's options. */
#include <string.h>
#include "agents/kf_agent_spec.h"
#include "bench/kf_bench_agents.h"

int kf_bench_make_agent(const char *spec, const kf_bench_opts *o, kf_agent **out, kf_err *err) {
    kf_llm_agent_opts llm;
    kf_llm_agent_opts_default(&llm);
    llm.max_attempts = o->attempts;
    kf_agent_spec_opts so = { &llm };
    return kf_agent_from_spec(spec, &so, out, err);
}
