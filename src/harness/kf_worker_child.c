/* kf_worker_child.c: the worker process's side. Runs in the forked child: detaches into its
 * own process group, limits its address space, loads and binds the program with the target's
 * ops, then serves RUN / TIME / QUIT commands from the parent until told to quit. */
#include "harness/kf_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct kf_flush_ctx {
    unsigned char *buf;
    size_t n;
    unsigned char v;
} kf_flush_ctx;

static void kf_worker_flush(void *ctx) {
    kf_flush_ctx *c = ctx;
    if (!c->buf || !c->n) return;
    c->v++;
    memset(c->buf, c->v, c->n);
    volatile unsigned char sink = c->buf[c->n / 2];
    (void)sink;
}

static int kf_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int kf_read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void kf_reply(int sock, int code, const void *payload, size_t len) {
    kf_wire h = {code, (int32_t)len};
    if (kf_write_all(sock, &h, sizeof h) || (len && kf_write_all(sock, payload, len))) _exit(3);
}

static void kf_reply_err(int sock, const kf_err *e) {
    int code = e->code ? e->code : KF_E_INTERNAL;
    kf_reply(sock, code, e->msg, strlen(e->msg));
}

static void kf_child_setup_process(pid_t parent) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(4);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* stdin from /dev/null, stdout+stderr into the capture pipe, the socket on fd 3, all else closed. */
static int kf_child_setup_fds(int sock, int out_fd) {
    int s = fcntl(sock, F_DUPFD_CLOEXEC, 10);
    int o = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s < 0 || o < 0 || nul < 0) _exit(5);
    if (dup2(nul, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 || dup2(s, 3) < 0) _exit(5);
    if (close_range(4, ~0U, 0) != 0) {
        long maxfd = sysconf(_SC_OPEN_MAX);
        if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
        for (int fd = 4; fd < maxfd; fd++) close(fd);
    }
    return 3;
}

/* Parses "Name:   1234 kB" out of /proc/self/status text without stdio (signal-safe). */
static long long kf_status_field(const char *buf, size_t n, const char *name) {
    size_t ln = strlen(name);
    for (size_t i = 0; i + ln < n; i++) {
        if ((i == 0 || buf[i - 1] == '\n') && memcmp(buf + i, name, ln) == 0) {
            size_t j = i + ln;
            while (j < n && (buf[j] == ' ' || buf[j] == '\t')) j++;
            long long v = 0;
            while (j < n && buf[j] >= '0' && buf[j] <= '9') v = v * 10 + (buf[j++] - '0');
            return v * 1024;
        }
    }
    return 0;
}

/* Fatal-signal handler: records the memory in use into the death note (found just below the
 * alternate stack), then dies of the same signal with the default action. */
static void kf_fatal_handler(int sig) {
    int saved = errno;
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && ss.ss_sp) {
        kf_death_note *note = (kf_death_note *)((char *)ss.ss_sp - KF_NOTE_BYTES);
        char buf[4096];
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, buf, sizeof buf);
            close(fd);
            if (r > 0) {
                note->vm = kf_status_field(buf, (size_t)r, "VmSize:");
                note->rss = kf_status_field(buf, (size_t)r, "VmRSS:");
            }
        }
        note->sig = sig;
    }
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    errno = saved;
}

