/* kf_oracle.c: the oracle child process: start it (fork/exec with three pipes, in its own
 * process group), exchange one JSON line for one JSON line under a timeout, keep the tail of
 * its stderr for error messages, and stop or kill it. The typed requests are in
 * kf_oracle_verbs.c. */
#include "oracle/kf_oracle_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cjson/cJSON.h>

#include "core/kf_str.h"

#define KF_ORACLE_SCRIPT_NAME "kforge_oracle.py"

static double kf_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int kf_file_exists(const char *path, int mode) { return path && access(path, mode) == 0; }

/* ---- paths ---- */

static char *kf_oracle_find_script(const char *given) {
    if (given && *given) return kf_strdup(given);
    const char *env = getenv("KFORGE_ORACLE");
    if (env && *env) return kf_strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char *p = kf_asprintf("%s/../python/%s", exe, KF_ORACLE_SCRIPT_NAME);
            if (p && kf_file_exists(p, R_OK)) return p;
            free(p);
        }
    }
    char *p = kf_asprintf("./python/%s", KF_ORACLE_SCRIPT_NAME);
    if (p && kf_file_exists(p, R_OK)) {
        char real[PATH_MAX];
        if (realpath(p, real)) {
            free(p);
            return kf_strdup(real);
        }
        return p;
    }
    free(p);
    return NULL;
}

static char *kf_oracle_find_python(const char *given) {
    if (given && *given) return kf_strdup(given);
    const char *env = getenv("KFORGE_PYTHON");
    if (env && *env) return kf_strdup(env);
    if (kf_file_exists("/usr/bin/python3", X_OK)) return kf_strdup("/usr/bin/python3");
    return kf_strdup("python3");
}

