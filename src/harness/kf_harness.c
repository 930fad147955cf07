/* kf_harness.c: the harness's small shared pieces: status names, default options (with the
 * cache size read from sysfs), hidden seeds, and freeing results. */
#include "harness/kf_harness.h"
#include "harness/kf_session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *kf_status_name(kf_status s) {
    switch (s) {
    case KF_ST_VERIFIED: return "verified";
    case KF_ST_MISMATCH: return "mismatch";
    case KF_ST_COMPILE_ERROR: return "compile_error";
    case KF_ST_CRASHED: return "crashed";
    case KF_ST_TIMEOUT: return "timeout";
    case KF_ST_OOM: return "oom";
    case KF_ST_UNSUPPORTED: return "unsupported";
    case KF_ST_INVALID: return "invalid";
    case KF_ST_ERROR: return "error";
    default: return "unknown";
    }
}

/* "32768K", "2M", "1G" or a plain byte count; 0 if unreadable. */
static long long kf_parse_size(const char *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return 0;
    switch (*end) {
    case 'K': case 'k': return v * 1024LL;
    case 'M': case 'm': return v * 1024LL * 1024LL;
    case 'G': case 'g': return v * 1024LL * 1024LL * 1024LL;
    default: return v;
    }
}

static int kf_read_small(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t r = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[r] = '\0';
    return r ? 0 : -1;
}

long long kf_harness_llc_bytes(void) {
    const char *root = "/sys/devices/system/cpu/cpu0/cache";
    DIR *d = opendir(root);
    if (!d) return 0;
    long long best = 0;
    int best_level = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "index", 5) != 0) continue;
        char path[512], buf[64];
        snprintf(path, sizeof path, "%s/%s/type", root, e->d_name);
        if (kf_read_small(path, buf, sizeof buf) == 0 && strncmp(buf, "Instruction", 11) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s/level", root, e->d_name);
        if (kf_read_small(path, buf, sizeof buf) != 0) continue;
        int level = atoi(buf);
        snprintf(path, sizeof path, "%s/%s/size", root, e->d_name);
        if (kf_read_small(path, buf, sizeof buf) != 0) continue;
        long long size = kf_parse_size(buf);
        if (level > best_level || (level == best_level && size > best)) {
            best_level = level;
            best = size;
        }
    }
    closedir(d);
    return best;
}

long long kf_harness_default_flush_bytes(void) {
    long long llc = kf_harness_llc_bytes();
    return llc > 0 ? 2 * llc : 64LL * 1024 * 1024;
}

void kf_harness_opts_default(kf_harness_opts *o, const kf_target_ops *target) {
    memset(o, 0, sizeof *o);
    o->target = target;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->build.threads = cpus > 0 ? (int)cpus : 1;
    o->build.timeout_s = 120;
    o->trials = 5;
    o->warmup = 3;
    o->timed_runs = 20;
    o->rounds = 4;
    o->atol = 0;
    o->rtol = 0;
    o->run_timeout_s = 30;
    o->mem_limit = 0;
    o->flush_bytes = kf_harness_default_flush_bytes();
    o->seed = 0x6b666f726765ULL; /* "kforge" */
    o->workdir = NULL;
}

void kf_result_free(kf_result *r) {
    if (!r) return;
    free(r->message);
    r->message = NULL;
}

static unsigned long long kf_splitmix64(unsigned long long x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

unsigned long long kf_harness_hidden_base(unsigned long long base) {
    unsigned long long rnd = 0;
    ssize_t got = getrandom(&rnd, sizeof rnd, 0);
    if (got != (ssize_t)sizeof rnd) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, &rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            rnd = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 32) ^
                  (unsigned long long)getpid();
        }
        if (fd >= 0) close(fd);
    }
    return kf_splitmix64(base ^ kf_splitmix64(rnd));
}

unsigned long long kf_harness_trial_seed(unsigned long long hidden, int k) {
    /* 32 bits: every seeding API on the Python side (torch, numpy, random) accepts them. */
    return kf_splitmix64(hidden + 0x632BE59BD9B4E019ULL * (unsigned long long)(k + 1)) & 0xFFFFFFFFULL;
}
