/* cuda_runtime.c: the cuda target's worker side, loading: open (cuInit, the device's primary
 * context, the CUBIN module, one stream, each launch step's function and argument array,
 * cuBLAS and cuBLASLt when the plan has gemm steps, cuDNN when it has conv steps, the L2 flush
 * buffer), bind (a device allocation mirroring every slot, guards included, then each conv
 * step's cuDNN algorithm and workspace, cuda_dnn.c, and each gemm step's measured algorithm,
 * cuda_gemm.c), upload/download (the whole slot each way, so the
 * harness sees overruns of the guards), close. Running is in cuda_run.c.
 *
 * A kernel whose module defines the device global kf_gridbar_NAME (kir_render_cuda does
 * for kernels with grid-wide barriers) is launched cooperatively, with its grid clamped to
 * the blocks that fit on the device at once. The stream is a blocking one, so it is ordered
 * with the synchronous host<->device copies of upload and download. */
#include "targets/cuda_int.h"
#include "targets/cpu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_CU_FLUSH_MIN (64u << 20)

int kf_cuda_check(kf_cu_rt *rt, CUresult r, const char *what, kf_err *err) {
    if (!r) return 0;
    char buf[300];
    kf_cu_errstr(&rt->cu, r, buf, sizeof buf);
    /* errors after which the context is unusable: illegal address (700), launch failure
     * (719), illegal instruction (715), misaligned address (716), invalid pc (718),
     * hardware stack error (714), assert (710), and what follows them */
    int sticky = r == 700 || r == 710 || (r >= 714 && r <= 719) || r == 999;
    if (sticky && !rt->dead) {
        rt->dead = 1;
        snprintf(rt->dead_msg, sizeof rt->dead_msg, "%s: %s", what, buf);
    }
    if (r == KF_CU_ERROR_OUT_OF_MEMORY) return kf_fail(err, KF_E_NOMEM, "cuda: %s: %s", what, buf);
    return kf_fail(err, KF_E_INVALID, "cuda: %s: %s", what, buf);
}

static void kf_cu_rt_free(kf_cu_rt *rt) {
    if (!rt) return;
    kf_cu_api *a = &rt->cu;
    if (rt->ctx && a->CtxSetCurrent) a->CtxSetCurrent(rt->ctx);
    kf_cuda_free_dnn(rt);
    kf_cuda_dev_free(rt);
    kf_cuda_free_gemm(rt);
    if (rt->mem && rt->p)
        for (int i = 0; i < rt->p->n_bufs; i++)
            if (rt->mem[i]) a->MemFree(rt->mem[i]);
    if (rt->flush) a->MemFree(rt->flush);
    if (rt->tmp) a->MemFree(rt->tmp);
    if (rt->launch && rt->p)
        for (int i = 0; i < rt->p->n_steps; i++) {
            free(rt->launch[i].params);
            free(rt->launch[i].vals);
        }
    free(rt->launch);
    free(rt->mem);
    if (rt->stream) a->StreamDestroy(rt->stream);
    if (rt->mod) a->ModuleUnload(rt->mod);
    if (rt->ctx_retained) a->DevicePrimaryCtxRelease(rt->dev);
    kf_cu_unload(a);
    free(rt);
}

void kf_cuda_close(void *rt) { kf_cu_rt_free(rt); }

/* The kernel's function, and whether it needs a cooperative launch. */
static int kf_cu_function(kf_cu_rt *rt, const char *name, CUfunction *fn, int *coop, kf_err *err) {
    kf_cu_api *a = &rt->cu;
    CUresult r = a->ModuleGetFunction(fn, rt->mod, name);
    if (r)
        return kf_fail(err, KF_E_COMPILE, "cuda: kernel '%s' is not in the compiled module (declare it "
                       "extern \"C\" __global__ with exactly that name)", name);
    char sym[300];
    snprintf(sym, sizeof sym, "kf_gridbar_%s", name);
    CUdeviceptr p = 0;
    size_t n = 0;
    *coop = a->ModuleGetGlobal(&p, &n, rt->mod, sym) == 0;
    return 0;
}