static int kf_oracle_make_workdir(kf_oracle *o, const char *given, kf_err *err) {
    if (given && *given) {
        struct stat st;
        if (stat(given, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return kf_fail(err, KF_E_IO, "oracle workdir %s is not a directory", given);
        } else {
            int rc = kf_mkdirs(given);
            if (rc != 0)
                return kf_fail(err, KF_E_IO, "cannot create oracle workdir %s: %s", given,
                               strerror(-rc));
            chmod(given, 0700);
        }
        o->workdir = kf_strdup(given);
        return o->workdir ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    const char *tmp = getenv("TMPDIR");
    /* mkdtemp's template: a prefix and six 'X' characters that it replaces */
    char *tmpl = kf_asprintf("%s/kforge-oracle-%6s", tmp && *tmp ? tmp : "/tmp", "");
    if (!tmpl) return kf_fail(err, KF_E_NOMEM, "out of memory");
    memset(tmpl + strlen(tmpl) - 6, 'X', 6);
    if (!mkdtemp(tmpl)) {
        int e = errno;
        kf_fail(err, KF_E_IO, "cannot create a temporary oracle workdir %s: %s", tmpl, strerror(e));
        free(tmpl);
        return err ? err->code : KF_E_IO;
    }
    o->workdir = tmpl;
    o->owns_workdir = 1;
    return 0;
}

static void kf_oracle_remove_workdir(kf_oracle *o) {
    if (!o->owns_workdir || !o->workdir) return;
    DIR *d = opendir(o->workdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = kf_asprintf("%s/%s", o->workdir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(o->workdir);
}

/* ---- stderr ring ---- */

static void kf_ring_put(kf_oracle *o, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        o->ring[o->ring_pos++] = p[i];
        if (o->ring_pos == KF_ORACLE_RING) {
            o->ring_pos = 0;
            o->ring_full = 1;
        }
    }
}

/* Reads what the child's stderr has now; closes it at EOF. */
static void kf_oracle_drain_stderr(kf_oracle *o) {
    while (o->err_from_child >= 0) {
        struct pollfd p = {o->err_from_child, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
        char buf[4096];
        ssize_t n = read(o->err_from_child, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (n <= 0) {
            close(o->err_from_child);
            o->err_from_child = -1;
            return;
        }
        kf_ring_put(o, buf, (size_t)n);
    }
}

const char *kf_oracle_stderr_tail(kf_oracle *o, char *buf, size_t n) {
    if (!n) return buf;
    buf[0] = '\0';
    size_t len = o->ring_full ? KF_ORACLE_RING : o->ring_pos;
    char *lin = malloc(len + 1);
    if (!lin) return buf;
    if (o->ring_full) {
        size_t first = KF_ORACLE_RING - o->ring_pos;
        memcpy(lin, o->ring + o->ring_pos, first);
        memcpy(lin + first, o->ring, o->ring_pos);
    } else {
        memcpy(lin, o->ring, len);
    }
    while (len > 0 && (lin[len - 1] == '\n' || lin[len - 1] == ' ' || lin[len - 1] == '\r'))
        len--;
    /* the last 6 lines, at most 700 bytes */
    size_t start = len;
    int lines = 0;
    while (start > 0 && len - start < 700) {
        if (lin[start - 1] == '\n' && ++lines == 6) break;
        start--;
    }
    size_t k = 0;
    for (size_t i = start; i < len && k + 4 < n; i++) {
        if (lin[i] == '\n') {
            memcpy(buf + k, " | ", 3);
            k += 3;
        } else if (lin[i] != '\r') {
            buf[k++] = lin[i];
        }
    }
    buf[k] = '\0';
    free(lin);
    return buf;
}

/* ---- the child ---- */

/* 1 if the child has exited (left unreaped, so its process group stays ours), with its
 * status described into what (when not NULL). */
static int kf_oracle_exited(kf_oracle *o, char *what, size_t n) {
    if (o->pid <= 0) {
        if (what) snprintf(what, n, "stopped");
        return 1;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)o->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (what) snprintf(what, n, "lost");
        return 1;
    }
    if (si.si_pid == 0) return 0;
    if (what) {
        if (si.si_code == CLD_EXITED) snprintf(what, n, "exit status %d", si.si_status);
        else snprintf(what, n, "killed by signal %d", si.si_status);
    }
    return 1;
}

/* Kills the child's process group and reaps the child. */
static void kf_oracle_kill(kf_oracle *o) {
    if (o->pid > 0) {
        kill(-o->pid, SIGKILL);
        kill(o->pid, SIGKILL);
        int st;
        while (waitpid(o->pid, &st, 0) < 0 && errno == EINTR) {
        }
        o->pid = 0;
    }
    o->dead = 1;
}

static int kf_oracle_wait_exit(kf_oracle *o, double seconds, char *what, size_t n) {
    double end = kf_now_s() + seconds;
    for (;;) {
        kf_oracle_drain_stderr(o);
        if (kf_oracle_exited(o, what, n)) return 1;
        if (kf_now_s() >= end) return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The child is gone (EOF or write error): collect its last words and reap it. */
static int kf_oracle_died(kf_oracle *o, kf_err *err) {
    char what[64] = "closed its output";
    if (!kf_oracle_wait_exit(o, 2.0, what, sizeof what)) snprintf(what, sizeof what, "closed its output");
    double end = kf_now_s() + 0.5;
    while (o->err_from_child >= 0 && kf_now_s() < end) {
        struct pollfd p = {o->err_from_child, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) kf_oracle_drain_stderr(o);
    }
    kf_oracle_kill(o);
    char tail[800];
    kf_oracle_stderr_tail(o, tail, sizeof tail);
    return kf_fail(err, KF_E_ORACLE, "oracle exited (%s): %s", what,
                   tail[0] ? tail : "(nothing on stderr)");
}

static int kf_set_cloexec(int fd) {
    int f = fcntl(fd, F_GETFD);
    return f < 0 ? -1 : fcntl(fd, F_SETFD, f | FD_CLOEXEC);
}

static int kf_pipe(int p[2]) {
    if (pipe(p) != 0) return -1;
    if (kf_set_cloexec(p[0]) != 0 || kf_set_cloexec(p[1]) != 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    return 0;
}

static void kf_close_pair(int p[2]) {
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
}

static int kf_oracle_spawn(kf_oracle *o, const char *python, const char *script, kf_err *err) {
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    if (kf_pipe(in_p) || kf_pipe(out_p) || kf_pipe(err_p)) {
        int e = errno;
        kf_close_pair(in_p);
        kf_close_pair(out_p);
        kf_close_pair(err_p);
        return kf_fail(err, KF_E_IO, "cannot create pipes for the oracle: %s", strerror(e));
    }
    char *argv[] = {(char *)python, (char *)script, NULL};
    char exec_fail[256];
    snprintf(exec_fail, sizeof exec_fail, "kforge: cannot run the oracle interpreter %s\n", python);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        kf_close_pair(in_p);
        kf_close_pair(out_p);
        kf_close_pair(err_p);
        return kf_fail(err, KF_E_IO, "cannot fork the oracle: %s", strerror(e));
    }
    if (pid == 0) {
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in_p[0], 0) < 0 || dup2(out_p[1], 1) < 0 || dup2(err_p[1], 2) < 0) _exit(126);
        execvp(python, argv);
        ssize_t w = write(2, exec_fail, strlen(exec_fail));
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid);
    close(in_p[0]);
    close(out_p[1]);
    close(err_p[1]);
    o->pid = pid;
    o->to_child = in_p[1];
    o->from_child = out_p[0];
    o->err_from_child = err_p[0];
    fcntl(o->to_child, F_SETFL, fcntl(o->to_child, F_GETFL) | O_NONBLOCK);
    return 0;
}

int kf_oracle_start(const kf_oracle_opts *opts, kf_oracle **out, kf_err *err) {
    *out = NULL;
    kf_oracle_opts none;
    memset(&none, 0, sizeof none);
    if (!opts) opts = &none;
    kf_oracle *o = calloc(1, sizeof *o);
    if (!o) return kf_fail(err, KF_E_NOMEM, "out of memory");
    o->to_child = o->from_child = o->err_from_child = -1;
    o->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 600.0;
    o->threads = opts->threads;
    o->device = kf_strdup(opts->device && *opts->device ? opts->device : "cpu");
    char *script = kf_oracle_find_script(opts->script);
    char *python = kf_oracle_find_python(opts->python);
    int rc = 0;
    if (!o->device || !python) {
        rc = kf_fail(err, KF_E_NOMEM, "out of memory");
    } else if (!script) {
        rc = kf_fail(err, KF_E_UNAVAILABLE, "oracle script not found: set KFORGE_ORACLE, or "
                     "run from the kforge tree (looked beside the binary and in ./python)");
    } else if (!kf_file_exists(script, R_OK)) {
        rc = kf_fail(err, KF_E_UNAVAILABLE, "oracle script %s is not readable", script);
    } else {
        rc = kf_oracle_make_workdir(o, opts->workdir, err);
        if (rc == 0) rc = kf_oracle_spawn(o, python, script, err);
    }
    free(script);
    free(python);
    if (rc != 0) {
        o->dead = 1;
        kf_oracle_stop(o);
        return rc;
    }
    *out = o;
    return 0;
}

int kf_oracle_alive(kf_oracle *o) {
    if (!o || o->dead || o->pid <= 0) return 0;
    return !kf_oracle_exited(o, NULL, 0);
}

/* Writes all of buf with SIGPIPE blocked for this thread, so a dead child gives EPIPE. */
static int kf_oracle_write(kf_oracle *o, const char *buf, size_t len, double deadline,
                           kf_err *err) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int rc = 0, broke = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(o->to_child, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            double left = deadline - kf_now_s();
            if (left <= 0) {
                rc = KF_E_TIMEOUT;
                break;
            }
            kf_oracle_drain_stderr(o);
            struct pollfd p = {o->to_child, POLLOUT, 0};
            poll(&p, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
            continue;
        }
        broke = 1;
        rc = KF_E_ORACLE;
        break;
    }
    if (broke) {
        sigset_t pend;
        sigemptyset(&pend);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
            int sig;
            sigwait(&pipe_set, &sig);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == KF_E_ORACLE) return kf_oracle_died(o, err);
    if (rc == KF_E_TIMEOUT) {
        kf_oracle_kill(o);
        return kf_fail(err, KF_E_TIMEOUT, "oracle did not take a request in time (killed)");
    }
    return 0;
}

static int kf_oracle_take_line(kf_oracle *o, char **reply) {
    char *nl = o->rlen ? memchr(o->rbuf, '\n', o->rlen) : NULL;
    if (!nl) return 0;
    size_t n = (size_t)(nl - o->rbuf);
    char *line = malloc(n + 1);
    if (!line) return -1;
    memcpy(line, o->rbuf, n);
    line[n] = '\0';
    o->rlen -= n + 1;
    memmove(o->rbuf, nl + 1, o->rlen);
    *reply = line;
    return 1;
}

int kf_oracle_exchange(kf_oracle *o, const char *line, double timeout_s, char **reply,
                       kf_err *err) {
    *reply = NULL;
    if (!o || o->dead || o->pid <= 0)
        return kf_fail(err, KF_E_ORACLE, "oracle is not running");
    double deadline = kf_now_s() + (timeout_s > 0 ? timeout_s : o->timeout_s);
    /* A line left over from an earlier, abandoned exchange would answer the wrong request. */
    o->rlen = 0;
    size_t n = strlen(line);
    char *msg = malloc(n + 2);
    if (!msg) return kf_fail(err, KF_E_NOMEM, "out of memory");
    memcpy(msg, line, n);
    msg[n] = '\n';
    msg[n + 1] = '\0';
    int rc = kf_oracle_write(o, msg, n + 1, deadline, err);
    free(msg);
    if (rc != 0) return rc;
    for (;;) {
        int got = kf_oracle_take_line(o, reply);
        if (got < 0) return kf_fail(err, KF_E_NOMEM, "out of memory");
        if (got > 0) return 0;
        double left = deadline - kf_now_s();
        if (left <= 0) {
            kf_oracle_drain_stderr(o);
            kf_oracle_kill(o);
            char tail[600];
            kf_oracle_stderr_tail(o, tail, sizeof tail);
            return kf_fail(err, KF_E_TIMEOUT, "oracle gave no answer in %.0f s (killed)%s%s",
                           timeout_s > 0 ? timeout_s : o->timeout_s, tail[0] ? ": " : "", tail);
        }
        struct pollfd p[2] = {{o->from_child, POLLIN, 0}, {o->err_from_child, POLLIN, 0}};
        int np = o->err_from_child >= 0 ? 2 : 1;
        int ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
        int pr = poll(p, (nfds_t)np, ms);
        if (pr < 0 && errno != EINTR) return kf_fail(err, KF_E_IO, "poll: %s", strerror(errno));
        if (pr <= 0) continue;
        if (np == 2 && p[1].revents) kf_oracle_drain_stderr(o);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        if (o->rcap - o->rlen < 65536) {
            size_t cap = o->rcap ? o->rcap * 2 : 131072;
            char *nb = realloc(o->rbuf, cap);
            if (!nb) return kf_fail(err, KF_E_NOMEM, "out of memory");
            o->rbuf = nb;
            o->rcap = cap;
        }
        ssize_t r = read(o->from_child, o->rbuf + o->rlen, o->rcap - o->rlen);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return kf_oracle_died(o, err);
        o->rlen += (size_t)r;
    }
}

int kf_oracle_exchange_json(kf_oracle *o, const void *req, void **resp, kf_err *err) {
    *resp = NULL;
    char *line = cJSON_PrintUnformatted((const cJSON *)req);
    if (!line) return kf_fail(err, KF_E_NOMEM, "out of memory");
    char *reply = NULL;
    int rc = kf_oracle_exchange(o, line, 0, &reply, err);
    free(line);
    if (rc != 0) return rc;
    cJSON *j = cJSON_Parse(reply);
    if (!cJSON_IsObject(j) || !cJSON_GetObjectItemCaseSensitive(j, "ok")) {
        char head[200];
        snprintf(head, sizeof head, "%s", reply);
        cJSON_Delete(j);
        free(reply);
        return kf_fail(err, KF_E_ORACLE, "oracle sent a line that is not a reply: %s", head);
    }
    free(reply);
    *resp = j;
    return 0;
}

int kf_oracle_request(kf_oracle *o, const void *req, void **resp, kf_err *err) {
    void *r = NULL;
    *resp = NULL;
    int rc = kf_oracle_exchange_json(o, req, &r, err);
    if (rc != 0) return rc;
    cJSON *j = r;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
        *resp = j;
        return 0;
    }
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "error"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
    kf_fail(err, KF_E_ORACLE, "%s: %s", kind ? kind : "error", msg ? msg : "(no message)");
    cJSON_Delete(j);
    return KF_E_ORACLE;
}

void kf_oracle_stop(kf_oracle *o) {
    if (!o) return;
    if (!o->dead && o->pid > 0) {
        char *reply = NULL;
        kf_err e;
        if (kf_oracle_exchange(o, "{\"cmd\":\"quit\"}", 5.0, &reply, &e) == 0) free(reply);
        if (o->pid > 0) kf_oracle_wait_exit(o, 2.0, NULL, 0);
    }
    kf_oracle_kill(o);
    if (o->to_child >= 0) close(o->to_child);
    if (o->from_child >= 0) close(o->from_child);
    if (o->err_from_child >= 0) close(o->err_from_child);
    kf_oracle_remove_workdir(o);
    free(o->workdir);
    free(o->device);
    free(o->rbuf);
    free(o);
}
