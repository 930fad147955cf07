/* kf_worker.h: the isolated worker process of the harness (private to src/harness). The
 * parent forks a child that loads a built program with the target's ops, binds it to the
 * arena's slots and serves RUN / TIME / QUIT over a socket pair. The parent waits with a
 * wall-clock limit and watches the child's memory; a crash, a hang or a runaway allocation
 * becomes an outcome (status + message), never a failure of the harness itself. */
#ifndef KF_WORKER_H
#define KF_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "harness/kf_arena.h"
#include "harness/kf_harness.h"

typedef struct kf_outcome {
    kf_status status;   /* KF_ST_VERIFIED means "the request succeeded" */
    int signal;         /* for KF_ST_CRASHED / KF_ST_OOM by signal */
    char *message;      /* malloc'd, NULL when ok */
} kf_outcome;

void kf_outcome_clear(kf_outcome *oc);
/* Sets status and a formatted message (replacing any earlier one). */
void kf_outcome_set(kf_outcome *oc, kf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct kf_worker_limits {
    double timeout_s;       /* per request (TIME n gets (n + 1) times this) */
    long long mem_limit;    /* bytes the candidate may use beyond the worker's start */
    long long flush_bytes;  /* size of the worker's cache-flush buffer */
    int threads;            /* for the address-space slack of thread stacks and arenas */
} kf_worker_limits;

/* Written by the child when a fatal signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) arrives:
 * its memory at that moment, which the parent cannot read any more once the child is dead. It
 * sits at the start of a shared region whose rest is the child's alternate signal stack. */
typedef struct kf_death_note {
    volatile long long vm;    /* VmSize at the signal, bytes */
    volatile long long rss;   /* VmRSS at the signal, bytes */
    volatile int sig;
} kf_death_note;

#define KF_NOTE_BYTES 4096
#define KF_ALTSTACK_BYTES (64 * 1024)

typedef struct kf_worker {
    pid_t pid;              /* 0 when no child */
    int sock;               /* parent end of the command/reply socket */
    int out_fd;             /* read end of the child's stdout+stderr */
    char tail[4096];        /* last bytes the child printed */
    size_t tail_len;
    long long rss_cap;      /* VmRSS above this -> oom */
    long long as_limit;     /* RLIMIT_AS of the child */
    long long peak_rss, peak_vm;
    long long base_rss, base_vm; /* the parent's at the fork: what the child starts with */
    kf_death_note *note;    /* shared page the child's fatal-signal handler writes */
    kf_worker_limits lim;
} kf_worker;

/* Forks the worker and waits for it to load and bind the program. Returns nonzero only for a
 * harness failure (fork, socket); a candidate failure while loading is in oc->status. */
int kf_worker_start(kf_worker *w, const kf_target_ops *t, const kf_program *p, const kf_build *b,
                    const kf_build_opts *bo, const kf_arena *a, const kf_worker_limits *lim,
                    kf_outcome *oc, kf_err *err);
/* One run of the whole plan (upload every buffer, run, download every buffer). */
int kf_worker_run(kf_worker *w, kf_outcome *oc, kf_err *err);
/* n timed runs, each after a cache flush; ms[0..n-1]. */
int kf_worker_time(kf_worker *w, int n, double *ms, kf_outcome *oc, kf_err *err);

/* The device data path (targets with kf_target_ops.dev, kf_devdata.h): the worker maps mems,
 * optionally stages every buffer on the device (src[buf] = mem index or -1) and runs the plan,
 * then runs the checks and answers with one kf_dev_sum per job. Nothing is uploaded from or
 * downloaded to the host arena. *unavailable = 1 (why says why) when mapping or the checks'
 * kernels do not work here: the worker stays up and the harness goes back to the host path.
 * A failing run is an outcome, as for kf_worker_run. */
#define KF_DEV_STAGE 1
#define KF_DEV_RUN 2
typedef struct kf_dev_request {
    int flags;
    const kf_dev_mem *mems; int n_mems;
    const int *src; int n_src;           /* n_bufs entries when staging */
    const kf_dev_job *jobs; int n_jobs;
} kf_dev_request;
int kf_worker_dev(kf_worker *w, const kf_dev_request *q, kf_dev_sum *sums, int *unavailable,
                  char *why, size_t why_n, kf_outcome *oc, kf_err *err);
/* kf_worker_time without uploading the arena first (the buffers were staged on the device). */
int kf_worker_time_dev(kf_worker *w, int n, double *ms, kf_outcome *oc, kf_err *err);
/* Asks the worker to quit, then kills its process group and reaps it. Safe to call twice. */
void kf_worker_stop(kf_worker *w);

/* "SIGSEGV", "SIGBUS", ... (or "signal N") */
const char *kf_signal_name(int sig, char *buf, size_t n);

/* The wire between parent and child: a fixed header, then len payload bytes. Commands carry
 * n (TIME: number of runs); replies carry a kf_code and, on error, the message text, or on
 * TIME success n doubles. The child's first reply (code only) says it loaded and bound. */
enum { KF_WCMD_RUN = 1, KF_WCMD_TIME = 2, KF_WCMD_QUIT = 3, KF_WCMD_DEV = 4, KF_WCMD_TIME_DEV = 5 };
typedef struct kf_wire { int32_t op_or_code; int32_t n_or_len; } kf_wire;
/* DEV carries len payload bytes: kf_dev_wire, n_mems kf_dev_mem, n_src int32_t, n_jobs
 * kf_dev_job; its success reply: kf_dev_wire_reply, then n_jobs kf_dev_sum. */
typedef struct kf_dev_wire { int32_t flags, n_mems, n_src, n_jobs; } kf_dev_wire;
typedef struct kf_dev_wire_reply { int32_t unavailable; char why[508]; } kf_dev_wire_reply;

/* Child side (kf_worker_child.c): never returns. */
_Noreturn void kf_worker_child(int sock, int out_fd, pid_t parent, kf_death_note *note,
                               const kf_target_ops *t,
                               const kf_program *p, const kf_build *b, const kf_build_opts *bo,
                               const kf_arena *a, long long as_limit, long long flush_bytes);

#endif
