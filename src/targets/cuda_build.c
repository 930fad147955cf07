/* cuda_build.c: the cuda target's build step (parent side): the program's sources, each
 * after a `#line 1 "FILE"` marker, plus kforge's helper kernel (kf_fill_u64, for fill steps
 * on 8-byte elements) are compiled by NVRTC into a CUBIN for the device's own architecture.
 *
 * The parent never initialises CUDA (see cuda_probe.c): the architecture comes from
 * $KFORGE_CUDA_ARCH ("sm_90" or "90") when set, else from a probe child, and NVRTC runs in a
 * child too, under the build's wall-clock limit, so a compiler crash or hang is a compile
 * error and not the end of kforge.
 *
 * Options (float32 strictness): --fmad=false (no contraction of a*b+c into one fused
 * multiply-add, which rounds once instead of twice: the kernels then give the scalar C
 * semantics, as on the cpu target), --prec-div=true --prec-sqrt=true --ftz=false (IEEE
 * division and square root, denormals kept), -std=c++17. allow_fast_math replaces these with
 * --use_fast_math. Kernels must be `extern "C" __global__` so the runtime finds them by name.
 *
 * Cache: <cache_dir>/<hash>.cubin with the source beside it as <hash>.cu, hash = 64-bit
 * FNV-1a of NVRTC's version, the architecture, the options and the full source; an existing
 * file is reused (b->cached = 1). The CUBIN is written under a temporary name and renamed. */
#include "targets/cuda_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KF_CU_BUILD_TIMEOUT_S 120.0
#define KF_CU_LOG_MAX (1u << 20)

static const char kf_cu_helpers[] =
    "#line 1 \"kforge_helpers.cu\"\n"
    "extern \"C\" __global__ void kf_fill_u64(unsigned long long *p, unsigned long long v, long long n) {\n"
    "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
    "         i += (long long)gridDim.x * blockDim.x)\n"
    "        p[i] = v;\n"
    "}\n";

static const char *const kf_cu_opts_strict[] = {
    "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false", "-std=c++17", NULL,
};
static const char *const kf_cu_opts_fast[] = {"--use_fast_math", "-std=c++17", NULL};

typedef struct kf_cu_job {
    const char *src;          /* full translation unit */
    const char *const *opts;  /* without the architecture */
    char arch[32];            /* "sm_90" */
    const char *dir;          /* cache folder (exists) */
} kf_cu_job;

