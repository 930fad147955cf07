/* kf_worker.c: the parent's side of the isolated worker: fork it, send commands, and wait for
 * each reply under a wall-clock limit while watching the child's memory in /proc. Turns a
 * hang, a crash or a runaway allocation into an outcome and always reaps the whole process
 * group of the child. */
#include "harness/kf_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KF_MIB (1024LL * 1024LL)
#define KF_WATCH_MS 10

static double kf_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* VmRSS and VmSize of pid (0 = self) in bytes; 0 if the process is gone. */
static void kf_proc_mem(pid_t pid, long long *rss, long long *vm) {
    char path[64], line[256];
    if (pid) snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else snprintf(path, sizeof path, "/proc/self/status");
    *rss = *vm = 0;
    FILE *f = fopen(path, "re");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) *rss = kb * 1024;
        else if (sscanf(line, "VmSize: %lld kB", &kb) == 1) *vm = kb * 1024;
    }
    fclose(f);
}

static void kf_drain_output(kf_worker *w) {
    if (w->out_fd < 0) return;
    char buf[4096];
    for (;;) {
        ssize_t r = read(w->out_fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) {
                close(w->out_fd);
                w->out_fd = -1;
            }
            return;
        }
        size_t n = (size_t)r, cap = sizeof w->tail;
        if (n >= cap) {
            memcpy(w->tail, buf + n - cap, cap);
            w->tail_len = cap;
        } else {
            if (w->tail_len + n > cap) {
                size_t drop = w->tail_len + n - cap;
                memmove(w->tail, w->tail + drop, w->tail_len - drop);
                w->tail_len -= drop;
            }
            memcpy(w->tail + w->tail_len, buf, n);
            w->tail_len += n;
        }
    }
}

/* Appends the last lines the child printed, if any, to the outcome's message. */
static void kf_add_tail(kf_worker *w, kf_outcome *oc) {
    kf_drain_output(w);
    if (!w->tail_len) return;
    size_t show = w->tail_len > 1500 ? 1500 : w->tail_len;
    const char *base = oc->message ? oc->message : "";
    char *m = NULL;
    if (asprintf(&m, "%s\nworker output (last %zu bytes):\n%.*s", base, show, (int)show,
                 w->tail + w->tail_len - show) >= 0) {
        free(oc->message);
        oc->message = m;
    }
}

static void kf_sample(kf_worker *w, long long *rss_out) {
    long long rss, vm;
    kf_proc_mem(w->pid, &rss, &vm);
    if (rss > w->peak_rss) w->peak_rss = rss;
    if (vm > w->peak_vm) w->peak_vm = vm;
    *rss_out = rss;
}

/* Whether the child came within 10% of a limit, measured on what it added to its start. */
static int kf_near_limit(const kf_worker *w, long long maxrss) {
    long long rss = maxrss > w->peak_rss ? maxrss : w->peak_rss;
    double vm_room = (double)(w->as_limit - w->base_vm), rss_room = (double)(w->rss_cap - w->base_rss);
    return (w->as_limit > 0 && vm_room > 0 && (double)(w->peak_vm - w->base_vm) >= 0.9 * vm_room) ||
           (w->rss_cap > 0 && rss_room > 0 && (double)(rss - w->base_rss) >= 0.9 * rss_room);
}

/* Kills the child's group and reaps the child. Returns its wait status; *maxrss its peak RSS. */
static int kf_kill_reap(kf_worker *w, long long *maxrss) {
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (w->pid > 0) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL);
        while (wait4(w->pid, &st, 0, &ru) < 0 && errno == EINTR) {}
        w->pid = 0;
    }
    if (maxrss) *maxrss = (long long)ru.ru_maxrss * 1024;
    kf_drain_output(w);
    return st;
}

static double kf_mib(long long b) { return (double)b / (double)KF_MIB; }

