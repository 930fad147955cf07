/* cpu_build.c: the cpu target's build step (parent side): the program's sources plus
 * generated trampolines become one C file, compiled into a shared object in the cache.
 *
 * Calling convention. For every plan kernel NAME the build appends
 *     void kf_tramp_NAME(void **a) { NAME(a[0], *(int64_t *)a[1], *(float *)a[2], ...); }
 * a[i] points at argument i: a ptr argument is the buffer's data pointer itself (void *, which
 * C converts to whatever T * the kernel declares); an i32, i64 or f32 argument is passed by
 * value, read from the int32_t / int64_t / float that a[i] points at. The runtime calls the
 * trampoline once per launch step (grid and block are ignored on the cpu). The build also
 * appends `int kf_rt_set_threads(int n)`, which calls omp_set_num_threads inside the shared
 * object, so OpenMP is set through the libgomp the kernels use and kforge itself need not
 * link it. Each source is preceded by `#line 1 "FILE"` so compiler messages name the
 * program's own files.
 *
 * Flags: -std=gnu11 -O3 -march=native -mprefer-vector-width=512 -fopenmp -fPIC -shared
 * -fno-fast-math -ffp-contract=off -Werror=implicit-function-declaration -Werror=int-conversion
 * -lm. GCC tunes recent Intel cores for 256-bit vectors even where AVX-512 exists; the
 * generated loops are long, regular and compute-bound often enough (a direct convolution runs
 * about 1.4x faster with 512-bit vectors) that the wider vectors are preferred; on a CPU
 * without AVX-512 the option changes nothing. Explicit fused multiply-adds (KIR_E_FMA, fmaf)
 * are still emitted where a kernel asks for them (multiply-accumulate loops).
 * -ffp-contract=off stops the compiler fusing a*b+c into an FMA, which rounds once instead
 * of twice: with it float32 kernels give the same bits as the scalar C semantics (and as
 * PyTorch's unfused elementwise code) whatever the CPU. The two -Werror flags turn a kernel
 * missing from the sources or a plan param kind that disagrees with the kernel's (a pointer
 * passed as an integer) into compile errors instead of wrong runs. allow_fast_math replaces
 * -fno-fast-math -ffp-contract=off with -ffast-math.
 *
 * Cache: <cache_dir>/<hash>.so (with the source beside it as <hash>.c), hash = 64-bit
 * FNV-1a of the compiler's identity (command and first line of --version), the CPU model
 * (-march=native depends on it), the flags and the full source. An existing file is reused
 * (b->cached = 1). The compiler writes a temporary name that is renamed into place, so an
 * interrupted or concurrent build never leaves a broken .so under the final name. */
#include "targets/cpu_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const kf_cpu_flags_strict[] = {
    "-std=gnu11", "-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp", "-fPIC", "-shared",
    "-fno-fast-math", "-ffp-contract=off", "-Werror=implicit-function-declaration", "-Werror=int-conversion", NULL,
};
static const char *const kf_cpu_flags_fast[] = {
    "-std=gnu11", "-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp", "-fPIC", "-shared",
    "-ffast-math",
    "-Werror=implicit-function-declaration", "-Werror=int-conversion", NULL,
};

