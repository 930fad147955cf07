/* cpu_cc.c: the cpu target's C compiler: which command ($KFORGE_CC or cc), running it as a
 * child with a wall-clock limit and its output captured, its identity (for cache keys), and
 * the target's `available` check (a trivial OpenMP shared object must compile). */
#include "targets/cpu_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KF_CPU_NO_CC "no C compiler: install gcc (apt-get install gcc) or set KFORGE_CC"

int kf_cpu_cc_push(kf_cpu_cc *cc, const char *arg) {
    if (cc->n + 2 > cc->cap) {
        int cap = cc->cap ? cc->cap * 2 : 16;
        char **a = realloc(cc->argv, (size_t)cap * sizeof *a);
        if (!a) return KF_E_NOMEM;
        cc->argv = a;
        cc->cap = cap;
    }
    cc->argv[cc->n++] = (char *)arg;
    cc->argv[cc->n] = NULL;
    return 0;
}

int kf_cpu_cc_init(kf_cpu_cc *cc, kf_err *err) {
    memset(cc, 0, sizeof *cc);
    const char *env = getenv("KFORGE_CC");
    cc->words = kf_strdup(env && *env ? env : "cc");
    if (!cc->words) return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    for (char *w = strtok(cc->words, " \t"); w; w = strtok(NULL, " \t")) {
        if (kf_cpu_cc_push(cc, w) != 0) {
            kf_cpu_cc_free(cc);
            return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
        }
    }
    if (cc->n == 0) {
        kf_cpu_cc_free(cc);
        return kf_fail(err, KF_E_UNAVAILABLE, "KFORGE_CC is blank; " KF_CPU_NO_CC);
    }
    return 0;
}

void kf_cpu_cc_free(kf_cpu_cc *cc) {
    free(cc->words);
    free(cc->argv);
    memset(cc, 0, sizeof *cc);
}

