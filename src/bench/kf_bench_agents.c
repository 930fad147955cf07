/* kf_bench_agents.c: agent construction from spec strings, with the bench's options, and the
 * LLM agents' optional extra context (another target's winner, a profile hint). */
#include <stdio.h>
#include <string.h>
#include "agents/kf_agent_spec.h"
#include "agents/search.h"
#include "bench/kf_bench_agents.h"
#include "core/kf_str.h"
#include "store/kf_store.h"

/* The best verified kernel program for the same problem on another target, as text. */
static char *context_fn(void *user, const kf_problem *pb) {
    const kf_bench_llm_ctx *c = user;
    if (!c->store || !c->context_target) return NULL;
    kf_winner w;
    memset(&w, 0, sizeof w);
    kf_err err = {0};
    if (kf_store_winner(c->store, pb->path, c->context_target, &w, &err)) return NULL;
    kf_str t;
    kf_str_init(&t);
    kf_str_appendf(&t, "The best verified kernel program kforge has for this problem on target "
                   "'%s' (agent %s, %.4f ms) is below; port its ideas to this target.\n"
                   "plan.json:\n%s\nsources (JSON list of {file, text}):\n%s\n",
                   c->context_target, w.agent ? w.agent : "?", w.kforge_ms,
                   w.plan_json ? w.plan_json : "", w.sources_json ? w.sources_json : "");
    kf_winner_free(&w);
    return kf_str_take(&t);
}

/* Bytes the last candidate had to move at least (every input, param and output once) over
 * its time: the achieved bandwidth. */
static char *profile_fn(void *user, const kf_problem *pb, const kf_attempt *last) {
    (void)user; (void)pb;
    if (!last || !last->program || last->result.ms <= 0) return NULL;
    double bytes = 0;
    for (int i = 0; i < last->program->n_bufs; i++)
        if (last->program->bufs[i].role != KF_BUF_SCRATCH) bytes += (double)last->program->bufs[i].nbytes;
    return kf_llm_profile_hint(bytes / (last->result.ms * 1e6), 0, 0, 0);
}

int kf_bench_make_agent(const char *spec, const kf_bench_opts *o, const kf_bench_llm_ctx *lc,
                        kf_agent **out, kf_err *err) {
    kf_llm_agent_opts llm;
    kf_llm_agent_opts_default(&llm);
    llm.max_attempts = o->attempts;
    if (lc) {
        llm.user = (void *)lc;
        if (lc->store && lc->context_target) llm.context_fn = context_fn;
        if (lc->profile) llm.profile_fn = profile_fn;
    }
    kf_search_opts so_search;
    kf_search_opts_default(&so_search);
    if (o->budget_s > 0) so_search.budget_s = o->budget_s;
    kf_agent_spec_opts so = { &llm, &so_search };
    return kf_agent_from_spec(spec, &so, out, err);
}
