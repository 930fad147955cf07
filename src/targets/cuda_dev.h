/* cuda_dev.h: the state of the cuda target's device data path, shared by cuda_ipc.c (mapping
 * the oracle's IPC memory, staging the buffers) and cuda_compare.c (the device checks).
 * Internal to src/targets. */
#ifndef KF_CUDA_DEV_H
#define KF_CUDA_DEV_H

#include "targets/cuda_int.h"

typedef struct { char reserved[KF_DEV_HANDLE_BYTES]; } kf_cu_ipc_handle;
#define KF_CU_IPC_LAZY_ENABLE_PEER_ACCESS 1

typedef struct kf_cu_dev {
    /* entry points beyond kf_cu_api, resolved from the same libcuda handle */
    CUresult (*IpcOpenMemHandle)(CUdeviceptr *, kf_cu_ipc_handle, unsigned);
    CUresult (*IpcCloseMemHandle)(CUdeviceptr);
    /* the mapped mems of the current request */
    int n_mems;
    CUdeviceptr *ptr;              /* per mem: mapping base + offset (0 for empty mems) */
    unsigned long long *nbytes;    /* per mem */
    int n_maps;
    CUdeviceptr *maps;             /* distinct mappings (one per distinct handle) */
    unsigned char (*handles)[KF_DEV_HANDLE_BYTES];
    /* the checks' module (cuda_compare.c) */
    CUmodule mod;
    CUfunction bytes_fn, close1_fn, close2_fn;
    CUdeviceptr scratch;           /* partials, then one result record per job */
    size_t scratch_bytes;
} kf_cu_dev;

/* cuda_ipc.c: the state, created on first use (resolves the IPC entry points). */
int kf_cu_dev_get(kf_cu_rt *rt, kf_cu_dev **out, kf_err *err);
/* cuda_compare.c */
int kf_cu_dev_module(kf_cu_rt *rt, kf_cu_dev *d, kf_err *err);
void kf_cu_dev_module_free(kf_cu_rt *rt, kf_cu_dev *d);
int kf_cuda_dev_check(void *rt, const kf_dev_job *jobs, int n, kf_dev_sum *out, kf_err *err);

#endif