/* The child hung up or vanished during `what`: reap it and describe how it ended. */
static void kf_classify_death(kf_worker *w, const char *what, kf_outcome *oc) {
    int st = 0, gone = 0;
    /* Wait (without reaping) for the child to end, so its group can be killed first. */
    for (int i = 0; i < 100 && !gone; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == w->pid) gone = 1;
        else if (r < 0 && errno != EINTR) break;
        else usleep(10000);
    }
    long long maxrss = 0;
    if (!gone) {
        kf_kill_reap(w, &maxrss);
        kf_outcome_set(oc, KF_ST_CRASHED, "worker stopped answering during %s (closed its socket)",
                       what);
        kf_add_tail(w, oc);
        return;
    }
    st = kf_kill_reap(w, &maxrss);
    if (w->note && w->note->sig) {
        if (w->note->vm > w->peak_vm) w->peak_vm = w->note->vm;
        if (w->note->rss > w->peak_rss) w->peak_rss = w->note->rss;
    }
    int near = kf_near_limit(w, maxrss);
    long long peak = maxrss > w->peak_rss ? maxrss : w->peak_rss;
    char sig[32];
    if (WIFSIGNALED(st)) {
        int s = WTERMSIG(st);
        oc->signal = s;
        if (near)
            kf_outcome_set(oc, KF_ST_OOM,
                           "out of memory: worker killed by %s during %s after reaching %.0f MiB "
                           "resident, %.0f MiB address space (limits %.0f MiB resident, %.0f MiB "
                           "address space)",
                           kf_signal_name(s, sig, sizeof sig), what, kf_mib(peak), kf_mib(w->peak_vm),
                           kf_mib(w->rss_cap), kf_mib(w->as_limit));
        else
            kf_outcome_set(oc, KF_ST_CRASHED, "crashed: worker killed by %s (%s) during %s",
                           kf_signal_name(s, sig, sizeof sig), strsignal(s), what);
    } else {
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (near)
            kf_outcome_set(oc, KF_ST_OOM,
                           "out of memory: worker exited with status %d during %s after reaching "
                           "%.0f MiB resident, %.0f MiB address space",
                           code, what, kf_mib(peak), kf_mib(w->peak_vm));
        else
            kf_outcome_set(oc, KF_ST_CRASHED, "crashed: worker exited with status %d during %s",
                           code, what);
    }
    kf_add_tail(w, oc);
}

