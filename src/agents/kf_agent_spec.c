/* kf_agent_spec.c: one entry point that turns an agent spec string into an agent. */
#include "agents/kf_agent_spec.h"
#include "agents/search.h"

#include <string.h>

int kf_agent_from_spec(const char *spec, const kf_agent_spec_opts *o, kf_agent **out, kf_err *err) {
    *out = NULL;
    if (!spec || !*spec) return kf_fail(err, KF_E_INVALID, "empty agent name");
    if (!strcmp(spec, "naive")) return kf_agent_naive_new(out, err);
    if (!strncmp(spec, "llm:", 4)) return kf_agent_llm_new(spec, o ? o->llm : NULL, out, err);
    if (!strcmp(spec, "search")) return kf_agent_search_new(o ? o->search : NULL, out, err);
    return kf_fail(err, KF_E_INVALID,
                   "unknown agent '%s' (known: naive, search, llm:openai:MODEL, "
                   "llm:anthropic:MODEL, llm:deepseek:MODEL, llm:ollama:MODEL)", spec);
}