static uint64_t kf_cu_fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void kf_cu_put(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void kf_cu_reply(int fd, const char *head, const char *log) {
    kf_cu_put(fd, head, strlen(head));
    kf_cu_put(fd, "\n", 1);
    if (log) kf_cu_put(fd, log, strlen(log));
}

/* Child: answers "OK <cached> <path>\n<log>" or "ERR <code> <message>\n<log>". */
static void kf_cu_compile_child(void *ctx, int fd) {
    const kf_cu_job *j = ctx;
    kf_nvrtc_api nv;
    kf_err e;
    kf_err_clear(&e);
    char head[1400];
    if (kf_nvrtc_load(&nv, &e) != 0) {
        snprintf(head, sizeof head, "ERR %d %s", e.code, e.msg);
        kf_cu_reply(fd, head, NULL);
        return;
    }
    int major = 0, minor = 0;
    nv.Version(&major, &minor);
    char archopt[64];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", j->arch);
    char ver[32];
    snprintf(ver, sizeof ver, "nvrtc %d.%d", major, minor);
    uint64_t h = 0xcbf29ce484222325ULL;
    h = kf_cu_fnv(h, ver, strlen(ver) + 1);
    h = kf_cu_fnv(h, archopt, strlen(archopt) + 1);
    for (int i = 0; j->opts[i]; i++) h = kf_cu_fnv(h, j->opts[i], strlen(j->opts[i]) + 1);
    h = kf_cu_fnv(h, j->src, strlen(j->src));
    char *cubin = kf_asprintf("%s/%016llx.cubin", j->dir, (unsigned long long)h);
    char *cu = kf_asprintf("%s/%016llx.cu", j->dir, (unsigned long long)h);
    if (!cubin || !cu) {
        snprintf(head, sizeof head, "ERR %d cuda: out of memory", KF_E_NOMEM);
        kf_cu_reply(fd, head, NULL);
        return;
    }
    if (access(cubin, R_OK) == 0) {
        snprintf(head, sizeof head, "OK 1 %s", cubin);
        kf_cu_reply(fd, head, NULL);
        return;
    }
    kf_write_file(cu, j->src, strlen(j->src));
    const char *opts[32];
    int n = 0;
    opts[n++] = archopt;
    for (int i = 0; j->opts[i] && n < 31; i++) opts[n++] = j->opts[i];
    nvrtcProgram prog = NULL;
    int r = nv.CreateProgram(&prog, j->src, "kernels.cu", 0, NULL, NULL);
    if (r) {
        snprintf(head, sizeof head, "ERR %d cuda: nvrtcCreateProgram: %s", KF_E_COMPILE, nv.GetErrorString(r));
        kf_cu_reply(fd, head, NULL);
        return;
    }
    int cr = nv.CompileProgram(prog, n, opts);
    size_t log_n = 0;
    char *log = NULL;
    if (nv.GetProgramLogSize(prog, &log_n) == 0 && log_n > 1 && (log = malloc(log_n + 1))) {
        if (nv.GetProgramLog(prog, log) != 0) log[0] = '\0';
        log[log_n] = '\0';
        if (strlen(log) > KF_CU_LOG_MAX) log[KF_CU_LOG_MAX] = '\0';
    }
    if (cr) {
        snprintf(head, sizeof head, "ERR %d %s", KF_E_COMPILE, nv.GetErrorString(cr));
        kf_cu_reply(fd, head, log);
        return;
    }
    size_t bin_n = 0;
    char *bin = NULL;
    if (nv.GetCUBINSize(prog, &bin_n) != 0 || !bin_n || !(bin = malloc(bin_n)) || nv.GetCUBIN(prog, bin) != 0) {
        snprintf(head, sizeof head, "ERR %d cuda: NVRTC produced no CUBIN for %s", KF_E_COMPILE, j->arch);
        kf_cu_reply(fd, head, log);
        return;
    }
    int we = kf_write_file(cubin, bin, bin_n); /* writes a temporary file, then renames */
    if (we) snprintf(head, sizeof head, "ERR %d cuda: cannot write %s: %s", KF_E_IO, cubin, strerror(-we));
    else snprintf(head, sizeof head, "OK 0 %s", cubin);
    kf_cu_reply(fd, head, log);
}

/* "sm_90" from $KFORGE_CUDA_ARCH ("sm_90", "90", "compute_90" is refused: a CUBIN needs sm). */
static int kf_cu_arch(char *arch, size_t n, kf_err *err) {
    const char *e = getenv("KFORGE_CUDA_ARCH");
    if (e && *e) {
        const char *digits = strncmp(e, "sm_", 3) == 0 ? e + 3 : e;
        size_t nd = strspn(digits, "0123456789");
        if (nd < 2 || (digits[nd] && !(digits[nd] == 'a' && !digits[nd + 1])))
            return kf_fail(err, KF_E_INVALID, "cuda: KFORGE_CUDA_ARCH='%s' is not an architecture like sm_90", e);
        snprintf(arch, n, "sm_%s", digits);
        return 0;
    }
    kf_cu_device d;
    int rc = kf_cu_probe(&d, err);
    if (rc) return rc;
    snprintf(arch, n, "sm_%d%d", d.cc_major, d.cc_minor);
    return 0;
}

static int kf_cu_source(const kf_program *p, kf_str *s, kf_err *err) {
    for (int i = 0; i < p->n_sources; i++) {
        const char *file = p->sources[i].file ? p->sources[i].file : "source.cu";
        kf_str_append(s, "#line 1 \"");
        for (const char *c = file; *c; c++)
            if (*c != '"' && *c != '\\' && *c != '\n') kf_str_appendn(s, c, 1);
        kf_str_append(s, "\"\n");
        kf_str_append(s, p->sources[i].text ? p->sources[i].text : "");
        kf_str_append(s, "\n");
    }
    for (int k = 0; k < p->n_kernels; k++) {
        const char *nm = p->kernels[k].name;
        int ok = nm && (isalpha((unsigned char)nm[0]) || nm[0] == '_');
        for (const char *c = nm; ok && *c; c++) ok = isalnum((unsigned char)*c) || *c == '_';
        if (!ok) return kf_fail(err, KF_E_INVALID, "cuda: kernel name '%s' is not a C identifier", nm ? nm : "(null)");
    }
    kf_str_append(s, kf_cu_helpers);
    return 0;
}

int kf_cuda_build(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err) {
    memset(b, 0, sizeof *b);
    if (!p) return kf_fail(err, KF_E_INVALID, "cuda: no program");
    if (p->target && strcmp(p->target, "cuda") != 0)
        return kf_fail(err, KF_E_INVALID, "cuda: program is for target '%s'", p->target);
    kf_cu_job job;
    memset(&job, 0, sizeof job);
    job.opts = o && o->allow_fast_math ? kf_cu_opts_fast : kf_cu_opts_strict;
    kf_str src;
    kf_str_init(&src);
    char *dir = NULL, *out = NULL;
    int rc = kf_cu_source(p, &src, err);
    if (!rc) rc = kf_cu_arch(job.arch, sizeof job.arch, err);
    if (!rc && !(dir = kf_build_cache_dir(o, "cuda"))) rc = kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    if (!rc) {
        int e = kf_mkdirs(dir);
        if (e) rc = kf_fail(err, KF_E_IO, "cuda: cannot create cache dir %s: %s", dir, strerror(-e));
    }
    if (!rc) {
        job.src = kf_str_cstr(&src);
        job.dir = dir;
        double t = o && o->timeout_s > 0 ? o->timeout_s : KF_CU_BUILD_TIMEOUT_S;
        rc = kf_cu_in_child(kf_cu_compile_child, &job, t, KF_CU_LOG_MAX + 4096, &out, NULL, err);
        if (rc == KF_E_TIMEOUT || rc == KF_E_IO) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = kf_fail(err, KF_E_COMPILE, "cuda: NVRTC: %s", msg);
        }
    }
    if (!rc) {
        char *nl = strchr(out, '\n');
        const char *log = nl ? nl + 1 : "";
        if (nl) *nl = '\0';
        if (*log) b->log = kf_strdup(log);
        int cached = 0, code = 0, off = 0;
        if (sscanf(out, "OK %d %n", &cached, &off) == 1 && off > 0) {
            b->artifact = kf_strdup(out + off);
            b->cached = cached;
            if (!b->artifact) rc = kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
        } else if (sscanf(out, "ERR %d %n", &code, &off) == 1 && off > 0) {
            if (code == KF_E_COMPILE) {
                char head[900];
                kf_build_log_head(b->log, head, sizeof head);
                rc = kf_fail(err, KF_E_COMPILE, "cuda: compile failed (NVRTC, %s): %s", job.arch,
                             head[0] ? head : out + off);
            } else {
                rc = kf_fail(err, code, "%s", out + off);
            }
        } else {
            rc = kf_fail(err, KF_E_COMPILE, "cuda: the NVRTC child gave no answer");
        }
    }
    if (rc) kf_build_free(b);
    kf_str_free(&src);
    free(dir);
    free(out);
    return rc;
}