int kf_cpu_ident_ok(const char *s) {
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

static uint64_t kf_fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The "model name" line of /proc/cpuinfo, or "" where there is none. */
static char *kf_cpu_model(void) {
    char *info = NULL;
    size_t len = 0;
    if (kf_read_file("/proc/cpuinfo", &info, &len) != 0) return kf_strdup("");
    char *m = strstr(info, "model name");
    if (!m) m = strstr(info, "CPU part"); /* arm */
    char *out = m ? kf_asprintf("%.*s", (int)strcspn(m, "\n"), m) : kf_strdup("");
    free(info);
    return out;
}

/* The program's sources, each after a #line marker, then the trampolines. */
static int kf_cpu_source(const kf_program *p, kf_str *s, kf_err *err) {
    for (int i = 0; i < p->n_sources; i++) {
        const char *file = p->sources[i].file ? p->sources[i].file : "source.c";
        kf_str_append(s, "#line 1 \"");
        for (const char *c = file; *c; c++)
            if (*c != '"' && *c != '\\' && *c != '\n') kf_str_appendn(s, c, 1);
        kf_str_append(s, "\"\n");
        kf_str_append(s, p->sources[i].text ? p->sources[i].text : "");
        kf_str_append(s, "\n");
    }
    kf_str_append(s, "#line 1 \"kforge_trampolines.c\"\n#include <stdint.h>\n#ifdef _OPENMP\n"
                     "#include <omp.h>\n#endif\n");
    for (int k = 0; k < p->n_kernels; k++) {
        const kf_pkernel *pk = &p->kernels[k];
        if (!kf_cpu_ident_ok(pk->name))
            return kf_fail(err, KF_E_INVALID, "cpu: kernel name '%s' is not a C identifier",
                           pk->name ? pk->name : "(null)");
        kf_str_appendf(s, "void kf_tramp_%s(void **a);\nvoid kf_tramp_%s(void **a) { %s(", pk->name,
                       pk->name, pk->name);
        for (int i = 0; i < pk->n_params; i++) {
            const char *sep = i ? ", " : "";
            switch (pk->params[i].kind) {
            case KF_KP_PTR: kf_str_appendf(s, "%sa[%d]", sep, i); break;
            case KF_KP_I32: kf_str_appendf(s, "%s*(int32_t *)a[%d]", sep, i); break;
            case KF_KP_I64: kf_str_appendf(s, "%s*(int64_t *)a[%d]", sep, i); break;
            case KF_KP_F32: kf_str_appendf(s, "%s*(float *)a[%d]", sep, i); break;
            default:
                return kf_fail(err, KF_E_INVALID, "cpu: kernel '%s' param %d has unknown kind %d",
                               pk->name, i, (int)pk->params[i].kind);
            }
        }
        kf_str_appendf(s, "); }\n");
    }
    kf_str_append(s, "int kf_rt_set_threads(int n);\nint kf_rt_set_threads(int n) {\n#ifdef _OPENMP\n"
                     "    if (n > 0) omp_set_num_threads(n);\n    return omp_get_max_threads();\n"
                     "#else\n    (void)n;\n    return 1;\n#endif\n}\n");
    return 0;
}

static int kf_cpu_compile(const char *src_path, const char *tmp_so, const char *const *flags,
                          double timeout_s, kf_build *b, kf_err *err) {
    kf_cpu_cc cc;
    int rc = kf_cpu_cc_init(&cc, err);
    if (rc) return rc;
    for (int i = 0; flags[i] && !rc; i++) rc = kf_cpu_cc_push(&cc, flags[i]);
    const char *tail[] = {"-o", tmp_so, src_path, "-lm"};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0] && !rc; i++) rc = kf_cpu_cc_push(&cc, tail[i]);
    if (rc) {
        kf_cpu_cc_free(&cc);
        return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    }
    char *out = NULL;
    int code = 0;
    rc = kf_cpu_spawn(cc.argv, timeout_s, &out, &code, err);
    if (out && *out) b->log = out;
    else free(out);
    if (rc == KF_E_TIMEOUT) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = kf_fail(err, KF_E_COMPILE, "cpu: compile timed out: %s", msg);
    } else if (rc == KF_E_UNAVAILABLE) {
        kf_err_prefix(err, "no C compiler: install gcc (apt-get install gcc) or set KFORGE_CC");
    } else if (rc == 0 && code != 0) {
        char head[900];
        kf_build_log_head(b->log, head, sizeof head);
        rc = kf_fail(err, KF_E_COMPILE, "cpu: compile failed (%s exit %d): %s", cc.argv[0], code,
                     head[0] ? head : "(no compiler output)");
    }
    kf_cpu_cc_free(&cc);
    return rc;
}

int kf_cpu_build(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err) {
    memset(b, 0, sizeof *b);
    if (!p) return kf_fail(err, KF_E_INVALID, "cpu: no program");
    if (p->target && strcmp(p->target, "cpu") != 0)
        return kf_fail(err, KF_E_INVALID, "cpu: program is for target '%s'", p->target);
    const char *const *flags = o && o->allow_fast_math ? kf_cpu_flags_fast : kf_cpu_flags_strict;
    kf_str src;
    kf_str_init(&src);
    char *ident = NULL, *model = NULL, *dir = NULL, *src_path = NULL, *so = NULL, *tmp = NULL;
    int rc = kf_cpu_source(p, &src, err);
    if (!rc) rc = kf_cpu_cc_identity(&ident, err);
    if (!rc) {
        model = kf_cpu_model();
        dir = kf_build_cache_dir(o, "cpu");
        if (!model || !dir) rc = kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    }
    if (!rc) {
        uint64_t h = 0xcbf29ce484222325ULL;
        h = kf_fnv1a(h, ident, strlen(ident) + 1);
        h = kf_fnv1a(h, model, strlen(model) + 1);
        for (int i = 0; flags[i]; i++) h = kf_fnv1a(h, flags[i], strlen(flags[i]) + 1);
        h = kf_fnv1a(h, kf_str_cstr(&src), src.len);
        int e = kf_mkdirs(dir);
        if (e != 0) rc = kf_fail(err, KF_E_IO, "cpu: cannot create cache dir %s: %s", dir, strerror(-e));
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        src_path = kf_asprintf("%s/%016llx.c", dir, (unsigned long long)h);
        so = kf_asprintf("%s/%016llx.so", dir, (unsigned long long)h);
        tmp = kf_asprintf("%s/%016llx.so.tmp.%ld.%ld", dir, (unsigned long long)h, (long)getpid(),
                          (long)ts.tv_nsec);
        if (!rc && (!src_path || !so || !tmp)) rc = kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    }
    if (!rc && access(so, R_OK) == 0) {
        b->artifact = so;
        b->cached = 1;
        so = NULL;
    } else if (!rc) {
        int e = kf_write_file(src_path, kf_str_cstr(&src), src.len);
        if (e != 0) rc = kf_fail(err, KF_E_IO, "cpu: cannot write %s: %s", src_path, strerror(-e));
        if (!rc) rc = kf_cpu_compile(src_path, tmp, flags, o ? o->timeout_s : 0, b, err);
        if (!rc && rename(tmp, so) != 0)
            rc = kf_fail(err, KF_E_IO, "cpu: cannot rename %s to %s: %s", tmp, so, strerror(errno));
        if (rc) unlink(tmp);
        if (!rc) {
            b->artifact = so;
            so = NULL;
        }
    }
    kf_str_free(&src);
    free(ident);
    free(model);
    free(dir);
    free(src_path);
    free(so);
    free(tmp);
    return rc;
}
