/* kf_report.h: reports over a run's problem rows (DESIGN.md part 8): the JSON report, the
 * terminal table with per-level summaries and a closing ratios table, the progress line shown
 * while running, and `kforge show` (the winning program of a problem). */
#ifndef KF_REPORT_H
#define KF_REPORT_H

#include <stdio.h>

#include "core/kf_err.h"
#include "store/kf_store.h"

/* N for a path component "levelN" (the last one when several), else -1. */
int kf_level_from_path(const char *path);

/* A row's speedups: the stored figure when known, else the ratio of the times for a verified
 * row with both times; 0 when unknown. */
double kf_row_speedup_eager(const kf_problem_row *r);
double kf_row_speedup_compile(const kf_problem_row *r);
/* kforge against the baselines at PyTorch's default precision; 0 when not timed. */
double kf_row_speedup_eager_default(const kf_problem_row *r);
double kf_row_speedup_compile_default(const kf_problem_row *r);
/* A speedup over this is flagged for review (DESIGN.md, timing protocol). */
#define KF_REVIEW_SPEEDUP 10.0

#define KF_LEVEL_ALL 0
/* The summary of one level (or of all rows for KF_LEVEL_ALL). Geomeans are over verified,
 * non-degenerate rows with both times known; 0 (and n_* = 0) when there are none. */
typedef struct kf_level_summary {
    int level;
    int count;
    int by_status[KF_ST_COUNT];
    int degenerate;
    int review;                  /* verified rows with a speedup over KF_REVIEW_SPEEDUP */
    int n_eager;    double geomean_eager;
    int n_compile;  double geomean_compile;
    int n_eager_default;    double geomean_eager_default;   /* PyTorch at its default precision */
    int n_compile_default;  double geomean_compile_default;
} kf_level_summary;

void kf_report_summarize(const kf_problem_row *rows, int n, int level, kf_level_summary *out);
/* The distinct levels (>= 1) of the rows, ascending; returns how many (at most cap). */
int kf_report_levels(const kf_problem_row *rows, int n, int *levels, int cap);
/* Indexes of rows in report order (level, then the number a file name starts with, then
 * name); caller frees; NULL when n == 0 or out of memory. */
int *kf_report_order(const kf_problem_row *rows, int n);
/* The problem's display name: its file name without ".py" (points into path). Writes the
 * length to *len. */
const char *kf_report_name(const char *path, size_t *len);

/* The JSON report (see docs or tests/test_report.c for the exact shape):
 * {"problems": [...], "summary": {"by_level": {"1": {...}, "2", "3", ..., "all"}}, "meta": {...}}.
 * Unknown numbers are null. meta may be NULL. The text form is returned by _text (NULL when
 * out of memory); kf_report_json writes it to path ("-" = stdout) atomically. */
char *kf_report_json_text(const kf_problem_row *rows, int n, const kf_run_info *meta);
int kf_report_json(const kf_problem_row *rows, int n, const kf_run_info *meta, const char *path,
                   kf_err *err);

/* The terminal table: one line per problem, a summary per level and for all, then a short
 * ratios table (what benchmark scripts print last). meta may be NULL. */
void kf_report_table(FILE *f, const kf_problem_row *rows, int n, const kf_run_info *meta);

/* `kforge show`: the winning plan.json and each kernel source of problem (a path, a file name
 * or a stem), with headers; target NULL = any. Errors as kf_store_winner's. */
int kf_report_show(FILE *f, kf_store *s, const char *problem, const char *target, kf_err *err);

/* The swarm table of a run: per agent, problems tried, wins, geomean speedup over eager,
 * attempts by status, and problems correct within k attempts for k = 1..max. */
int kf_report_agents(FILE *f, kf_store *s, int64_t run_id, kf_err *err);

/* Progress while running. On a terminal one line is rewritten in place (carriage return,
 * ANSI clear to end of line, cut to the terminal width); otherwise a plain line is printed
 * only when the problem or the agent changes. */
typedef struct kf_progress {
    FILE *f;
    int total;
    int is_tty;
    int width;                   /* terminal columns (80 when unknown) */
    int shown;                   /* a progress line is on screen (terminal) */
    char line[512];              /* the last progress line (terminal) */
    char problem[256], agent[128];   /* last printed (plain) */
} kf_progress;

void kf_progress_begin(kf_progress *p, FILE *f, int total, int is_tty);
/* i: 1-based number of the current problem; total <= 0 keeps the one from begin. */
void kf_progress_update(kf_progress *p, int i, int total, const char *problem, const char *agent,
                        int attempt, double elapsed_s);
/* Prints a whole line (no newline needed) above the progress line, which is then redrawn. */
void kf_progress_print(kf_progress *p, const char *text);
void kf_progress_end(kf_progress *p);

#endif
