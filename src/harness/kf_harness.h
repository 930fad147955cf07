/* kf_harness.h: verify and time one kernel program against the PyTorch oracle, with the
 * verification and timing protocols of DESIGN.md. The candidate runs in a worker process
 * (fork) with a wall-clock and a memory limit; every outcome is a precise kf_status. */
#ifndef KF_HARNESS_H
#define KF_HARNESS_H

#include "core/kf_err.h"
#include "ir/kf_graph.h"
#include "ir/kf_program.h"
#include "oracle/kf_oracle.h"
#include "targets/kf_target.h"

typedef enum {
    KF_ST_VERIFIED, KF_ST_MISMATCH, KF_ST_COMPILE_ERROR, KF_ST_CRASHED, KF_ST_TIMEOUT, KF_ST_OOM,
    KF_ST_UNSUPPORTED, KF_ST_INVALID /* plan rejected by the validator */,
    KF_ST_ERROR /* harness or oracle failure, not the candidate's fault */, KF_ST_COUNT
} kf_status;

const char *kf_status_name(kf_status s);  /* "verified", "mismatch", "compile_error", ... */

typedef struct kf_harness_opts {
    const kf_target_ops *target;
    kf_build_opts build;
    int trials;              /* >= 5; the last >= 2 redraw inputs from other distributions */
    int warmup;              /* warm-up runs before timing */
    int timed_runs;          /* >= 20 */
    int rounds;              /* timing alternates baseline/candidate in this many rounds */
    double atol, rtol;       /* default 1e-4 for f32, 1e-2 for f16/bf16 (0 = default) */
    double run_timeout_s;    /* worker wall-clock limit per request */
    long long mem_limit;     /* worker memory limit in bytes (0 = default 4 GiB + buffers) */
    long long flush_bytes;   /* cache flush size (0 = 2x the last-level cache) */
    unsigned long long seed; /* base of the hidden trial seeds (mixed with a random value) */
    const char *workdir;     /* private temp folder */
    int time_defaults;       /* also time the baselines at PyTorch's default precision (TF32
                              * where torch allows it by default: cuDNN convolutions on recent
                              * NVIDIA GPUs); the strict figures stay the headline */
} kf_harness_opts;

void kf_harness_opts_default(kf_harness_opts *o, const kf_target_ops *target);
/* The largest cache level of cpu0 in bytes (sysfs), 0 if unknown; the default flush size is
 * twice that, else 64 MiB. */
long long kf_harness_llc_bytes(void);
long long kf_harness_default_flush_bytes(void);

typedef struct kf_result {
    kf_status status;
    char *message;           /* one or more lines: compiler log, worst element, signal, op */
    /* mismatch detail */
    int trial; int output; long long index; double got, expected;
    int signal;              /* crashed */
    /* timing (ms); 0 when not timed */
    double ms, min_ms, max_ms;
    double eager_ms, compile_ms;   /* baselines timed in the same run; compile_ms < 0 = unavailable */
    double eager_default_ms, compile_default_ms; /* the same at PyTorch's default precision
                                                  * (opts.time_defaults), else 0 */
    int degenerate;          /* reference output does not depend on inputs, or all zeros */
    double build_s;          /* compile time */
    int device_data;         /* 1: the last verify/time went through the device data path
                                (tensors from the oracle's GPU memory, checks on the device) */
} kf_result;

void kf_result_free(kf_result *r);

/* Verify p on fresh trials (oracle `case`, one per trial). Fills r->status; never fails for a
 * bad candidate (that is a status); returns nonzero only for harness/oracle errors, with
 * r->status = KF_ST_ERROR. g and params_file come from the oracle's `graph`. */
int kf_harness_verify(kf_oracle *o, const kf_graph *g, const char *params_file,
                      const kf_program *p, const kf_harness_opts *opt, kf_result *r, kf_err *err);

/* Time a verified program (the caller passes the same r; its status is left as it was unless
 * the candidate fails while timed, which sets the status and message and returns 0): `rounds` rounds, each timing PyTorch eager (and torch.compile when
 * available and with_compile) then the candidate, timed_runs/rounds runs each, cache flushed
 * before every run. Fills ms/min/max and eager_ms/compile_ms (medians over all rounds). */
int kf_harness_time(kf_oracle *o, const kf_graph *g, const char *params_file,
                    const kf_program *p, const kf_harness_opts *opt, int with_baselines,
                    int with_compile, kf_result *r, kf_err *err);

#endif
