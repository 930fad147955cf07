/* kf_agent.h: one interface for every agent (naive, search, llm:...): given a problem and the
 * history of its earlier attempts on it, propose candidate kernel programs. The harness
 * verifies and times them; the results come back in the history of the next call. */
#ifndef KF_AGENT_H
#define KF_AGENT_H

#include "core/kf_err.h"
#include "ir/kf_graph.h"
#include "ir/kf_program.h"
#include "harness/kf_harness.h"

typedef struct kf_problem {
    const char *path;          /* the problem .py */
    const char *source;        /* its text */
    const kf_graph *graph;
    const char *params_file;
    const char *target;        /* "cpu", ... */
} kf_problem;

typedef struct kf_attempt {
    int number;                /* 1-based */
    const kf_program *program;
    kf_result result;          /* status, message, timings */
} kf_attempt;

typedef struct kf_history {
    const kf_attempt *attempts; int n;
} kf_history;

typedef struct kf_agent kf_agent;
struct kf_agent {
    const char *name;          /* "naive", "search", "llm:openai:gpt-5" */
    void *ctx;
    /* Propose up to *n candidates (caller passes capacity in *n). Candidates are owned by the
     * caller afterwards (kf_program_free + free). *n = 0 means the agent has nothing more.
     * KF_E_UNSUPPORTED (message names the op) when the agent cannot handle the problem. */
    int (*propose)(kf_agent *a, const kf_problem *pb, const kf_history *h,
                   kf_program **cands, int *n, kf_err *err);
    void (*destroy)(kf_agent *a);
};

/* The naive agent: one straightforward, correct kernel per ATen op. */
int kf_agent_naive_new(kf_agent **out, kf_err *err);
/* The lowering it uses, exposed for tests and other agents. */
int kf_lower_naive(const kf_graph *g, const char *target, kf_program *out, kf_err *err);

#endif
