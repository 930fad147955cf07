/* lower_render.c: renders a lowering's KIR kernels into its program for the target: C
 * ("kernels.c") for cpu, CUDA C++ ("kernels.cu") for cuda, where each launch step also gets
 * the grid, block and shared-memory size the renderer chose for its kernel. Shared by the
 * naive lowering and the fusing lowering of the search agent. */
#include "agents/lower.h"

#include <stdlib.h>
#include <string.h>

int kf_lower_is_target(const char *target) {
    return target && (strcmp(target, "cpu") == 0 || strcmp(target, "cuda") == 0);
}

int kf_lower_render(kir_kernel *const *kernels, int n, const char *target, kf_program *out,
                    kf_err *err) {
    int cuda = target && strcmp(target, "cuda") == 0;
    kf_str src;
    kf_str_init(&src);
    kir_launch *geo = cuda ? calloc((size_t)n + 1, sizeof *geo) : NULL;
    int rc = 0;
    if (cuda && !geo) rc = kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    else if (cuda) rc = kir_render_cuda(kernels, n, &src, geo, err);
    else rc = kir_render_c(kernels, n, &src, err);
    if (!rc && kf_program_add_source(out, cuda ? "kernels.cu" : "kernels.c", kf_str_cstr(&src)) < 0)
        rc = kf_fail(err, KF_E_NOMEM, "lowering: cannot add the kernel source");
    for (int i = 0; !rc && cuda && i < out->n_steps; i++) { /* the renderer's launch geometry */
        kf_step *st = &out->steps[i];
        if (st->kind != KF_STEP_LAUNCH || st->kernel < 0 || st->kernel >= n) continue;
        memcpy(st->grid, geo[st->kernel].grid, sizeof st->grid);
        memcpy(st->block, geo[st->kernel].block, sizeof st->block);
        st->shared_bytes = geo[st->kernel].shared_bytes;
    }
    free(geo);
    kf_str_free(&src);
    return rc;
}