static int kf_recv_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, MSG_WAITALL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Waits for one reply. 0 with oc ok and the header and payload (malloc'd, NUL-terminated) filled, or 0
 * with oc holding the failure (child already reaped); nonzero only for a harness failure. */
static int kf_await(kf_worker *w, double timeout_s, const char *what, kf_wire *hdr,
                    char **payload, kf_outcome *oc, kf_err *err) {
    *payload = NULL;
    double deadline = kf_now_s() + timeout_s;
    for (;;) {
        double left = deadline - kf_now_s();
        int ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
        if (ms > KF_WATCH_MS) ms = KF_WATCH_MS;
        struct pollfd pf[2] = {{w->sock, POLLIN, 0}, {w->out_fd, POLLIN, 0}};
        int np = w->out_fd >= 0 ? 2 : 1;
        int pr = poll(pf, (nfds_t)np, ms);
        if (pr < 0 && errno != EINTR) {
            kf_kill_reap(w, NULL);
            return kf_fail(err, KF_E_IO, "worker: poll failed: %s", strerror(errno));
        }
        long long rss;
        kf_sample(w, &rss);
        if (w->rss_cap > 0 && rss > w->rss_cap) {
            long long maxrss;
            kf_kill_reap(w, &maxrss);
            kf_outcome_set(oc, KF_ST_OOM,
                           "out of memory: worker used %.1f MiB resident during %s, over its limit "
                           "of %.1f MiB; killed",
                           kf_mib(rss), what, kf_mib(w->rss_cap));
            kf_add_tail(w, oc);
            return 0;
        }
        if (pr > 0 && np == 2 && (pf[1].revents & (POLLIN | POLLHUP))) kf_drain_output(w);
        if (pr > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (kf_recv_all(w->sock, hdr, sizeof *hdr) != 0 || hdr->n_or_len < 0 ||
                hdr->n_or_len > (1 << 28)) {
                kf_classify_death(w, what, oc);
                return 0;
            }
            *payload = malloc((size_t)hdr->n_or_len + 1);
            if (!*payload) {
                kf_kill_reap(w, NULL);
                return kf_fail(err, KF_E_NOMEM, "worker: out of memory for a reply");
            }
            if (hdr->n_or_len && kf_recv_all(w->sock, *payload, (size_t)hdr->n_or_len) != 0) {
                free(*payload);
                *payload = NULL;
                kf_classify_death(w, what, oc);
                return 0;
            }
            (*payload)[hdr->n_or_len] = '\0';
            oc->status = KF_ST_VERIFIED;
            return 0;
        }
        if (kf_now_s() >= deadline) {
            long long maxrss;
            int near = kf_near_limit(w, 0);
            kf_kill_reap(w, &maxrss);
            if (near || kf_near_limit(w, maxrss))
                kf_outcome_set(oc, KF_ST_OOM,
                               "out of memory: worker did not finish %s within %.3g s after "
                               "reaching %.0f MiB address space of its %.0f MiB limit; killed",
                               what, timeout_s, kf_mib(w->peak_vm), kf_mib(w->as_limit));
            else
                kf_outcome_set(oc, KF_ST_TIMEOUT,
                               "timeout: worker did not finish %s within %.3g s; killed", what,
                               timeout_s);
            kf_add_tail(w, oc);
            return 0;
        }
    }
}

/* A reply with an error code from the target: map it to a status. */
static void kf_reply_failure(kf_worker *w, int code, const char *msg, const char *what,
                             int loading, kf_outcome *oc) {
    long long rss;
    kf_sample(w, &rss);
    if (kf_near_limit(w, 0) || code == KF_E_NOMEM)
        kf_outcome_set(oc, KF_ST_OOM, "out of memory during %s: %s", what, msg);
    else if (code == KF_E_UNSUPPORTED)
        kf_outcome_set(oc, KF_ST_UNSUPPORTED, "%s: %s", what, msg);
    else if (code == KF_E_TIMEOUT)
        kf_outcome_set(oc, KF_ST_TIMEOUT, "timeout during %s: %s", what, msg);
    else if (code == KF_E_UNAVAILABLE || code == KF_E_INTERNAL)
        kf_outcome_set(oc, KF_ST_ERROR, "%s failed: %s", what, msg);
    else if (loading)
        kf_outcome_set(oc, KF_ST_COMPILE_ERROR, "loading the built program failed: %s", msg);
    else
        kf_outcome_set(oc, KF_ST_CRASHED, "%s failed: %s", what, msg);
    kf_add_tail(w, oc);
}

int kf_worker_start(kf_worker *w, const kf_target_ops *t, const kf_program *p, const kf_build *b,
                    const kf_build_opts *bo, const kf_arena *a, const kf_worker_limits *lim,
                    kf_outcome *oc, kf_err *err) {
    memset(w, 0, sizeof *w);
    w->sock = w->out_fd = -1;
    w->lim = *lim;
    kf_outcome_clear(oc);
    int sv[2], op[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return kf_fail(err, KF_E_IO, "worker: socketpair: %s", strerror(errno));
    if (pipe2(op, O_CLOEXEC) != 0) {
        close(sv[0]);
        close(sv[1]);
        return kf_fail(err, KF_E_IO, "worker: pipe: %s", strerror(errno));
    }
    void *shared = mmap(NULL, KF_NOTE_BYTES + KF_ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    w->note = shared == MAP_FAILED ? NULL : shared;
    long long base_rss, base_vm;
    kf_proc_mem(0, &base_rss, &base_vm);
    w->base_rss = base_rss;
    w->base_vm = base_vm;
    long long flush = lim->flush_bytes > 0 ? lim->flush_bytes : 0;
    int threads = lim->threads > 0 ? lim->threads : 1;
    w->rss_cap = base_rss + (long long)kf_arena_bytes(a) + flush + lim->mem_limit;
    /* Address space: what the child inherits, plus the limit, the flush buffer, and room for
     * libraries, thread stacks and per-thread malloc arenas. */
    w->as_limit = t->unlimited_address_space ? 0 : base_vm + lim->mem_limit + flush + 256 * KF_MIB + threads * 80 * KF_MIB;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]); close(sv[1]); close(op[0]); close(op[1]);
        kf_worker_stop(w);
        return kf_fail(err, KF_E_IO, "worker: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        close(op[0]);
        kf_worker_child(sv[1], op[1], parent, w->note, t, p, b, bo, a, w->as_limit, flush);
    }
    setpgid(pid, pid);
    close(sv[1]);
    close(op[1]);
    w->pid = pid;
    w->sock = sv[0];
    w->out_fd = op[0];
    fcntl(w->out_fd, F_SETFL, fcntl(w->out_fd, F_GETFL) | O_NONBLOCK);
    kf_wire h;
    char *payload = NULL;
    int rc = kf_await(w, lim->timeout_s, "loading the program", &h, &payload, oc, err);
    if (rc == 0 && oc->status == KF_ST_VERIFIED && h.op_or_code != 0) {
        kf_reply_failure(w, h.op_or_code, payload, "loading the program", 1, oc);
        kf_worker_stop(w);
    }
    free(payload);
    return rc;
}

static int kf_send_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t s = send(fd, p, n, MSG_NOSIGNAL);
        if (s < 0 && errno == EINTR) continue;
        if (s <= 0) return -1;
        p += s;
        n -= (size_t)s;
    }
    return 0;
}

