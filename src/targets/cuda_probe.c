/* cuda_probe.c: questions about the GPU asked without initialising CUDA in the calling
 * process. CUDA state does not survive fork, and the harness forks a worker per candidate,
 * so the parent must never call cuInit: availability and the device's properties (compute
 * capability for NVRTC's -arch, L2 size for the cache flush) are read by a short-lived
 * forked child that writes its answer into a pipe. The same query runs directly in the
 * worker, which owns its CUDA context. The device is $KFORGE_CUDA_DEVICE (default 0). */
#include "targets/cuda_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KF_CU_PROBE_TIMEOUT_S 60.0

int kf_cu_device_ordinal(void) {
    const char *e = getenv("KFORGE_CUDA_DEVICE");
    return e && *e ? atoi(e) : 0;
}

static double kf_cu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int kf_cu_in_child(void (*fn)(void *ctx, int fd), void *ctx, double timeout_s, size_t max, char **out,
                   int *exit_code, kf_err *err) {
    *out = NULL;
    if (exit_code) *exit_code = -1;
    int fds[2];
    if (pipe(fds) != 0) return kf_fail(err, KF_E_IO, "cuda: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return kf_fail(err, KF_E_IO, "cuda: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        setpgid(0, 0);
        fn(ctx, fds[1]);
        close(fds[1]);
        _exit(0);
    }
    setpgid(pid, pid);
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    double deadline = kf_cu_now() + (timeout_s > 0 ? timeout_s : KF_CU_PROBE_TIMEOUT_S);
    while (!rc) {
        double left = deadline - kf_cu_now();
        if (left <= 0) {
            rc = kf_fail(err, KF_E_TIMEOUT, "cuda: child process did not finish within %.0f s; killed",
                         timeout_s > 0 ? timeout_s : KF_CU_PROBE_TIMEOUT_S);
            break;
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (len + 1 >= cap) {
            char *nb = cap * 2 <= max + 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) { /* over max: keep reading and drop the rest */
                char sink[4096];
                ssize_t r = read(fds[0], sink, sizeof sink);
                if (r <= 0) break;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fds[0], buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fds[0]);
    if (rc) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!rc && WIFSIGNALED(st))
        rc = kf_fail(err, KF_E_IO, "cuda: child process died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (exit_code && WIFEXITED(st)) *exit_code = WEXITSTATUS(st);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

int kf_cu_query(kf_cu_api *a, kf_cu_device *d, CUdevice *dev, kf_err *err) {
    memset(d, 0, sizeof *d);
    d->ordinal = kf_cu_device_ordinal();
    CUresult r = a->Init(0);
    if (r) {
        char buf[300];
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: cuInit failed: %s",
                       kf_cu_errstr(a, r, buf, sizeof buf));
    }
    int count = 0;
    r = a->DeviceGetCount(&count);
    if (r || count <= 0)
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: no CUDA device");
    if (d->ordinal < 0 || d->ordinal >= count)
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: KFORGE_CUDA_DEVICE=%d but %d device%s",
                       d->ordinal, count, count == 1 ? "" : "s");
    if ((r = a->DeviceGet(dev, d->ordinal)) != 0)
        return kf_cu_fail(a, err, KF_E_UNAVAILABLE, r, "cuDeviceGet");
    a->DeviceGetName(d->name, (int)sizeof d->name - 1, *dev);
    a->DeviceGetAttribute(&d->cc_major, KF_CU_ATTR_CC_MAJOR, *dev);
    a->DeviceGetAttribute(&d->cc_minor, KF_CU_ATTR_CC_MINOR, *dev);
    a->DeviceGetAttribute(&d->sms, KF_CU_ATTR_MULTIPROCESSOR_COUNT, *dev);
    a->DeviceGetAttribute(&d->l2_bytes, KF_CU_ATTR_L2_CACHE_SIZE, *dev);
    a->DeviceGetAttribute(&d->coop, KF_CU_ATTR_COOPERATIVE_LAUNCH, *dev);
    a->DriverGetVersion(&d->driver_version);
    return 0;
}

static void kf_cu_write_all(int fd, const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Child: "OK ordinal major minor sms l2 coop driver\nNAME\n" or "ERR code\nmessage\n". */
static void kf_cu_probe_child(void *ctx, int fd) {
    int want_nvrtc = ctx != NULL;
    kf_cu_api a;
    kf_cu_device d;
    CUdevice dev;
    kf_err e;
    kf_err_clear(&e);
    char line[1400];
    int rc = kf_cu_load(&a, &e);
    if (!rc) rc = kf_cu_query(&a, &d, &dev, &e);
    if (!rc && want_nvrtc) {
        kf_nvrtc_api n;
        rc = kf_nvrtc_load(&n, &e);
        if (!rc) kf_nvrtc_unload(&n);
    }
    if (rc) snprintf(line, sizeof line, "ERR %d\n%s\n", rc, e.msg);
    else
        snprintf(line, sizeof line, "OK %d %d %d %d %d %d %d\n%s\n", d.ordinal, d.cc_major, d.cc_minor, d.sms,
                 d.l2_bytes, d.coop, d.driver_version, d.name);
    kf_cu_write_all(fd, line);
}

static int kf_cu_probe_run(kf_cu_device *d, int want_nvrtc, kf_err *err) {
    memset(d, 0, sizeof *d);
    char *out = NULL;
    int rc = kf_cu_in_child(kf_cu_probe_child, want_nvrtc ? (void *)d : NULL, KF_CU_PROBE_TIMEOUT_S, 1 << 16,
                            &out, NULL, err);
    if (rc) return kf_err_prefix(err, "cuda target unavailable: probing the GPU");
    int code = 0;
    if (sscanf(out, "OK %d %d %d %d %d %d %d", &d->ordinal, &d->cc_major, &d->cc_minor, &d->sms, &d->l2_bytes,
               &d->coop, &d->driver_version) == 7) {
        const char *nl = strchr(out, '\n');
        if (nl) snprintf(d->name, sizeof d->name, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
        free(out);
        return 0;
    }
    if (sscanf(out, "ERR %d", &code) == 1) {
        const char *nl = strchr(out, '\n');
        rc = kf_fail(err, code ? code : KF_E_UNAVAILABLE, "%.*s", nl ? (int)strcspn(nl + 1, "\n") : 0,
                     nl ? nl + 1 : "");
    } else {
        rc = kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: the GPU probe gave no answer");
    }
    free(out);
    return rc;
}

int kf_cu_probe(kf_cu_device *d, kf_err *err) { return kf_cu_probe_run(d, 0, err); }

long long kf_cuda_cache_bytes(void) {
    kf_cu_device d;
    kf_err err;
    kf_err_clear(&err);
    return kf_cu_probe(&d, &err) == 0 && d.l2_bytes > 0 ? (long long)d.l2_bytes : 0;
}

int kf_cuda_available(kf_err *err) {
    kf_cu_device d;
    return kf_cu_probe_run(&d, 1, err);
}
