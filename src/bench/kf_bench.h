/* kf_bench.h: the main job. For each problem under the given paths: load it in the oracle,
 * capture its graph, let each agent propose candidates in the compile -> verify -> time ->
 * feedback loop (at most `attempts` rounds per agent), keep the fastest verified candidate,
 * time it against PyTorch eager (and torch.compile) in the same run, and record everything in
 * the store. Problems already finished in the resumed run are skipped. */
#ifndef KF_BENCH_H
#define KF_BENCH_H

#include <signal.h>
#include <stdio.h>
#include "core/kf_err.h"
#include "harness/kf_harness.h"

typedef struct kf_bench_opts {
    const char *target;          /* "cpu" */
    const char *agents;          /* comma list of agent specs: "naive", "search", "llm:openai:M" */
    int attempts;                /* rounds per agent per problem (default 5) */
    int threads;                 /* both sides; 0 = every online CPU */
    const char *db_path;         /* SQLite store */
    int resume;                  /* continue the last run with the same target and agents */
    const char *json_out;        /* JSON report path or NULL */
    int with_compile;            /* also time torch.compile where available */
    int time_defaults;           /* also time the baselines at PyTorch's default precision:
                                  * 1 on, 0 off, -1 (default) on for the cuda target only */
    kf_harness_opts harness;     /* trials, runs, tolerances, limits */
    const char *command_line;    /* for the record */
    volatile sig_atomic_t *stop; /* set by the CLI on Ctrl-C; checked between steps */
    FILE *out;                   /* progress and the final table (stdout) */
    int tty;                     /* out is a terminal: one-line progress */
    int verbose;
    /* LLM agents' extra context, each off unless asked (so its effect can be measured):
     * the best verified kernel for the same problem on another target, from the store */
    const char *llm_context_target;
    int llm_profile;
    double budget_s;             /* search agent: wall-clock budget per problem (0 = default) */             /* a hint on the last candidate: achieved bandwidth */
} kf_bench_opts;

void kf_bench_opts_default(kf_bench_opts *o);
/* Collects problem files (*.py, recursively, sorted; skips __init__.py and names starting
 * with '_' or '.'). Returns the count, or a negative kf_code. *files is freed by the caller
 * (each string, then the array). */
int kf_bench_collect(const char *const *paths, int n_paths, char ***files, kf_err *err);
/* Runs the whole job. Returns 0 when every problem was processed (whatever their statuses),
 * KF_E_TIMEOUT-like codes only for a setup failure (no store, no oracle at all). */
int kf_bench_run(const char *const *paths, int n_paths, const kf_bench_opts *o, kf_err *err);

#endif