static int kf_cu_prepare_launch(kf_cu_rt *rt, int si, CUfunction fn, int coop, kf_err *err) {
    const kf_step *s = &rt->p->steps[si];
    kf_cu_launch *l = &rt->launch[si];
    kf_cu_api *a = &rt->cu;
    l->fn = fn;
    l->coop = coop;
    size_t n = s->n_args ? (size_t)s->n_args : 1;
    l->params = calloc(n, sizeof *l->params);
    l->vals = calloc(n, sizeof *l->vals);
    if (!l->params || !l->vals) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    for (int i = 0; i < s->n_args; i++) {
        const kf_karg *g = &s->args[i];
        switch (g->kind) {
        case KF_KP_I32: l->vals[i].i32 = (int32_t)g->i; break;
        case KF_KP_I64: l->vals[i].i64 = g->i; break;
        case KF_KP_F32: l->vals[i].f32 = (float)g->f; break;
        default: break; /* pointers are set by bind */
        }
        l->params[i] = &l->vals[i];
    }
    for (int d = 0; d < 3; d++) {
        int64_t lim = d == 0 ? 0x7fffffffLL : 65535;
        if (s->grid[d] < 1 || s->grid[d] > lim || s->block[d] < 1 || s->block[d] > 1024)
            return kf_fail(err, KF_E_INVALID, "step %d: grid [%lld, %lld, %lld] / block [%lld, %lld, %lld] out of "
                           "range (grid x < 2^31, y and z <= 65535; block dims 1..1024)", si,
                           (long long)s->grid[0], (long long)s->grid[1], (long long)s->grid[2],
                           (long long)s->block[0], (long long)s->block[1], (long long)s->block[2]);
    }
    l->grid = (unsigned)s->grid[0];
    l->block = (unsigned)s->block[0];
    l->shared = (unsigned)s->shared_bytes;
    int64_t threads = s->block[0] * s->block[1] * s->block[2];
    int max_threads = 1024;
    a->DeviceGetAttribute(&max_threads, KF_CU_ATTR_MAX_THREADS_PER_BLOCK, rt->dev);
    if (threads > max_threads)
        return kf_fail(err, KF_E_INVALID, "step %d: %lld threads per block, the device allows %d", si,
                       (long long)threads, max_threads);
    if (s->shared_bytes < 0 || s->shared_bytes > (1 << 30))
        return kf_fail(err, KF_E_INVALID, "step %d: shared_bytes %lld out of range", si, (long long)s->shared_bytes);
    if (s->shared_bytes > 48 * 1024) {
        int optin = 0;
        a->DeviceGetAttribute(&optin, KF_CU_ATTR_MAX_SHARED_OPTIN, rt->dev);
        if (s->shared_bytes > optin)
            return kf_fail(err, KF_E_INVALID, "step %d: %lld bytes of shared memory, the device allows %d per block",
                           si, (long long)s->shared_bytes, optin);
        CUresult r = a->FuncSetAttribute(fn, KF_CU_FUNC_ATTR_MAX_DYNAMIC_SHARED, (int)s->shared_bytes);
        if (r) return kf_cu_fail(a, err, KF_E_INVALID, r, "cuFuncSetAttribute(max dynamic shared memory)");
    }
    if (coop) {
        if (!rt->info.coop)
            return kf_fail(err, KF_E_UNSUPPORTED, "step %d: kernel needs a cooperative launch, which %s lacks", si,
                           rt->info.name);
        if (s->grid[1] != 1 || s->grid[2] != 1)
            return kf_fail(err, KF_E_INVALID, "step %d: a kernel with grid barriers needs a 1-D grid", si);
        int per_sm = 0;
        CUresult r = a->OccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, (int)threads, (size_t)s->shared_bytes);
        if (r) return kf_cu_fail(a, err, KF_E_INVALID, r, "cuOccupancyMaxActiveBlocksPerMultiprocessor");
        int64_t fit = (int64_t)per_sm * rt->info.sms;
        if (fit < 1)
            return kf_fail(err, KF_E_INVALID, "step %d: not one block of the cooperative kernel fits on the device", si);
        l->grid = (unsigned)(s->grid[0] < fit ? s->grid[0] : fit);
    }
    return 0;
}

