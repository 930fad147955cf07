/* cuda_compare.c: the cuda target's device data path, second half: the checks of
 * kf_devdata.h run as kernels on the device (source and semantics: cuda_devcheck_src.h), so
 * that only a summary per check reaches the host.
 *
 * The kernels are compiled once by NVRTC in the worker, with the strict float options of
 * cuda_build.c, for the device's own architecture, and cached beside the programs' CUBINs as
 * devcheck-<hash>.cubin (hash: FNV-1a of the architecture, the options and the source).
 * KF_E_UNAVAILABLE when NVRTC cannot be loaded (the harness then keeps the host path). */
#include "targets/cuda_dev.h"
#include "targets/cuda_devcheck_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kf_dc_opts[] = {
    "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false", "-std=c++17", NULL,
};

static unsigned long long kf_dc_fnv(unsigned long long h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* NVRTC in this process: the CUBIN of the checks for arch into *bin. */
static int kf_dc_compile(const char *archopt, char **bin, size_t *bin_n, kf_err *err) {
    kf_nvrtc_api nv;
    int rc = kf_nvrtc_load(&nv, err);
    if (rc) return rc;
    const char *opts[16];
    int n = 0;
    opts[n++] = archopt;
    for (int i = 0; kf_dc_opts[i]; i++) opts[n++] = kf_dc_opts[i];
    nvrtcProgram prog = NULL;
    int r = nv.CreateProgram(&prog, kf_cuda_devcheck_src, "kforge_devcheck.cu", 0, NULL, NULL);
    if (!r) r = nv.CompileProgram(prog, n, opts);
    if (r) {
        char log[2048] = "";
        size_t ln = 0;
        if (prog && nv.GetProgramLogSize(prog, &ln) == 0 && ln > 1 && ln < sizeof log) nv.GetProgramLog(prog, log);
        rc = kf_fail(err, KF_E_INTERNAL, "cuda: compiling the device checks: %s %s", nv.GetErrorString(r), log);
    } else if (nv.GetCUBINSize(prog, bin_n) != 0 || !*bin_n || !(*bin = malloc(*bin_n)) ||
               nv.GetCUBIN(prog, *bin) != 0) {
        rc = kf_fail(err, KF_E_INTERNAL, "cuda: NVRTC produced no CUBIN for the device checks");
    }
    if (prog) nv.DestroyProgram(&prog);
    kf_nvrtc_unload(&nv);
    return rc;
}

int kf_cu_dev_module(kf_cu_rt *rt, kf_cu_dev *d, kf_err *err) {
    if (d->mod) return 0;
    kf_cu_api *a = &rt->cu;
    char archopt[64];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=sm_%d%d", rt->info.cc_major, rt->info.cc_minor);
    unsigned long long h = 0xcbf29ce484222325ULL;
    h = kf_dc_fnv(h, archopt, strlen(archopt) + 1);
    for (int i = 0; kf_dc_opts[i]; i++) h = kf_dc_fnv(h, kf_dc_opts[i], strlen(kf_dc_opts[i]) + 1);
    h = kf_dc_fnv(h, kf_cuda_devcheck_src, strlen(kf_cuda_devcheck_src));
    char *path = rt->dev_cache ? kf_asprintf("%s/devcheck-%016llx.cubin", rt->dev_cache, h) : NULL;
    char *bin = NULL;
    size_t bin_n = 0;
    CUresult r = 1;
    if (path && kf_read_file(path, &bin, &bin_n) == 0) {
        r = a->ModuleLoadData(&d->mod, bin);
        free(bin);
        bin = NULL;
    }
    int rc = 0;
    if (r) {
        d->mod = NULL;
        rc = kf_dc_compile(archopt, &bin, &bin_n, err);
        if (!rc && (r = a->ModuleLoadData(&d->mod, bin)) != 0)
            rc = kf_cu_fail(a, err, KF_E_INTERNAL, r, "loading the device checks' CUBIN");
        if (!rc && path && kf_mkdirs(rt->dev_cache) == 0) kf_write_file(path, bin, bin_n);
        free(bin);
    }
    free(path);
    if (rc) return rc;
    if ((r = a->ModuleGetFunction(&d->bytes_fn, d->mod, "kf_dc_bytes")) != 0 ||
        (r = a->ModuleGetFunction(&d->close1_fn, d->mod, "kf_dc_close1")) != 0 ||
        (r = a->ModuleGetFunction(&d->close2_fn, d->mod, "kf_dc_close2")) != 0) {
        a->ModuleUnload(d->mod);
        d->mod = NULL;
        return kf_cu_fail(a, err, KF_E_INTERNAL, r, "the device checks' kernels");
    }
    return 0;
}

void kf_cu_dev_module_free(kf_cu_rt *rt, kf_cu_dev *d) {
    if (d->scratch) rt->cu.MemFree(d->scratch);
    if (d->mod) rt->cu.ModuleUnload(d->mod);
    d->scratch = 0;
    d->scratch_bytes = 0;
    d->mod = NULL;
}

static int kf_dc_dtype(kf_dtype dt) {
    switch (dt) {
    case KF_F32: return KF_DC_F32;
    case KF_F64: return KF_DC_F64;
    case KF_F16: return KF_DC_F16;
    case KF_BF16: return KF_DC_BF16;
    case KF_I64: return KF_DC_I64;
    case KF_I32: return KF_DC_I32;
    case KF_I16: return KF_DC_I16;
    case KF_I8: return KF_DC_I8;
    case KF_U8: return KF_DC_U8;
    case KF_BOOL: return KF_DC_BOOL;
    default: return -1;
    }
}

/* The device address a job reads, and how many bytes are there. */
static int kf_dc_addr(kf_cu_rt *rt, const kf_dev_ref *ref, CUdeviceptr *ptr, unsigned long long *avail,
                      kf_err *err) {
    kf_cu_dev *d = rt->devd;
    if (ref->buf >= 0) {
        if (ref->buf >= rt->p->n_bufs) return kf_fail(err, KF_E_INTERNAL, "cuda: check of buffer %d", ref->buf);
        size_t nb = rt->slots[ref->buf].nbytes;
        CUdeviceptr m = rt->mem[ref->buf];
        if (ref->region == KF_DEV_GUARD_BEFORE) { *ptr = m; *avail = KF_GUARD_BYTES; }
        else if (ref->region == KF_DEV_GUARD_AFTER) { *ptr = m + KF_GUARD_BYTES + nb; *avail = KF_GUARD_BYTES; }
        else { *ptr = m + KF_GUARD_BYTES; *avail = nb; }
        return 0;
    }
    if (!d || ref->mem < 0 || ref->mem >= d->n_mems) return kf_fail(err, KF_E_INTERNAL, "cuda: check of mem %d", ref->mem);
    *ptr = d->ptr[ref->mem];
    *avail = d->nbytes[ref->mem];
    return 0;
}

static unsigned kf_dc_blocks(unsigned long long units) {
    unsigned long long b = (units + KF_DC_THREADS - 1) / KF_DC_THREADS;
    if (b < 1) b = 1;
    return b > KF_DC_MAX_BLOCKS ? KF_DC_MAX_BLOCKS : (unsigned)b;
}

/* Enqueues job j, writing its record at rec. */
static int kf_dc_enqueue(kf_cu_rt *rt, const kf_dev_job *j, CUdeviceptr parts, CUdeviceptr rec, kf_err *err) {
    kf_cu_dev *d = rt->devd;
    kf_cu_api *a = &rt->cu;
    CUdeviceptr pa = 0, pb = 0;
    unsigned long long na = 0, nb = 0;
    int rc = kf_dc_addr(rt, &j->a, &pa, &na, err);
    int use_b = j->kind == KF_DJ_BYTES_EQ || j->kind == KF_DJ_CLOSE;
    if (!rc && use_b) rc = kf_dc_addr(rt, &j->b, &pb, &nb, err);
    if (rc) return rc;
    CUresult r = a->MemsetD8Async(rec, 0, sizeof(kf_dc_final), rt->stream);
    if (j->kind == KF_DJ_BYTES_CONST || j->kind == KF_DJ_BYTES_EQ) {
        unsigned long long n = j->bytes;
        if (n > na || (use_b && n > nb)) return kf_fail(err, KF_E_INTERNAL, "cuda: byte check beyond its memory");
        if (!r) r = a->MemsetD8Async(rec + 8, 0xFF, 8, rt->stream); /* first = none */
        if (!r && n) {
            CUdeviceptr out = rec;
            unsigned c = j->byte;
            int ub = use_b;
            void *params[] = {&pa, &pb, &c, &ub, &n, &out};
            r = a->LaunchKernel(d->bytes_fn, kf_dc_blocks(n / 16 + 1), 1, 1, KF_DC_THREADS, 1, 1, 0, rt->stream,
                                params, NULL);
        }
        return kf_cuda_check(rt, r, "device byte check", err);
    }
    int dt = kf_dc_dtype(j->dtype);
    if (dt < 0) return kf_fail(err, KF_E_UNSUPPORTED, "cuda: device check of dtype %s", kf_dtype_name(j->dtype));
    long long n = j->numel;
    unsigned long long need = (unsigned long long)n * kf_dtype_size(j->dtype);
    if (n < 0 || need > na || (use_b && need > nb)) return kf_fail(err, KF_E_INTERNAL, "cuda: value check beyond its memory");
    if (!r) r = a->MemsetD8Async(rec + 8, 0xFF, 16, rt->stream); /* first = worst = -1 */
    if (!r && n > 0) {
        int mode = j->kind == KF_DJ_NONZERO ? 1 : 0;
        double atol = j->atol, rtol = j->rtol;
        unsigned blocks = kf_dc_blocks((unsigned long long)n);
        int nparts = (int)blocks;
        void *p1[] = {&pa, &pb, &dt, &n, &atol, &rtol, &mode, &parts};
        r = a->LaunchKernel(d->close1_fn, blocks, 1, 1, KF_DC_THREADS, 1, 1, 0, rt->stream, p1, NULL);
        void *p2[] = {&parts, &nparts, &pa, &pb, &dt, &atol, &rtol, &mode, &rec};
        if (!r) r = a->LaunchKernel(d->close2_fn, 1, 1, 1, KF_DC_THREADS, 1, 1, 0, rt->stream, p2, NULL);
    }
    return kf_cuda_check(rt, r, "device value check", err);
}

int kf_cuda_dev_check(void *vrt, const kf_dev_job *jobs, int n, kf_dev_sum *out, kf_err *err) {
    kf_cu_rt *rt = vrt;
    kf_cu_api *a = &rt->cu;
    kf_cu_dev *d;
    int rc = kf_cu_dev_get(rt, &d, err);
    if (!rc) rc = kf_cu_dev_module(rt, d, err);
    if (rc || n <= 0) return rc;
    if (!rt->slots) return kf_fail(err, KF_E_INVALID, "cuda: check before bind");
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    size_t parts_bytes = KF_DC_MAX_BLOCKS * sizeof(kf_dc_part);
    size_t need = parts_bytes + (size_t)n * sizeof(kf_dc_final);
    CUresult r = 0;
    if (need > d->scratch_bytes) {
        if (d->scratch) a->MemFree(d->scratch);
        d->scratch = 0;
        d->scratch_bytes = 0;
        if ((r = a->MemAlloc(&d->scratch, need)) != 0) return kf_cuda_check(rt, r, "allocating the checks' scratch", err);
        d->scratch_bytes = need;
    }
    for (int i = 0; i < n && !rc; i++)
        rc = kf_dc_enqueue(rt, &jobs[i], d->scratch, d->scratch + parts_bytes + (size_t)i * sizeof(kf_dc_final), err);
    if (rc) return rc;
    kf_dc_final *fin = calloc((size_t)n, sizeof *fin);
    if (!fin) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    r = a->StreamSynchronize(rt->stream);
    if (!r) r = a->MemcpyDtoH(fin, d->scratch + parts_bytes, (size_t)n * sizeof *fin);
    for (int i = 0; i < n && !r; i++) {
        const kf_dev_job *j = &jobs[i];
        kf_dev_sum *s = &out[i];
        memset(s, 0, sizeof *s);
        s->count = (long long)fin[i].count;
        if (j->kind == KF_DJ_BYTES_CONST || j->kind == KF_DJ_BYTES_EQ) {
            s->index = s->count ? (long long)fin[i].first : -1;
            s->worst_index = -1;
            if (s->count && j->kind == KF_DJ_BYTES_CONST) {
                CUdeviceptr pa = 0;
                unsigned long long na = 0;
                unsigned char byte = 0;
                kf_err e2;
                if (kf_dc_addr(rt, &j->a, &pa, &na, &e2) == 0) r = a->MemcpyDtoH(&byte, pa + (CUdeviceptr)s->index, 1);
                s->got = byte;
            }
            continue;
        }
        s->index = fin[i].first;
        s->worst_index = fin[i].worst;
        s->got = fin[i].got;
        s->expected = fin[i].expected;
        s->tol = fin[i].tol;
        s->worst_got = fin[i].worst_got;
        s->worst_expected = fin[i].worst_expected;
        s->worst_tol = fin[i].worst_tol;
        s->worst_ratio = fin[i].worst_ratio;
        if (j->kind == KF_DJ_NONZERO) s->index = s->worst_index = -1;
    }
    free(fin);
    return kf_cuda_check(rt, r, "reading the device checks", err);
}
