/* kf_session.h: what kf_harness_verify and kf_harness_time share (private to src/harness):
 * resolving the options, validating and building the program, the arena, the params file, the
 * worker, hidden seeds, and comparing outputs with the reference. */
#ifndef KF_SESSION_H
#define KF_SESSION_H

#include "harness/kf_arena.h"
#include "harness/kf_harness.h"
#include "harness/kf_worker.h"
#include "ir/kf_safetensors.h"

/* kf_harness.c */
/* base mixed with getrandom(), so nobody can know the trial seeds from the options. */
unsigned long long kf_harness_hidden_base(unsigned long long base);
unsigned long long kf_harness_trial_seed(unsigned long long hidden, int k); /* < 2^32 */

typedef struct kf_session {
    kf_harness_opts opt;        /* with defaults resolved */
    const kf_program *p;
    kf_build build;
    int built;
    kf_arena arena;
    kf_safetensors params;
    int params_open;
    kf_worker worker;
    int worker_up;
    char *workdir;
    int own_workdir;
    int case_counter;
    unsigned long long hidden;  /* hidden seed base */
} kf_session;

/* Validates (-> invalid), builds (-> compile_error), maps the arena and the params and starts
 * the worker. *ready = 1 when the worker waits for commands; else r->status says why (the
 * candidate's failure, return 0) or the harness failed (return nonzero, r->status = error). */
int kf_session_open(kf_session *s, const kf_graph *g, const char *params_file,
                    const kf_program *p, const kf_harness_opts *opt, kf_result *r, int *ready,
                    kf_err *err);
void kf_session_close(kf_session *s);
/* A fresh path in the private workdir for a case file. */
char *kf_session_case_path(kf_session *s);

/* Sets r->status and r->message (formatted, replacing any earlier message). */
void kf_result_set(kf_result *r, kf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies a worker outcome (status, signal, message) into r. */
void kf_result_from_outcome(kf_result *r, const kf_outcome *oc);

/* kf_compare.c: the first element of got that fails against ref, and how many fail. */
typedef struct kf_mismatch {
    long long index;     /* flat index of the first failing element */
    long long count;     /* failing elements */
    double got, expected, tol;
    /* the worst failing element: largest |got - ref| / tol (NaN/inf placement and integer
     * failures count as infinitely bad; the first of those wins) */
    long long worst_index;
    double worst_got, worst_expected, worst_tol, worst_ratio;
} kf_mismatch;

/* Default tolerance of a dtype (1e-4 f32/f64, 1e-2 f16/bf16, 0 for integers and bool). */
double kf_default_tol(kf_dtype dt);
double kf_elem_get(const void *data, kf_dtype dt, long long i);
/* 0 if every element satisfies |got - ref| <= atol + rtol * |ref| with NaN and +-inf exactly
 * where ref has them (integers and bool exactly); else 1 with *m filled. */
int kf_compare(const void *got, const void *ref, kf_dtype dt, long long numel, double atol,
               double rtol, kf_mismatch *m);
/* "[0, 17]" for a flat index of a tensor of this shape. */
const char *kf_format_multi_index(const kf_tdesc *d, long long flat, char *buf, size_t n);

#endif
