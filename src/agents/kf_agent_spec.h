/* kf_agent_spec.h: making any agent from its spec string, for the CLI and the swarm:
 * "naive", "search", "llm:<provider>:<model>[?options]" (see kf_llm.h for providers and
 * options). */
#ifndef KF_AGENT_SPEC_H
#define KF_AGENT_SPEC_H

#include "agents/kf_agent.h"
#include "agents/kf_agent_llm.h"

typedef struct kf_agent_spec_opts {
    const kf_llm_agent_opts *llm;   /* for llm:... agents; NULL = kf_llm_agent_opts_default */
    const struct kf_search_opts *search; /* for "search"; NULL = its defaults */
} kf_agent_spec_opts;

/* Unknown specs are KF_E_INVALID naming the known forms; an agent that cannot start (no key,
 * no prompts) fails with its own message. o may be NULL. */
int kf_agent_from_spec(const char *spec, const kf_agent_spec_opts *o, kf_agent **out, kf_err *err);

#endif