static void kf_child_fatal_handlers(kf_death_note *note) {
    if (!note) return;
    stack_t ss = {.ss_sp = (char *)note + KF_NOTE_BYTES, .ss_flags = 0, .ss_size = KF_ALTSTACK_BYTES};
    if (sigaltstack(&ss, NULL) != 0) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kf_fatal_handler;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

/* A DEV request (kf_worker.h): map, prepare the checks, stage, run, check, unmap. */
static void kf_child_dev(int sock, const kf_target_ops *t, void *rt, const kf_program *p, int len,
                         kf_err *err) {
    unsigned char *body = len > 0 ? malloc((size_t)len) : NULL;
    if (!body || kf_read_all(sock, body, (size_t)len)) _exit(3);
    kf_dev_wire dw;
    kf_dev_wire_reply rep;
    memset(&rep, 0, sizeof rep);
    memcpy(&dw, body, sizeof dw);
    size_t need = sizeof dw + (size_t)dw.n_mems * sizeof(kf_dev_mem) + (size_t)dw.n_src * sizeof(int32_t) +
                  (size_t)dw.n_jobs * sizeof(kf_dev_job);
    if (!t->dev || dw.n_mems < 0 || dw.n_src < 0 || dw.n_jobs < 0 || need != (size_t)len ||
        (dw.n_src && dw.n_src != p->n_bufs)) {
        free(body);
        rep.unavailable = 1;
        snprintf(rep.why, sizeof rep.why, "%s", t->dev ? "malformed device request"
                                                        : "the target has no device data path");
        kf_reply(sock, 0, &rep, sizeof rep);
        return;
    }
    const kf_dev_mem *mems = (const kf_dev_mem *)(body + sizeof dw);
    int *src = dw.n_src ? calloc((size_t)dw.n_src, sizeof *src) : NULL;
    const unsigned char *sp = body + sizeof dw + (size_t)dw.n_mems * sizeof(kf_dev_mem);
    for (int i = 0; i < dw.n_src && src; i++) {
        int32_t v;
        memcpy(&v, sp + (size_t)i * sizeof v, sizeof v);
        src[i] = v;
    }
    kf_dev_job *jobs = dw.n_jobs ? malloc((size_t)dw.n_jobs * sizeof *jobs) : NULL;
    if (jobs) memcpy(jobs, sp + (size_t)dw.n_src * sizeof(int32_t), (size_t)dw.n_jobs * sizeof *jobs);
    size_t out_len = sizeof rep + (size_t)dw.n_jobs * sizeof(kf_dev_sum);
    unsigned char *out = calloc(1, out_len);
    if ((dw.n_src && !src) || (dw.n_jobs && !jobs) || !out) _exit(3);
    int rc = t->dev->map(rt, mems, dw.n_mems, err);
    if (!rc) rc = t->dev->check(rt, NULL, 0, NULL, err); /* loads the checks before any run */
    if (rc == KF_E_UNAVAILABLE) {
        rep.unavailable = 1;
        snprintf(rep.why, sizeof rep.why, "%s", err->msg);
        t->dev->unmap(rt);
        kf_reply(sock, 0, &rep, sizeof rep);
    } else {
        if (!rc && (dw.flags & KF_DEV_STAGE)) rc = t->dev->stage(rt, src, err);
        if (!rc && (dw.flags & KF_DEV_RUN)) rc = t->run(rt, err);
        if (!rc && dw.n_jobs) rc = t->dev->check(rt, jobs, dw.n_jobs, (kf_dev_sum *)(out + sizeof rep), err);
        t->dev->unmap(rt);
        if (rc) {
            kf_reply_err(sock, err);
        } else {
            memcpy(out, &rep, sizeof rep);
            kf_reply(sock, 0, out, out_len);
        }
    }
    free(out);
    free(jobs);
    free(src);
    free(body);
}

_Noreturn void kf_worker_child(int sock, int out_fd, pid_t parent, kf_death_note *note,
                               const kf_target_ops *t,
                               const kf_program *p, const kf_build *b, const kf_build_opts *bo,
                               const kf_arena *a, long long as_limit, long long flush_bytes) {
    kf_child_setup_process(parent);
    sock = kf_child_setup_fds(sock, out_fd);
    kf_child_fatal_handlers(note);
    kf_err err;
    kf_err_clear(&err);
    if (as_limit > 0) {
        struct rlimit rl = {(rlim_t)as_limit, (rlim_t)as_limit};
        setrlimit(RLIMIT_AS, &rl);
    }
    kf_flush_ctx fc = {NULL, flush_bytes > 0 ? (size_t)flush_bytes : 0, 0};
    if (fc.n && !(fc.buf = malloc(fc.n))) {
        kf_fail(&err, KF_E_INTERNAL, "worker: cannot allocate the %zu-byte cache-flush buffer", fc.n);
        kf_reply_err(sock, &err);
        _exit(6);
    }
    void *rt = NULL;
    if (t->open(p, b, bo, &rt, &err) != 0) {
        kf_reply_err(sock, &err);
        _exit(0);
    }
    if (t->bind(rt, a->slots, p->n_bufs, &err) != 0) {
        kf_reply_err(sock, &err);
        _exit(0);
    }
    kf_reply(sock, 0, NULL, 0);
    for (;;) {
        kf_wire cmd;
        if (kf_read_all(sock, &cmd, sizeof cmd)) break;
        if (cmd.op_or_code == KF_WCMD_QUIT) {
            kf_reply(sock, 0, NULL, 0);
            break;
        }
        int rc = 0;
        if (cmd.op_or_code == KF_WCMD_DEV) {
            kf_child_dev(sock, t, rt, p, cmd.n_or_len, &err);
            continue;
        }
        if (cmd.op_or_code != KF_WCMD_TIME_DEV)
            for (int i = 0; i < p->n_bufs && !rc; i++) rc = t->upload(rt, i, &err);
        if (cmd.op_or_code == KF_WCMD_RUN) {
            if (!rc) rc = t->run(rt, &err);
            for (int i = 0; i < p->n_bufs && !rc; i++) rc = t->download(rt, i, &err);
            if (rc) kf_reply_err(sock, &err);
            else kf_reply(sock, 0, NULL, 0);
        } else if (cmd.op_or_code == KF_WCMD_TIME || cmd.op_or_code == KF_WCMD_TIME_DEV) {
            int n = cmd.n_or_len;
            double *ms = n > 0 ? calloc((size_t)n, sizeof *ms) : NULL;
            if (n <= 0 || !ms) rc = kf_fail(&err, KF_E_INTERNAL, "worker: bad run count %d", n);
            if (!rc) rc = t->time(rt, n, kf_worker_flush, &fc, ms, &err);
            if (rc) kf_reply_err(sock, &err);
            else kf_reply(sock, 0, ms, (size_t)n * sizeof *ms);
            free(ms);
        } else {
            kf_fail(&err, KF_E_INTERNAL, "worker: unknown command %d", cmd.op_or_code);
            kf_reply_err(sock, &err);
        }
    }
    t->close(rt);
    _exit(0);
}
