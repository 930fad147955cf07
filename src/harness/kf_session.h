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
    /* the device data path (kf_session_dev.c): inputs, params and references stay in the
     * oracle's GPU memory and the checks run in the worker on the device */
    int dev;
    kf_oracle *oracle;          /* borrowed, for releasing params_g */
    kf_ipc_group params_g;      /* the params, exported by the oracle */
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

/* kf_verify.c, shared with kf_verify_dev.c */
const char *kf_trial_dist(int t, int trials);
int kf_is_output_name(const char *name, int *k);
double kf_tol_for(double opt_tol, kf_dtype dt);
/* Output checks of one trial: 0 all match, 1 the outputs do not fit the references, 2 a
 * value out of tolerance (r says which). dev_m: per buffer, the device's comparison (the
 * case's tensors then carry no host data); NULL compares the arena with cs. */
int kf_check_outputs(const kf_session *s, const kf_safetensors *cs, int t, const char *dist,
                     kf_result *r, const kf_mismatch *dev_m);
/* The verdict against the float64 reference c64 (dev_m as above): *matched, or r's message
 * extended with the float64 worst element. */
void kf_f64_verdict(const kf_session *s, const kf_safetensors *c64, const kf_mismatch *dev_m,
                    kf_result *r, int *matched);

/* kf_session_dev.c: whether the session takes the device data path. On when the target has
 * one, the oracle runs on cuda, $KFORGE_DEVICE_DATA is not "0", the oracle can export the
 * params and the worker can map them and load its checks; otherwise the host path, with the
 * reason on stderr when $KFORGE_DEBUG is set. *failed when the worker died meanwhile (r says
 * why). */
int kf_session_dev_start(kf_session *s, kf_oracle *o, kf_result *r, int *failed, kf_err *err);
/* Back to the host path for the rest of the session (why: for the debug line). */
void kf_session_dev_off(kf_session *s, const char *why);
/* Drops a group the oracle exported (no-op for an empty one). */
void kf_session_dev_release(kf_session *s, kf_oracle *o, kf_ipc_group *g);
/* The group's tensors as a safetensors table without data (names, dtypes, shapes, sizes), for
 * the structural checks the host path makes. */
int kf_ipc_as_st(const kf_ipc_group *g, kf_safetensors *st, kf_err *err);
/* The mems of a device request: groups appended in order; *base = index of g's first. */
int kf_dev_mems_add(kf_dev_mem **mems, int *n, const kf_ipc_group *g, int *base, kf_err *err);
/* Stages the buffers for timing from the case of seed (inputs "default"). *failed when the
 * program does not fit or the worker failed (r says why); *fallback when the device path
 * went away (the session is then on the host path). */
int kf_session_dev_stage(kf_session *s, kf_oracle *o, unsigned long long seed, kf_result *r,
                         int *failed, int *fallback, kf_err *err);

/* The mems (the case cg, then the params) and src[buf] of a staged run, and cg as a table
 * without data (*cst, to close). *bad = 1 with err set when the program does not fit the
 * case (an invalid program, with the arena's message). */
int kf_dev_plan_sources(const kf_session *s, const kf_ipc_group *cg, kf_dev_mem **mems, int *n,
                        int *src, kf_safetensors *cst, int *bad, kf_err *err);

/* kf_verify_dev.c: one verification trial on the device data path (kf_verify.c's kf_trial
 * with the same messages). *first holds trial 0's case until trial 1 is done. *fallback: the
 * device path went away before the trial was judged (run it on the host path). */
int kf_trial_dev(kf_session *s, kf_oracle *o, int t, kf_ipc_group *first, int *allzero,
                 int *same, kf_result *r, int *failed, int *by_f64, int *got_case,
                 int *fallback, kf_err *err);

#endif
