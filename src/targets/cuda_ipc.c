/* cuda_ipc.c: the cuda target's device data path, first half: mapping the oracle's CUDA IPC
 * memory into the worker (cuIpcOpenMemHandle with lazy peer access, one mapping per distinct
 * handle of a request, all closed by unmap) and staging the buffers' device mirrors for a run
 * without the host: guard bytes and poison written with device memsets, inputs and params
 * copied device-to-device from the oracle's tensors. The checks are in cuda_compare.c. */
#include "targets/cuda_dev.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kf_cu_dev_get(kf_cu_rt *rt, kf_cu_dev **out, kf_err *err) {
    if (rt->devd) {
        *out = rt->devd;
        return 0;
    }
    kf_cu_dev *d = calloc(1, sizeof *d);
    if (!d) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    void *o = rt->cu.lib ? dlsym(rt->cu.lib, "cuIpcOpenMemHandle_v2") : NULL;
    if (!o && rt->cu.lib) o = dlsym(rt->cu.lib, "cuIpcOpenMemHandle");
    void *c = rt->cu.lib ? dlsym(rt->cu.lib, "cuIpcCloseMemHandle") : NULL;
    if (!o || !c) {
        free(d);
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda: the driver has no cuIpcOpenMemHandle/cuIpcCloseMemHandle");
    }
    memcpy(&d->IpcOpenMemHandle, &o, sizeof o);
    memcpy(&d->IpcCloseMemHandle, &c, sizeof c);
    rt->devd = d;
    *out = d;
    return 0;
}

static void kf_cuda_dev_unmap(void *vrt) {
    kf_cu_rt *rt = vrt;
    kf_cu_dev *d = rt ? rt->devd : NULL;
    if (!d) return;
    for (int i = 0; i < d->n_maps; i++)
        if (d->maps[i]) d->IpcCloseMemHandle(d->maps[i]);
    free(d->maps);
    free(d->handles);
    free(d->ptr);
    free(d->nbytes);
    d->maps = NULL;
    d->handles = NULL;
    d->ptr = NULL;
    d->nbytes = NULL;
    d->n_maps = d->n_mems = 0;
}

static int kf_cuda_dev_map(void *vrt, const kf_dev_mem *mems, int n, kf_err *err) {
    kf_cu_rt *rt = vrt;
    kf_cu_dev *d;
    int rc = kf_cu_dev_get(rt, &d, err);
    if (rc) return rc;
    kf_cuda_dev_unmap(rt);
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    size_t cap = n > 0 ? (size_t)n : 1;
    d->ptr = calloc(cap, sizeof *d->ptr);
    d->nbytes = calloc(cap, sizeof *d->nbytes);
    d->maps = calloc(cap, sizeof *d->maps);
    d->handles = calloc(cap, sizeof *d->handles);
    if (!d->ptr || !d->nbytes || !d->maps || !d->handles) {
        kf_cuda_dev_unmap(rt);
        return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    }
    d->n_mems = n;
    for (int i = 0; i < n; i++) {
        d->nbytes[i] = mems[i].nbytes;
        if (!mems[i].nbytes) continue;
        int k = 0;
        while (k < d->n_maps && memcmp(d->handles[k], mems[i].handle, KF_DEV_HANDLE_BYTES) != 0) k++;
        if (k == d->n_maps) {
            kf_cu_ipc_handle h;
            memcpy(h.reserved, mems[i].handle, KF_DEV_HANDLE_BYTES);
            CUdeviceptr base = 0;
            CUresult r = d->IpcOpenMemHandle(&base, h, KF_CU_IPC_LAZY_ENABLE_PEER_ACCESS);
            if (r) {
                char buf[300];
                kf_cu_errstr(&rt->cu, r, buf, sizeof buf);
                kf_cuda_dev_unmap(rt);
                return kf_fail(err, KF_E_UNAVAILABLE, "cuda: cuIpcOpenMemHandle: %s", buf);
            }
            memcpy(d->handles[k], mems[i].handle, KF_DEV_HANDLE_BYTES);
            d->maps[k] = base;
            d->n_maps++;
        }
        d->ptr[i] = d->maps[k] + (CUdeviceptr)mems[i].offset;
    }
    return 0;
}

static int kf_cuda_dev_stage(void *vrt, const int *src, kf_err *err) {
    kf_cu_rt *rt = vrt;
    kf_cu_dev *d = rt->devd;
    const kf_program *p = rt->p;
    kf_cu_api *a = &rt->cu;
    if (!rt->slots) return kf_fail(err, KF_E_INVALID, "cuda: stage before bind");
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    CUresult r = 0;
    for (int i = 0; i < p->n_bufs && !r; i++) {
        size_t nb = rt->slots[i].nbytes;
        CUdeviceptr m = rt->mem[i];
        r = a->MemsetD8Async(m, KF_GUARD_BYTE, KF_GUARD_BYTES, rt->stream);
        if (!r) r = a->MemsetD8Async(m + KF_GUARD_BYTES + nb, KF_GUARD_BYTE, KF_GUARD_BYTES, rt->stream);
        if (r || !nb) continue;
        int s = src ? src[i] : -1;
        if (s >= 0) {
            if (!d || s >= d->n_mems || d->nbytes[s] != nb)
                return kf_fail(err, KF_E_INTERNAL, "cuda: stage: buffer '%s' has no source of %zu bytes",
                               p->bufs[i].name, nb);
            r = a->MemcpyDtoDAsync(m + KF_GUARD_BYTES, d->ptr[s], nb, rt->stream);
        } else {
            r = a->MemsetD8Async(m + KF_GUARD_BYTES, KF_POISON_BYTE, nb, rt->stream);
        }
    }
    if (!r) r = a->StreamSynchronize(rt->stream);
    return kf_cuda_check(rt, r, "staging the buffers on the device", err);
}

void kf_cuda_dev_setup(kf_cu_rt *rt, const kf_build *b, const kf_build_opts *o) {
    if (o && o->cache_dir && *o->cache_dir) {
        rt->dev_cache = kf_strdup(o->cache_dir);
    } else if (b && b->artifact) {
        char *tmp = kf_strdup(b->artifact);
        rt->dev_cache = tmp ? kf_strdup(dirname(tmp)) : NULL;
        free(tmp);
    }
}

void kf_cuda_dev_free(kf_cu_rt *rt) {
    if (!rt) return;
    if (rt->devd) {
        kf_cuda_dev_unmap(rt);
        kf_cu_dev_module_free(rt, rt->devd);
        free(rt->devd);
        rt->devd = NULL;
    }
    free(rt->dev_cache);
    rt->dev_cache = NULL;
}

const kf_dev_ops kf_cuda_dev_ops = {
    .map = kf_cuda_dev_map,
    .unmap = kf_cuda_dev_unmap,
    .stage = kf_cuda_dev_stage,
    .check = kf_cuda_dev_check,
};
