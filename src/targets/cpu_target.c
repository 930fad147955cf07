/* cpu_target.c: the cpu target's table of operations (C with OpenMP, compiled by the system
 * compiler into a shared object; see cpu_build.c for the calling convention). Host memory:
 * kernels run directly on the harness's slots, so upload and download do nothing. */
#include "targets/cpu_int.h"

static int kf_cpu_noop(void *rt, int buf, kf_err *err) { return 0; }

static const kf_target_ops kf_cpu_ops = {
    .name = "cpu",
    .available = kf_cpu_available,
    .build = kf_cpu_build,
    .open = kf_cpu_open,
    .bind = kf_cpu_bind,
    .upload = kf_cpu_noop,
    .download = kf_cpu_noop,
    .run = kf_cpu_run,
    .time = kf_cpu_time,
    .close = kf_cpu_close,
};

const kf_target_ops *kf_target_cpu(void) { return &kf_cpu_ops; }