static double kf_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int kf_cpu_spawn(char *const argv[], double timeout_s, char **output, int *exit_code, kf_err *err) {
    *output = NULL;
    *exit_code = -1;
    int out[2], ex[2];
    if (pipe2(out, O_CLOEXEC) != 0) return kf_fail(err, KF_E_IO, "cpu: pipe: %s", strerror(errno));
    if (pipe2(ex, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return kf_fail(err, KF_E_IO, "cpu: pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(out[0]); close(out[1]); close(ex[0]); close(ex[1]);
        return kf_fail(err, KF_E_IO, "cpu: fork: %s", strerror(e));
    }
    if (pid == 0) { /* child: own process group, so a timeout kills cc1, as and ld too */
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execvp(argv[0], argv);
        int e = errno;
        if (write(ex[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent, so the group exists before any kill */
    close(out[1]);
    close(ex[1]);
    kf_str log;
    kf_str_init(&log);
    double deadline = kf_cpu_now() + (timeout_s > 0 ? timeout_s : KF_CPU_DEFAULT_TIMEOUT_S);
    int timed_out = 0, io_err = 0;
    for (;;) {
        double left = deadline - kf_cpu_now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = {out[0], POLLIN, 0};
        int pr = poll(&pf, 1, left > 1e6 ? 1000000000 : (int)(left * 1000) + 1);
        if (pr < 0) {
            if (errno == EINTR) continue;
            io_err = errno;
            break;
        }
        if (pr == 0) continue;
        char buf[8192];
        ssize_t r = read(out[0], buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            io_err = errno;
            break;
        }
        if (r == 0) break; /* every writer (the compiler and its children) is done */
        if (log.len < KF_CPU_LOG_MAX) kf_str_appendn(&log, buf, (size_t)r);
    }
    close(out[0]);
    if (timed_out || io_err) kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int exec_errno = 0;
    ssize_t er = read(ex[0], &exec_errno, sizeof exec_errno);
    close(ex[0]);
    if (er == (ssize_t)sizeof exec_errno) {
        kf_str_free(&log);
        return kf_fail(err, KF_E_UNAVAILABLE, "cannot run %s: %s", argv[0], strerror(exec_errno));
    }
    *output = kf_str_take(&log);
    if (timed_out)
        return kf_fail(err, KF_E_TIMEOUT, "%s ran past its limit of %g s and was killed", argv[0],
                       timeout_s > 0 ? timeout_s : KF_CPU_DEFAULT_TIMEOUT_S);
    if (io_err) return kf_fail(err, KF_E_IO, "reading the output of %s: %s", argv[0], strerror(io_err));
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 0;
}

int kf_cpu_cc_identity(char **ident, kf_err *err) {
    *ident = NULL;
    kf_cpu_cc cc;
    int rc = kf_cpu_cc_init(&cc, err);
    if (rc) return rc;
    char *out = NULL;
    int code = 0;
    if ((rc = kf_cpu_cc_push(&cc, "--version")) != 0) {
        kf_cpu_cc_free(&cc);
        return kf_fail(err, rc, "cpu: out of memory");
    }
    rc = kf_cpu_spawn(cc.argv, 30, &out, &code, err);
    if (rc == 0 && code != 0)
        rc = kf_fail(err, KF_E_UNAVAILABLE, "%s --version failed (exit %d)", cc.argv[0], code);
    if (rc == KF_E_UNAVAILABLE) kf_err_prefix(err, KF_CPU_NO_CC);
    if (rc == 0) {
        size_t n = strcspn(out, "\n");
        out[n] = '\0';
        *ident = kf_asprintf("%s: %s", cc.words, out);
        if (!*ident) rc = kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    }
    free(out);
    kf_cpu_cc_free(&cc);
    return rc;
}

int kf_cpu_available(kf_err *err) {
    char *ident = NULL;
    int rc = kf_cpu_cc_identity(&ident, err);
    free(ident);
    if (rc) return rc;
    const char *tmp = getenv("TMPDIR");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char *dir = kf_asprintf("%s/kforge-cc-%ld-%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid(), (long)ts.tv_nsec);
    if (!dir || mkdir(dir, 0700) != 0) {
        free(dir);
        return kf_fail(err, KF_E_IO, "cpu: cannot make a temporary directory: %s", strerror(errno));
    }
    char *src = kf_asprintf("%s/t.c", dir), *so = kf_asprintf("%s/t.so", dir);
    static const char text[] = "#include <omp.h>\nint kf_probe(void) { return omp_get_max_threads(); }\n";
    kf_cpu_cc cc = {0};
    char *out = NULL;
    int code = 0;
    if (!src || !so) rc = kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    else if (kf_write_file(src, text, sizeof text - 1) != 0)
        rc = kf_fail(err, KF_E_IO, "cpu: cannot write %s", src);
    else if ((rc = kf_cpu_cc_init(&cc, err)) == 0) {
        const char *args[] = {"-fopenmp", "-fPIC", "-shared", "-o", so, src};
        for (size_t i = 0; i < sizeof args / sizeof args[0] && !rc; i++) rc = kf_cpu_cc_push(&cc, args[i]);
        if (rc) rc = kf_fail(err, rc, "cpu: out of memory");
        else rc = kf_cpu_spawn(cc.argv, 60, &out, &code, err);
        if (rc == 0 && code != 0) {
            size_t n = strcspn(out ? out : "", "\n");
            rc = kf_fail(err, KF_E_UNAVAILABLE, "%s cannot build an OpenMP shared object: %.*s; " KF_CPU_NO_CC,
                         cc.argv[0], (int)(n > 300 ? 300 : n), out ? out : "");
        }
    }
    free(out);
    kf_cpu_cc_free(&cc);
    if (src) unlink(src);
    if (so) unlink(so);
    rmdir(dir);
    free(src);
    free(so);
    free(dir);
    return rc;
}