/* Sends a command (n: its number, or the length of body) and waits for the reply. */
static int kf_request_body(kf_worker *w, int op, int n, const void *body, double timeout_s,
                           const char *what, kf_wire *h, char **payload, kf_outcome *oc,
                           kf_err *err) {
    kf_outcome_clear(oc);
    *payload = NULL;
    if (w->pid <= 0) return kf_fail(err, KF_E_INTERNAL, "worker: not running");
    kf_wire cmd = {op, n};
    if (kf_send_all(w->sock, &cmd, sizeof cmd) != 0 ||
        (body && n > 0 && kf_send_all(w->sock, body, (size_t)n) != 0)) {
        kf_classify_death(w, what, oc);
        return 0;
    }
    int rc = kf_await(w, timeout_s, what, h, payload, oc, err);
    if (rc == 0 && oc->status == KF_ST_VERIFIED && h->op_or_code != 0) {
        kf_reply_failure(w, h->op_or_code, *payload, what, 0, oc);
        kf_worker_stop(w);
    }
    return rc;
}

static int kf_request(kf_worker *w, int op, int n, double timeout_s, const char *what,
                      kf_wire *h, char **payload, kf_outcome *oc, kf_err *err) {
    return kf_request_body(w, op, n, NULL, timeout_s, what, h, payload, oc, err);
}

int kf_worker_run(kf_worker *w, kf_outcome *oc, kf_err *err) {
    kf_wire h;
    char *payload;
    int rc = kf_request(w, KF_WCMD_RUN, 0, w->lim.timeout_s, "the run", &h, &payload, oc, err);
    free(payload);
    return rc;
}

static int kf_worker_time_op(kf_worker *w, int op, int n, double *ms, kf_outcome *oc,
                             kf_err *err) {
    kf_wire h;
    char *payload;
    if (n <= 0) return kf_fail(err, KF_E_INTERNAL, "worker: bad run count %d", n);
    int rc = kf_request(w, op, n, w->lim.timeout_s * (n + 1), "the timed runs", &h,
                        &payload, oc, err);
    if (rc == 0 && oc->status == KF_ST_VERIFIED) {
        if (h.n_or_len != (int32_t)(n * sizeof *ms)) {
            free(payload);
            kf_worker_stop(w);
            return kf_fail(err, KF_E_INTERNAL, "worker: TIME reply has %d bytes, expected %zu",
                           h.n_or_len, n * sizeof *ms);
        }
        memcpy(ms, payload, n * sizeof *ms);
    }
    free(payload);
    return rc;
}

