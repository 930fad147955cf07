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
    return kf_lower_render_raw(kernels, NULL, n, target, out, err);
}

int kf_lower_render_raw(kir_kernel *const *kernels, char *const *raw, int n, const char *target, kf_program *out,
                        kf_err *err) {
    int cuda = target && strcmp(target, "cuda") == 0;
    kf_str src;
    kf_str_init(&src);
    kir_launch *geo = cuda ? calloc((size_t)n + 1, sizeof *geo) : NULL;
    kir_kernel **kk = calloc((size_t)n + 1, sizeof *kk);
    int *at = calloc((size_t)n + 1, sizeof *at);
    int rc = 0, nk = 0;
    if ((cuda && !geo) || !kk || !at) rc = kf_fail(err, KF_E_NOMEM, "lowering: out of memory");
    for (int i = 0; !rc && i < n; i++) { /* the KIR kernels, in order (raw ones are text already) */
        if (raw && raw[i]) {
            if (!cuda) rc = kf_fail(err, KF_E_INTERNAL, "lowering: a CUDA kernel template in a %s program", target);
            continue;
        }
        at[nk] = i;
        kk[nk++] = kernels[i];
    }
    if (!rc && cuda) rc = kir_render_cuda(kk, nk, &src, geo, err);
    else if (!rc) rc = kir_render_c(kk, nk, &src, err);
    for (int i = 0; !rc && raw && i < n; i++)
        if (raw[i]) {
            kf_str_append(&src, "\n");
            kf_str_append(&src, raw[i]);
        }
    if (!rc && kf_program_add_source(out, cuda ? "kernels.cu" : "kernels.c", kf_str_cstr(&src)) < 0)
        rc = kf_fail(err, KF_E_NOMEM, "lowering: cannot add the kernel source");
    for (int j = 0; !rc && cuda && j < nk; j++) { /* the renderer's launch geometry */
        for (int si = 0; si < out->n_steps; si++) {
            kf_step *st = &out->steps[si];
            if (st->kind != KF_STEP_LAUNCH || st->kernel != at[j]) continue;
            memcpy(st->grid, geo[j].grid, sizeof st->grid);
            memcpy(st->block, geo[j].block, sizeof st->block);
            st->shared_bytes = geo[j].shared_bytes;
        }
    }
    free(geo);
    free(kk);
    free(at);
    kf_str_free(&src);
    return rc;
}
