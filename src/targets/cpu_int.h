/* cpu_int.h: pieces of the cpu target shared by its files (cpu_cc.c: the compiler and child
 * processes, cpu_build.c: sources, trampolines and the cache, cpu_runtime.c / cpu_run.c: the
 * worker side). Internal to src/targets. */
#ifndef KF_CPU_INT_H
#define KF_CPU_INT_H

#include <stdint.h>
#include "core/kf_err.h"
#include "core/kf_str.h"
#include "ir/kf_program.h"
#include "targets/kf_target.h"

#define KF_CPU_DEFAULT_TIMEOUT_S 120.0
#define KF_CPU_LOG_MAX (1u << 20) /* bytes of compiler output kept */

/* The compiler command: $KFORGE_CC split at blanks (so "ccache gcc" works), else "cc".
 * argv is NULL-terminated with room for extra arguments; free with kf_cpu_cc_free. */
typedef struct kf_cpu_cc {
    char *words;   /* the command's copy, cut into argv */
    char **argv;   /* argv[0..n-1], then NULL */
    int n, cap;
} kf_cpu_cc;

int kf_cpu_cc_init(kf_cpu_cc *cc, kf_err *err);
int kf_cpu_cc_push(kf_cpu_cc *cc, const char *arg);  /* appends; 0 or KF_E_NOMEM */
void kf_cpu_cc_free(kf_cpu_cc *cc);

/* Runs argv as a child in its own process group with stdout and stderr captured (at most
 * KF_CPU_LOG_MAX bytes, *output NUL-terminated, caller frees), killing the group after
 * timeout_s. Returns 0 with *exit_code (the exit status, or 128 + signal), KF_E_UNAVAILABLE
 * if argv[0] cannot be executed, KF_E_TIMEOUT, or KF_E_IO. */
int kf_cpu_spawn(char *const argv[], double timeout_s, char **output, int *exit_code, kf_err *err);

/* First line of `cc --version` (malloc'd); KF_E_UNAVAILABLE when the compiler is missing. */
int kf_cpu_cc_identity(char **ident, kf_err *err);

/* The worker side (cpu_runtime.c, cpu_run.c). */
typedef union kf_cpu_val { int32_t i32; int64_t i64; float f32; } kf_cpu_val;

typedef struct kf_cpu_launch {
    void (*fn)(void **);  /* the kernel's trampoline */
    void **argv;          /* one pointer per argument: slot data, or &vals[i] */
    kf_cpu_val *vals;
} kf_cpu_launch;

typedef struct kf_cpu_rt {
    const kf_program *p;  /* borrowed: must outlive the runtime */
    void *so;
    kf_cpu_launch *launch;  /* per step (used by launch steps) */
    kf_slot *slots;         /* bound slots, p->n_bufs of them; NULL until bind */
} kf_cpu_rt;

int kf_cpu_available(kf_err *err);
int kf_cpu_build(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err);
int kf_cpu_open(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **rt, kf_err *err);
int kf_cpu_bind(void *rt, const kf_slot *slots, int n, kf_err *err);
int kf_cpu_run(void *rt, kf_err *err);
int kf_cpu_time(void *rt, int n, void (*flush)(void *ctx), void *flush_ctx, double *ms, kf_err *err);
void kf_cpu_close(void *rt);
/* Checks that a program's steps fit its kernels and buffers (indices, argument kinds, gemm
 * and copy extents, f32 gemm operands), so running it cannot touch memory outside its slots. */
int kf_cpu_check_steps(const kf_program *p, kf_err *err);
int kf_cpu_ident_ok(const char *s); /* a C identifier */

#endif