int kf_worker_time(kf_worker *w, int n, double *ms, kf_outcome *oc, kf_err *err) {
    return kf_worker_time_op(w, KF_WCMD_TIME, n, ms, oc, err);
}

int kf_worker_time_dev(kf_worker *w, int n, double *ms, kf_outcome *oc, kf_err *err) {
    return kf_worker_time_op(w, KF_WCMD_TIME_DEV, n, ms, oc, err);
}

int kf_worker_dev(kf_worker *w, const kf_dev_request *q, kf_dev_sum *sums, int *unavailable,
                  char *why, size_t why_n, kf_outcome *oc, kf_err *err) {
    *unavailable = 0;
    if (why_n) why[0] = '\0';
    size_t len = sizeof(kf_dev_wire) + (size_t)q->n_mems * sizeof(kf_dev_mem) +
                 (size_t)q->n_src * sizeof(int32_t) + (size_t)q->n_jobs * sizeof(kf_dev_job);
    if (len > (1u << 28)) return kf_fail(err, KF_E_INTERNAL, "worker: device request too large");
    unsigned char *body = malloc(len);
    if (!body) return kf_fail(err, KF_E_NOMEM, "worker: out of memory");
    kf_dev_wire dw = {q->flags, q->n_mems, q->n_src, q->n_jobs};
    size_t off = 0;
    memcpy(body, &dw, sizeof dw);
    off += sizeof dw;
    if (q->n_mems) memcpy(body + off, q->mems, (size_t)q->n_mems * sizeof(kf_dev_mem));
    off += (size_t)q->n_mems * sizeof(kf_dev_mem);
    for (int i = 0; i < q->n_src; i++) {
        int32_t v = q->src[i];
        memcpy(body + off, &v, sizeof v);
        off += sizeof v;
    }
    if (q->n_jobs) memcpy(body + off, q->jobs, (size_t)q->n_jobs * sizeof(kf_dev_job));
    kf_wire h;
    char *payload;
    const char *what = (q->flags & KF_DEV_RUN) ? "the run" : "the device checks";
    int rc = kf_request_body(w, KF_WCMD_DEV, (int)len, body, w->lim.timeout_s * 2, what, &h,
                             &payload, oc, err);
    free(body);
    if (rc == 0 && oc->status == KF_ST_VERIFIED) {
        size_t want = sizeof(kf_dev_wire_reply) + (size_t)q->n_jobs * sizeof(kf_dev_sum);
        kf_dev_wire_reply rep;
        if ((size_t)h.n_or_len < sizeof rep) {
            free(payload);
            kf_worker_stop(w);
            return kf_fail(err, KF_E_INTERNAL, "worker: short device reply");
        }
        memcpy(&rep, payload, sizeof rep);
        rep.why[sizeof rep.why - 1] = '\0';
        if (rep.unavailable) {
            *unavailable = 1;
            if (why_n) snprintf(why, why_n, "%s", rep.why);
        } else if ((size_t)h.n_or_len != want) {
            free(payload);
            kf_worker_stop(w);
            return kf_fail(err, KF_E_INTERNAL, "worker: device reply has %d bytes, expected %zu",
                           h.n_or_len, want);
        } else if (q->n_jobs) {
            memcpy(sums, payload + sizeof rep, (size_t)q->n_jobs * sizeof(kf_dev_sum));
        }
    }
    free(payload);
    return rc;
}

void kf_worker_stop(kf_worker *w) {
    if (w->pid > 0) {
        kf_wire cmd = {KF_WCMD_QUIT, 0};
        if (send(w->sock, &cmd, sizeof cmd, MSG_NOSIGNAL) == (ssize_t)sizeof cmd) {
            struct pollfd pf = {w->sock, POLLIN, 0};
            poll(&pf, 1, 1000);
        }
        kf_kill_reap(w, NULL);
    }
    if (w->sock >= 0) close(w->sock);
    if (w->out_fd >= 0) close(w->out_fd);
    w->sock = w->out_fd = -1;
    if (w->note) munmap(w->note, KF_NOTE_BYTES + KF_ALTSTACK_BYTES);
    w->note = NULL;
}
