/* kf_target.h: a target is a runtime behind a table of function pointers (like ggml's
 * backend interface). The harness builds a program in the parent process (compile, cached),
 * then loads and runs it inside an isolated worker process.
 *
 * Memory: the harness owns a host arena shared with the worker (MAP_SHARED). Every program
 * buffer has a slot [guard | data | guard] in it; the parent fills inputs and params, poisons
 * outputs and scratch, writes the guards, and after a run checks guards, inputs and outputs
 * there. A host target (cpu) runs directly on the slots. A device target (cuda, opencl)
 * mirrors each slot in device memory, guards included: upload copies slot -> device,
 * download copies device -> slot (guards included, so overruns on the device show). */
#ifndef KF_TARGET_H
#define KF_TARGET_H

#include <stddef.h>
#include "core/kf_err.h"
#include "ir/kf_program.h"
#include "targets/kf_devdata.h"

#define KF_GUARD_BYTES 4096   /* before and after every buffer slot */
#define KF_GUARD_BYTE 0xA5
#define KF_POISON_BYTE 0xFF   /* f32 0xFFFFFFFF is a NaN; i64 -1 */

typedef struct kf_slot {
    unsigned char *base;  /* start of the leading guard */
    unsigned char *data;  /* base + KF_GUARD_BYTES */
    size_t nbytes;        /* data bytes (the buffer's size) */
} kf_slot;

typedef struct kf_build_opts {
    const char *cache_dir;   /* compiled artifacts, keyed by a hash of sources, options, device */
    int threads;             /* cpu: OpenMP threads */
    int allow_fast_math;     /* off by default: float32 stays IEEE float32 */
    int allow_tf32;          /* off by default */
    double timeout_s;        /* compiler wall-clock limit */
} kf_build_opts;

typedef struct kf_build {
    char *artifact;   /* path to the compiled object (cpu: .so) */
    char *log;        /* compiler output (warnings or errors), may be NULL */
    int cached;       /* 1 if taken from the cache */
} kf_build;

typedef struct kf_target_ops {
    const char *name;
    /* 0 if the target can run here; else KF_E_UNAVAILABLE with why (no compiler, no GPU). */
    int (*available)(kf_err *err);
    /* Parent side. KF_E_COMPILE with the compiler's message in err and b->log on failure. */
    int (*build)(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err);
    /* Worker side, in order: open (load the artifact), bind (slots of every buffer, in program
     * order), then any number of upload/run/download/time calls, then close. */
    int (*open)(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **rt, kf_err *err);
    int (*bind)(void *rt, const kf_slot *slots, int n, kf_err *err);
    int (*upload)(void *rt, int buf, kf_err *err);    /* slot -> device (no-op on host) */
    int (*download)(void *rt, int buf, kf_err *err);  /* device -> slot (no-op on host) */
    int (*run)(void *rt, kf_err *err);                /* the whole plan once, finished on return */
    /* n timed runs of the whole plan; before each, flush() is called (cache flush of the
     * harness). ms[i] is device time (events) on GPUs, wall time on the CPU. */
    int (*time)(void *rt, int n, void (*flush)(void *ctx), void *flush_ctx, double *ms, kf_err *err);
    void (*close)(void *rt);
    /* 1: the worker's address space must not be capped (RLIMIT_AS): a GPU driver reserves
     * far more virtual memory than the process uses (cuInit fails under a few-GiB cap), so
     * the harness limits such a worker by resident memory only. */
    int unlimited_address_space;
    /* Optional (GPU targets): the device's last-level cache in bytes, 0 when unknown. The
     * timing protocol flushes at least twice this before every run, on both sides (the
     * target's own device flush and the oracle's), whatever the host's cache is. */
    long long (*cache_bytes)(void);
    /* The device data path (kf_devdata.h), NULL for a target without one (cpu). */
    const kf_dev_ops *dev;
} kf_target_ops;

const kf_target_ops *kf_target_find(const char *name); /* NULL if kforge has no such target */
/* The flush size for timing on t: flush_bytes, raised to twice t's device cache where t has one. */
long long kf_target_flush_bytes(const kf_target_ops *t, long long flush_bytes);
const kf_target_ops *kf_target_cpu(void);
const kf_target_ops *kf_target_cuda(void); /* present in every build; unavailable without CUDA */
void kf_build_free(kf_build *b);
/* kf_build_util.c, for the targets' build steps: the artifact cache folder (o->cache_dir, else
 * $XDG_CACHE_HOME/kforge/TARGET, ~/.cache/kforge/TARGET or /tmp/kforge-cache-UID/TARGET;
 * malloc'd, NULL when out of memory), and the first lines of a compiler log from the first one
 * that mentions an error, joined with " | " (for one-line error messages). */
char *kf_build_cache_dir(const kf_build_opts *o, const char *target);
void kf_build_log_head(const char *log, char *buf, size_t n);
/* The plain reference convolution of a conv step (cpu_conv.c): x, w, bias (NULL: none) and y
 * point at the step's first element of each tensor (offsets already applied). The cpu
 * target runs conv steps with it; tests compare other targets against it. */
void kf_conv_reference(const kf_conv_step *c, const float *x, const float *w, const float *bias, float *y);
/* 1 if the cuda target's conv steps can load cuDNN here (dlopen only, CUDA is not touched);
 * else 0 with why in err (may be NULL). */
int kf_cuda_cudnn_available(kf_err *err);

#endif
