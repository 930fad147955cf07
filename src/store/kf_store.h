/* kf_store.h: the run store (DESIGN.md part 7), one SQLite file holding runs, problems,
 * attempts and winners. The file may be shared by several runs and several processes (WAL
 * mode, busy timeout, foreign keys on). Every write is one transaction, so an interrupted run
 * never leaves a half-written problem: a problem counts as done only once
 * kf_store_finish_problem has committed. Nothing here takes or stores API keys.
 *
 * Return values: 0 (or a documented count/flag >= 0) on success, a negative kf_code on
 * failure with err filled. Strings in rows returned by the store are owned by the row and
 * released by the matching *_free function. */
#ifndef KF_STORE_H
#define KF_STORE_H

#include <stdint.h>

#include "core/kf_err.h"
#include "harness/kf_harness.h"
#include "ir/kf_program.h"

#define KF_STORE_SCHEMA_VERSION 2  /* 2: problems.eager_default_ms, compile_default_ms */

typedef struct kf_store kf_store;

/* What a run was started with; also the "meta" of reports. Strings may be NULL. */
typedef struct kf_run_info {
    const char *target;          /* "cpu", "cuda", ... */
    const char *agents;          /* comma list as given: "search,llm:openai:gpt-5" */
    int attempts;                /* attempt limit per agent and problem */
    const char *command;         /* the command line */
    const char *torch_version;
    const char *blas;
    int threads;
    const char *device;
    const char *kforge_version;
    const char *precision;       /* "strict" when NULL */
    double atol, rtol;           /* 0 = the defaults of DESIGN.md */
    int64_t started;             /* unix seconds; 0 = now (begin_run) */
    int64_t finished;            /* unix seconds; 0 = not ended (read back only) */
} kf_run_info;

/* The outcome of one problem in one run. On input (finish_problem) the strings are borrowed;
 * rows returned by the store own them (kf_problem_row_free / kf_problem_rows_free). */
typedef struct kf_problem_row {
    const char *path;            /* the problem file, as given to the run */
    int level;                   /* N for a "levelN" path component, else -1 */
    kf_status status;            /* best status reached (KF_ST_VERIFIED when a winner exists) */
    const char *message;         /* the best attempt's message, may be NULL */
    double eager_ms, compile_ms, kforge_ms;   /* <= 0 = unknown */
    double speedup_eager, speedup_compile;    /* <= 0 = unknown */
    double eager_default_ms, compile_default_ms; /* baselines at PyTorch's default precision
                                                  * (TF32 where torch allows it); <= 0 = not timed */
    const char *agent;           /* the winning agent, NULL when none verified */
    int attempts;                /* attempts made on the problem, all agents together */
    int degenerate;              /* reference does not depend on inputs (kept out of geomeans) */
    int64_t winner_attempt;      /* attempt id of the winner, 0 when none */
} kf_problem_row;

void kf_problem_row_free(kf_problem_row *r);               /* frees the strings it owns */
void kf_problem_rows_free(kf_problem_row *rows, int n);    /* each row, then the array */
void kf_run_info_free(kf_run_info *info);                  /* strings of kf_store_get_run */

/* Opens or creates the store at path (":memory:" works for tests). A new file gets the schema;
 * an existing kforge store with another schema version, or a SQLite file that is not a kforge
 * store, is a KF_E_FORMAT error naming both. */
int kf_store_open(const char *path, kf_store **out, kf_err *err);
void kf_store_close(kf_store *s);

/* Records a new run; *run_id is its id (> 0). */
int kf_store_begin_run(kf_store *s, const kf_run_info *info, int64_t *run_id, kf_err *err);
/* Stamps the run's end time (now). */
int kf_store_end_run(kf_store *s, int64_t run_id, kf_err *err);
/* The most recent run with this target and agents (either may be NULL = any), for --resume.
 * Returns 1 and sets *run_id when found, 0 when none, negative on error. */
int kf_store_last_run(kf_store *s, const char *target, const char *agents, int64_t *run_id,
                      kf_err *err);
