/* cuda_target.c: the cuda target's table of operations: CUDA C compiled by NVRTC, run through
 * the driver API on the device's primary context, all loaded with dlopen (cuda_int.h). Device
 * memory mirrors the harness's host slots, guards included. */
#include "targets/cuda_int.h"

static const kf_target_ops kf_cuda_ops = {
    .name = "cuda",
    .available = kf_cuda_available,
    .build = kf_cuda_build,
    .open = kf_cuda_open,
    .bind = kf_cuda_bind,
    .upload = kf_cuda_upload,
    .download = kf_cuda_download,
    .run = kf_cuda_run,
    .time = kf_cuda_time,
    .close = kf_cuda_close,
    .unlimited_address_space = 1,
    .dev = &kf_cuda_dev_ops,
    .cache_bytes = kf_cuda_cache_bytes,
};

const kf_target_ops *kf_target_cuda(void) { return &kf_cuda_ops; }
