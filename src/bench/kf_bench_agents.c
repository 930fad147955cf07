/* kf_bench_agents.c: agent construction from spec strings. */
#include <string.h>
#include "bench/kf_bench_agents.h"

int kf_bench_make_agent(const char *spec, const kf_bench_opts *o, kf_agent **out, kf_err *err) {
    (void)o;
    if (!strcmp(spec, "naive")) return kf_agent_naive_new(out, err);
    return kf_fail(err, KF_E_INVALID, "unknown agent '%s' (known: naive)", spec);
}
