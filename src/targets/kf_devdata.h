/* kf_devdata.h: the device data path of a target (optional; cuda has it). Instead of host
 * slots uploaded before and downloaded after every run, the worker maps device memory that
 * the oracle exported (CUDA IPC handles: a trial's inputs and reference outputs, the params),
 * stages the buffers on the device (guards, poison, device-to-device copies of inputs and
 * params), runs, and checks on the device: guard bytes, inputs and params unchanged (bitwise
 * against the oracle's copies), outputs against the references with the harness's rule.
 * Only the small summaries of kf_dev_sum cross to the host.
 *
 * Order in the worker, per request: map (every kf_dev_mem), stage (optional), run (optional),
 * check (the jobs), unmap. */
#ifndef KF_DEVDATA_H
#define KF_DEVDATA_H

#include <stddef.h>
#include "core/kf_dtype.h"
#include "core/kf_err.h"

#define KF_DEV_HANDLE_BYTES 64

typedef struct kf_dev_mem {
    unsigned char handle[KF_DEV_HANDLE_BYTES]; /* CUipcMemHandle of the exporter's allocation */
    unsigned long long offset;                 /* byte offset of the tensor in it */
    unsigned long long nbytes;
} kf_dev_mem;

/* Where a job reads: the data (or a guard) of a buffer's device mirror, or a mapped mem. */
enum { KF_DEV_DATA = 0, KF_DEV_GUARD_BEFORE = 1, KF_DEV_GUARD_AFTER = 2 };
typedef struct kf_dev_ref {
    int buf;      /* >= 0: the buffer's mirror; -1: mem */
    int mem;      /* index into the request's mems */
    int region;   /* KF_DEV_DATA / GUARD_BEFORE / GUARD_AFTER (buffers only) */
} kf_dev_ref;

typedef enum {
    KF_DJ_BYTES_CONST,  /* bytes of a that differ from `byte`: index = first offset, count, got = its value */
    KF_DJ_BYTES_EQ,     /* bytes where a and b differ: index = first offset, count */
    KF_DJ_CLOSE,        /* kf_compare(a = got, b = ref, dtype, numel, atol, rtol): the kf_mismatch fields */
    KF_DJ_NONZERO,      /* elements of a whose value (as a double) is not 0.0: count */
} kf_dev_job_kind;

typedef struct kf_dev_job {
    int kind;
    kf_dev_ref a, b;
    kf_dtype dtype;
    long long numel;          /* CLOSE / NONZERO */
    unsigned long long bytes; /* BYTES_* */
    unsigned char byte;       /* BYTES_CONST */
    double atol, rtol;
} kf_dev_job;

/* A job's result, as kf_compare fills kf_mismatch (count 0 = no difference). */
typedef struct kf_dev_sum {
    long long count, index;
    double got, expected, tol;
    long long worst_index;
    double worst_got, worst_expected, worst_tol, worst_ratio;
} kf_dev_sum;

typedef struct kf_dev_ops {
    /* Maps the exporter's memory. KF_E_UNAVAILABLE when IPC does not work here (the harness
     * then goes back to the host path); the mapping lasts until unmap. */
    int (*map)(void *rt, const kf_dev_mem *mems, int n, kf_err *err);
    void (*unmap)(void *rt);
    /* Guards of every mirror, poison in outputs and scratch, and src[buf] >= 0: a copy of
     * mem src[buf] into the buffer (inputs and params). */
    int (*stage)(void *rt, const int *src, kf_err *err);
    int (*check)(void *rt, const kf_dev_job *jobs, int n, kf_dev_sum *out, kf_err *err);
} kf_dev_ops;

#endif
