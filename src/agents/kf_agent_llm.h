/* kf_agent_llm.h: the llm:<provider>:<model> agent. It writes kernel programs with a language
 * model, in one conversation per problem:
 *   turn 1: a system message (prompts/system.md) and the problem (prompts/<target>.md: the
 *           target's rules, the kernel-program format, a worked example, the problem's PyTorch
 *           source and its graph, optional extra context);
 *   turn k: the harness's result for attempt k-1, exactly (prompts/feedback/<status>.md), and
 *           after a verified attempt a request to make it faster.
 * Each answer is parsed into one candidate program (a ```json plan block plus one fenced block
 * per source file, headed by its file name).
 *
 * A malformed answer (no plan block, bad JSON, a missing source) still counts as an attempt:
 * propose returns an empty program (target and agent set; no sources, kernels, buffers or
 * steps), which the validator rejects (status invalid), and the agent keeps the parse error;
 * the next turn's feedback reports that parse error (prompts/feedback/malformed.md) instead of
 * the validator's message. kf_agent_llm_records shows which attempts were malformed. */
#ifndef KF_AGENT_LLM_H
#define KF_AGENT_LLM_H

#include "agents/kf_agent.h"
#include "llm/kf_llm.h"

typedef struct kf_llm_agent_opts {
    kf_llm_opts chat;               /* timeouts, retries, max_tokens, temperature */
    kf_llm_provider_opts provider;  /* key, base URL and price overrides */
    const char *prompts_dir;        /* NULL: kf_prompts_dir() */
    int max_attempts;               /* turns per problem (the CLI's --attempts); default 5 */
    int ask_faster;                 /* after a verified attempt, ask for a faster one (1) or
                                       stop (0); default 1 */
    int max_feedback_chars;         /* cap on a compiler log or message fed back; 12000 */
    /* Extra context, each off unless given. extra_context is fixed text for every problem
     * (e.g. the best verified kernel for another target); context_fn, when set, gives it per
     * problem instead (malloc'd or NULL). profile_fn gives a hint on the last candidate after
     * a verified attempt (malloc'd or NULL), e.g. from kf_llm_profile_hint. */
    const char *extra_context;
    char *(*context_fn)(void *user, const kf_problem *pb);
    char *(*profile_fn)(void *user, const kf_problem *pb, const kf_attempt *last);
    void *user;
} kf_llm_agent_opts;

void kf_llm_agent_opts_default(kf_llm_agent_opts *o);

/* spec: "llm:openai:MODEL", "llm:anthropic:MODEL", ... (see kf_llm.h). Fails early on a missing
 * key (message names the variable) or missing prompts. o may be NULL (defaults). */
int kf_agent_llm_new(const char *spec, const kf_llm_agent_opts *o, kf_agent **out, kf_err *err);
int kf_agent_is_llm(const kf_agent *a);

/* One record per model answer, every problem, in order. */
typedef struct kf_llm_attempt_rec {
    const char *problem;      /* the problem's path */
    int number;               /* 1-based attempt number within the problem */
    kf_llm_usage usage;       /* of this turn (retries included) */
    int malformed;            /* the answer could not be read as a program */
    const char *parse_error;  /* why, when malformed (the text fed back), else NULL */
} kf_llm_attempt_rec;

/* Valid until the agent's next propose or destroy. */
const kf_llm_attempt_rec *kf_agent_llm_records(const kf_agent *a, int *n);
void kf_agent_llm_usage(const kf_agent *a, kf_llm_usage *total);  /* summed over all turns */

/* The pieces, exposed for tests and other agents. */

/* Reads a model's answer into *p. KF_E_FORMAT when malformed, with a message meant for the model
 * ("no ```json block with the plan", "source 'k.c' has no fenced block", ...); other codes are
 * internal failures. target and agent override what the plan says. */
int kf_llm_answer_to_program(const char *answer, const char *target, const char *agent,
                             kf_program *p, kf_err *err);

/* The feedback text for attempt a (prompts/feedback/<status>.md, or malformed.md when
 * parse_error is given). attempts_left counts the turns after this message, this one's
 * answer included. profile_hint may be NULL. */
int kf_llm_feedback(const char *prompts_dir, const kf_attempt *a, const char *parse_error,
                    int max_attempts, const char *profile_hint, int max_chars, char **out,
                    kf_err *err);

/* The first user message for a problem (prompts/<target>.md). */
int kf_llm_problem_prompt(const char *prompts_dir, const kf_problem *pb, int max_attempts,
                          const char *extra_context, char **out, kf_err *err);

/* A plain-language summary of a graph: inputs, params, outputs and the ATen ops. */
char *kf_llm_graph_summary(const kf_graph *g);

/* A profile hint from the harness's numbers (peaks <= 0 when unknown), e.g. "Your last kernel
 * moved 12.3 GB/s (4% of the measured peak of 310 GB/s) and did 1.2 GFLOP/s ...". */
char *kf_llm_profile_hint(double gbps, double gflops, double peak_gbps, double peak_gflops);

#endif
