/* cpu_runtime.c: the cpu target's worker side, loading: open (dlopen the shared object,
 * resolve each kernel's trampoline, set the OpenMP and OpenBLAS thread counts, prepare the
 * argument arrays of every launch step), bind (keep the slots, point pointer arguments at
 * their data), close. Running is in cpu_run.c. */
#include "targets/cpu_int.h"

#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void kf_cpu_rt_free(kf_cpu_rt *rt) {
    if (!rt) return;
    if (rt->launch && rt->p)
        for (int i = 0; i < rt->p->n_steps; i++) {
            free(rt->launch[i].argv);
            free(rt->launch[i].vals);
        }
    free(rt->launch);
    free(rt->slots);
    if (rt->so) dlclose(rt->so);
    free(rt);
}

void kf_cpu_close(void *rt) { kf_cpu_rt_free(rt); }

static int kf_cpu_prepare_launch(kf_cpu_rt *rt, int si, void (*fn)(void **), kf_err *err) {
    const kf_step *s = &rt->p->steps[si];
    kf_cpu_launch *l = &rt->launch[si];
    l->fn = fn;
    size_t n = s->n_args ? (size_t)s->n_args : 1;
    l->argv = calloc(n, sizeof *l->argv);
    l->vals = calloc(n, sizeof *l->vals);
    if (!l->argv || !l->vals) return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    for (int i = 0; i < s->n_args; i++) {
        const kf_karg *a = &s->args[i];
        switch (a->kind) {
        case KF_KP_I32: l->vals[i].i32 = (int32_t)a->i; break;
        case KF_KP_I64: l->vals[i].i64 = a->i; break;
        case KF_KP_F32: l->vals[i].f32 = (float)a->f; break;
        default: break; /* pointers are set by bind */
        }
        l->argv[i] = a->kind == KF_KP_PTR ? NULL : &l->vals[i];
    }
    return 0;
}

/* The OpenMP runtime a shared object uses (libgomp, libomp) keeps a pool of worker threads
 * that outlives the parallel regions; unloading it with the last dlclose would leave those
 * threads running unmapped code. So the runtime that defines omp_set_num_threads for this
 * object is re-opened RTLD_NODELETE, which keeps it loaded for the life of the process. */
static void kf_cpu_pin_openmp(void *so) {
    void *f = dlsym(so, "omp_set_num_threads");
    Dl_info info;
    if (!f || !dladdr(f, &info) || !info.dli_fname) return;
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    if (h) dlclose(h); /* drops only the reference taken here; NODELETE stays */
}

int kf_cpu_open(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **out, kf_err *err) {
    *out = NULL;
    if (!p || !b || !b->artifact) return kf_fail(err, KF_E_INVALID, "cpu: open needs a program and a built artifact");
    int rc = kf_cpu_check_steps(p, err);
    if (rc) return rc;
    kf_cpu_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    rt->p = p;
    rt->so = dlopen(b->artifact, RTLD_NOW | RTLD_LOCAL);
    if (!rt->so) {
        const char *why = dlerror();
        rc = kf_fail(err, KF_E_IO, "cpu: cannot load %s: %s", b->artifact, why ? why : "?");
        kf_cpu_rt_free(rt);
        return rc;
    }
    kf_cpu_pin_openmp(rt->so);
    void (**tramp)(void **) = calloc(p->n_kernels ? (size_t)p->n_kernels : 1, sizeof *tramp);
    rt->launch = calloc(p->n_steps ? (size_t)p->n_steps : 1, sizeof *rt->launch);
    if (!tramp || !rt->launch) rc = kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    for (int k = 0; k < p->n_kernels && !rc; k++) {
        char sym[300];
        snprintf(sym, sizeof sym, "kf_tramp_%s", p->kernels[k].name);
        void *f = dlsym(rt->so, sym);
        if (!f) rc = kf_fail(err, KF_E_INVALID, "cpu: %s has no %s (built from another program?)", b->artifact, sym);
        else memcpy(&tramp[k], &f, sizeof f); /* object pointer -> function pointer, as POSIX allows */
    }
    for (int si = 0; si < p->n_steps && !rc; si++)
        if (p->steps[si].kind == KF_STEP_LAUNCH) rc = kf_cpu_prepare_launch(rt, si, tramp[p->steps[si].kernel], err);
    free(tramp);
    if (!rc && o && o->threads > 0) {
        void *f = dlsym(rt->so, "kf_rt_set_threads");
        int (*set_threads)(int) = NULL;
        if (f) memcpy(&set_threads, &f, sizeof f);
        if (set_threads) set_threads(o->threads);
        openblas_set_num_threads(o->threads);
    }
    if (rc) {
        kf_cpu_rt_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

int kf_cpu_bind(void *vrt, const kf_slot *slots, int n, kf_err *err) {
    kf_cpu_rt *rt = vrt;
    const kf_program *p = rt->p;
    if (n != p->n_bufs) return kf_fail(err, KF_E_INVALID, "cpu: bind got %d slots for %d buffers", n, p->n_bufs);
    for (int i = 0; i < n; i++)
        if (!slots[i].data || slots[i].nbytes < p->bufs[i].nbytes)
            return kf_fail(err, KF_E_INVALID, "cpu: slot %d ('%s') holds %zu bytes, the buffer needs %zu", i,
                           p->bufs[i].name, slots[i].nbytes, p->bufs[i].nbytes);
    kf_slot *copy = malloc((n ? (size_t)n : 1) * sizeof *copy);
    if (!copy) return kf_fail(err, KF_E_NOMEM, "cpu: out of memory");
    if (n) memcpy(copy, slots, (size_t)n * sizeof *copy);
    free(rt->slots);
    rt->slots = copy;
    for (int si = 0; si < p->n_steps; si++) {
        const kf_step *s = &p->steps[si];
        if (s->kind != KF_STEP_LAUNCH) continue;
        for (int i = 0; i < s->n_args; i++)
            if (s->args[i].kind == KF_KP_PTR) rt->launch[si].argv[i] = copy[s->args[i].buf].data;
    }
    return 0;
}