/* Reads a run back; strings in *out are owned (kf_run_info_free). */
int kf_store_get_run(kf_store *s, int64_t run_id, kf_run_info *out, kf_err *err);

/* Starts (or restarts) a problem in a run: creates its row if needed and, when an earlier
 * try was interrupted before finishing, discards that try's attempts. Does nothing to a
 * problem that is already done. Optional: add_attempt creates the row too. */
int kf_store_begin_problem(kf_store *s, int64_t run_id, const char *path, kf_err *err);
/* 1 if the problem is finished in that run (row_out filled when not NULL), 0 otherwise,
 * negative on error. */
int kf_store_problem_done(kf_store *s, int64_t run_id, const char *path,
                          kf_problem_row *row_out, kf_err *err);
/* Records one attempt (number is 1-based per agent). prog may be NULL (nothing was
 * produced); otherwise its plan (kf_program_to_json) and sources are kept. An attempt with
 * the same run, path, agent and number replaces the earlier one. *attempt_id may be NULL. */
int kf_store_add_attempt(kf_store *s, int64_t run_id, const char *path, const char *agent,
                         int number, const kf_program *prog, const kf_result *res,
                         int64_t *attempt_id, kf_err *err);
/* Marks the problem done with its outcome (row->path names it; row->winner_attempt, when
 * nonzero, must be an attempt of this problem). Replaces an earlier outcome. */
int kf_store_finish_problem(kf_store *s, int64_t run_id, const kf_problem_row *row,
                            kf_err *err);
/* The finished problems of a run, in the order they were started. *rows is NULL when *n = 0. */
int kf_store_list_problems(kf_store *s, int64_t run_id, kf_problem_row **rows, int *n,
                           kf_err *err);

/* The winning kernel program of a problem, for `kforge show` and `kforge export`. */
typedef struct kf_winner {
    char *path;                  /* the problem path as stored */
    char *target;
    char *agent;
    char *plan_json;             /* plan.json text */
    char *sources_json;          /* [{"file": "kernels.c", "text": "..."}, ...] */
    int64_t run_id, attempt_id;
    int number;                  /* the winning attempt's number for its agent */
    double kforge_ms, speedup_eager, speedup_compile;   /* <= 0 = unknown */
} kf_winner;

/* Finds the latest finished run holding a verified winner for problem (matched by full path,
 * else by file name, else by file name without ".py") on target (NULL = any). Not found, or
 * names matching two different problem paths, is a KF_E_INVALID error saying so. */
int kf_store_winner(kf_store *s, const char *problem, const char *target, kf_winner *out,
                    kf_err *err);
void kf_winner_free(kf_winner *w);
/* The winner as a kernel program (plan with its stored sources inline), for `kforge export`
 * and re-verification. p is filled (kf_program_free) on success. */
int kf_winner_program(const kf_winner *w, kf_program *p, kf_err *err);

/* Per-agent statistics over the finished problems of a run (correctness by attempt). */
typedef struct kf_agent_stats {
    char *agent;
    int problems;                /* finished problems the agent made attempts on */
    int wins;                    /* problems it won */
    int attempts;                /* attempts made in total */
    int by_status[KF_ST_COUNT];  /* attempts per status */
    int max_number;              /* highest attempt number seen */
    int *correct_within;         /* [k-1]: problems with a verified attempt numbered <= k,
                                  * for k = 1 .. max_number */
} kf_agent_stats;

/* Sorted by agent name. *stats is NULL when *n = 0. */
int kf_store_agent_stats(kf_store *s, int64_t run_id, kf_agent_stats **stats, int *n,
                         kf_err *err);
void kf_agent_stats_free(kf_agent_stats *stats, int n);

/* An agent's geomean speedup over eager across the finished, non-degenerate problems of a run
 * where it verified a candidate: its fastest verified attempt's own time (the ranking timing)
 * against the problem's eager time from the same run. *n = problems counted (0: geomean 0). */
int kf_store_agent_speedup(kf_store *s, int64_t run_id, const char *agent, double *geomean,
                           int *n, kf_err *err);

/* kf_status from its name (kf_status_name); -1 when unknown. */
int kf_status_from_name(const char *name);

#endif