int kf_cuda_open(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **out, kf_err *err) {
    *out = NULL;
    if (!p || !b || !b->artifact) return kf_fail(err, KF_E_INVALID, "cuda: open needs a program and a built artifact");
    int rc = kf_cpu_check_steps(p, err);
    if (rc) return rc;
    kf_cu_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    rt->p = p;
    rt->allow_tf32 = o && o->allow_tf32;
    const char *g = getenv("KFORGE_CUDA_GRAPH");
    rt->use_graph = g && strcmp(g, "0") == 0 ? 0 : g && strcmp(g, "require") == 0 ? 2 : 1;
    kf_cuda_dev_setup(rt, b, o);
    kf_cu_api *a = &rt->cu;
    char *bin = NULL;
    size_t bin_n = 0;
    CUresult r = 0;
    rc = kf_cu_load(a, err);
    if (!rc) rc = kf_cu_query(a, &rt->info, &rt->dev, err);
    if (!rc && (r = a->DevicePrimaryCtxRetain(&rt->ctx, rt->dev)) != 0)
        rc = kf_cu_fail(a, err, KF_E_UNAVAILABLE, r, "cuDevicePrimaryCtxRetain");
    if (!rc) {
        rt->ctx_retained = 1;
        if ((r = a->CtxSetCurrent(rt->ctx)) != 0) rc = kf_cu_fail(a, err, KF_E_UNAVAILABLE, r, "cuCtxSetCurrent");
    }
    if (!rc) {
        int e = kf_read_file(b->artifact, &bin, &bin_n);
        if (e) rc = kf_fail(err, KF_E_IO, "cuda: cannot read %s: %s", b->artifact, strerror(-e));
    }
    if (!rc && (r = a->ModuleLoadData(&rt->mod, bin)) != 0)
        rc = kf_cu_fail(a, err, KF_E_COMPILE, r, "loading the CUBIN (built for another GPU?)");
    free(bin);
    if (!rc && (r = a->StreamCreate(&rt->stream, 0)) != 0) rc = kf_cu_fail(a, err, KF_E_INTERNAL, r, "cuStreamCreate");
    if (!rc) {
        int coop = 0;
        rc = kf_cu_function(rt, KF_CU_FILL_KERNEL, &rt->fill_u64, &coop, err);
    }
    rt->launch = calloc(p->n_steps ? (size_t)p->n_steps : 1, sizeof *rt->launch);
    rt->mem = calloc(p->n_bufs ? (size_t)p->n_bufs : 1, sizeof *rt->mem);
    if (!rc && (!rt->launch || !rt->mem)) rc = kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    int need_blas = 0, need_dnn = 0;
    size_t tmp = 0;
    for (int si = 0; si < p->n_steps && !rc; si++) {
        const kf_step *s = &p->steps[si];
        if (s->kind == KF_STEP_LAUNCH) {
            CUfunction fn;
            int coop = 0;
            rc = kf_cu_function(rt, p->kernels[s->kernel].name, &fn, &coop, err);
            if (!rc) rc = kf_cu_prepare_launch(rt, si, fn, coop, err);
        } else if (s->kind == KF_STEP_GEMM) {
            need_blas = 1;
        } else if (s->kind == KF_STEP_CONV) {
            need_dnn = 1;
        } else if (s->kind == KF_STEP_COPY && s->src == s->dst && (size_t)s->bytes > tmp) {
            tmp = (size_t)s->bytes;
        }
    }
    if (!rc && need_blas) rc = kf_cuda_open_gemm(rt, err);
    if (!rc && need_dnn) rc = kf_cuda_open_dnn(rt, err);
    if (!rc && tmp && (r = a->MemAlloc(&rt->tmp, tmp)) != 0) rc = kf_cu_fail(a, err, KF_E_NOMEM, r, "cuMemAlloc");
    if (!rc) {
        rt->tmp_bytes = tmp;
        size_t l2 = rt->info.l2_bytes > 0 ? (size_t)rt->info.l2_bytes : 0;
        rt->flush_bytes = 2 * l2 > KF_CU_FLUSH_MIN ? 2 * l2 : KF_CU_FLUSH_MIN;
        if ((r = a->MemAlloc(&rt->flush, rt->flush_bytes)) != 0)
            rc = kf_cu_fail(a, err, KF_E_NOMEM, r, "allocating the L2 flush buffer");
    }
    if (rc) {
        kf_cu_rt_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

int kf_cuda_bind(void *vrt, const kf_slot *slots, int n, kf_err *err) {
    kf_cu_rt *rt = vrt;
    const kf_program *p = rt->p;
    kf_cu_api *a = &rt->cu;
    if (n != p->n_bufs) return kf_fail(err, KF_E_INVALID, "cuda: bind got %d slots for %d buffers", n, p->n_bufs);
    for (int i = 0; i < n; i++)
        if (!slots[i].base || slots[i].nbytes < p->bufs[i].nbytes)
            return kf_fail(err, KF_E_INVALID, "cuda: slot %d ('%s') holds %zu bytes, the buffer needs %zu", i,
                           p->bufs[i].name, slots[i].nbytes, p->bufs[i].nbytes);
    for (int i = 0; i < n; i++) {
        if (rt->mem[i]) {
            a->MemFree(rt->mem[i]);
            rt->mem[i] = 0;
        }
        CUresult r = a->MemAlloc(&rt->mem[i], slots[i].nbytes + 2 * (size_t)KF_GUARD_BYTES);
        if (r) {
            char what[200];
            snprintf(what, sizeof what, "allocating %zu bytes for buffer '%s'", slots[i].nbytes, p->bufs[i].name);
            return kf_cuda_check(rt, r, what, err);
        }
    }
    rt->slots = slots;
    for (int si = 0; si < p->n_steps; si++) {
        const kf_step *s = &p->steps[si];
        if (s->kind != KF_STEP_LAUNCH) continue;
        for (int i = 0; i < s->n_args; i++)
            if (s->args[i].kind == KF_KP_PTR) rt->launch[si].vals[i].ptr = rt->mem[s->args[i].buf] + KF_GUARD_BYTES;
    }
    int rc = kf_cuda_prepare_convs(rt, err);
    if (!rc) rc = kf_cuda_prepare_gemms(rt, err);
    return rc;
}

static int kf_cu_buf_ok(kf_cu_rt *rt, int buf, kf_err *err) {
    if (!rt || !rt->slots) return kf_fail(err, KF_E_INVALID, "cuda: upload or download before bind");
    if (buf < 0 || buf >= rt->p->n_bufs) return kf_fail(err, KF_E_INVALID, "cuda: buffer %d out of range", buf);
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    return 0;
}

int kf_cuda_upload(void *vrt, int buf, kf_err *err) {
    kf_cu_rt *rt = vrt;
    int rc = kf_cu_buf_ok(rt, buf, err);
    if (rc) return rc;
    const kf_slot *s = &rt->slots[buf];
    CUresult r = rt->cu.MemcpyHtoD(rt->mem[buf], s->base, s->nbytes + 2 * (size_t)KF_GUARD_BYTES);
    return kf_cuda_check(rt, r, "uploading a buffer", err);
}

int kf_cuda_download(void *vrt, int buf, kf_err *err) {
    kf_cu_rt *rt = vrt;
    int rc = kf_cu_buf_ok(rt, buf, err);
    if (rc) return rc;
    const kf_slot *s = &rt->slots[buf];
    CUresult r = rt->cu.MemcpyDtoH(s->base, rt->mem[buf], s->nbytes + 2 * (size_t)KF_GUARD_BYTES);
    return kf_cuda_check(rt, r, "downloading a buffer", err);
}
