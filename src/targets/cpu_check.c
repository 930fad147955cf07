/* cpu_check.c: before the cpu runtime runs a plan it checks that every step fits the program
 * (kernel and buffer indices, argument counts and kinds, gemm, copy and conv extents, f32
 * gemm operands), so that a bad plan is an error message, never a write outside a slot. This
 * duplicates part of kf_program_validate on purpose: the worker must not trust its input. */
#include "targets/cpu_int.h"

static int kf_cpu_buf_ok(const kf_program *p, int b) { return b >= 0 && b < p->n_bufs; }

static int kf_cpu_range_ok(int64_t off, int64_t bytes, size_t nbytes) {
    return off >= 0 && bytes >= 0 && (uint64_t)bytes <= nbytes && (uint64_t)off <= nbytes - (uint64_t)bytes;
}

static int64_t kf_cpu_numel(const kf_pbuf *b) {
    size_t es = kf_dtype_size(b->desc.dtype);
    return es ? (int64_t)(b->nbytes / es) : 0;
}

/* A rows x cols row-major matrix with leading dimension ld, `batch` of them `stride` apart. */
static int kf_cpu_mat_ok(const kf_program *p, int buf, const char *what, int64_t rows, int64_t cols,
                         int64_t ld, int64_t batch, int64_t stride, int si, kf_err *err) {
    if (!kf_cpu_buf_ok(p, buf)) return kf_fail(err, KF_E_INVALID, "step %d: gemm %s buffer %d out of range", si, what, buf);
    const kf_pbuf *b = &p->bufs[buf];
    if (b->desc.dtype != KF_F32)
        return kf_fail(err, KF_E_UNSUPPORTED, "step %d: gemm %s '%s' is %s; the cpu gemm is f32 only", si,
                       what, b->name, kf_dtype_name(b->desc.dtype));
    if (ld < (cols > 1 ? cols : 1) || stride < 0)
        return kf_fail(err, KF_E_INVALID, "step %d: gemm %s '%s': leading dimension %lld < %lld columns or negative stride",
                       si, what, b->name, (long long)ld, (long long)cols);
    if (rows == 0 || cols == 0 || batch == 0) return 0;
    int64_t t1 = 0, t2 = 0, last = -1; /* elements touched, at most: (batch-1)*stride + (rows-1)*ld + cols */
    if (__builtin_mul_overflow(batch - 1, stride, &t1) || __builtin_mul_overflow(rows - 1, ld, &t2) ||
        __builtin_add_overflow(t1, t2, &last) || __builtin_add_overflow(last, cols, &last) ||
        last > kf_cpu_numel(b))
        return kf_fail(err, KF_E_INVALID, "step %d: gemm %s '%s' needs %lld elements, has %lld", si, what,
                       b->name, (long long)last, (long long)kf_cpu_numel(b));
    return 0;
}

static int kf_cpu_check_launch(const kf_program *p, const kf_step *s, int si, kf_err *err) {
    if (s->kernel < 0 || s->kernel >= p->n_kernels)
        return kf_fail(err, KF_E_INVALID, "step %d: kernel %d out of range", si, s->kernel);
    const kf_pkernel *k = &p->kernels[s->kernel];
    if (s->n_args != k->n_params)
        return kf_fail(err, KF_E_INVALID, "step %d: kernel '%s' takes %d arguments, got %d", si, k->name,
                       k->n_params, s->n_args);
    for (int i = 0; i < s->n_args; i++) {
        if (s->args[i].kind != k->params[i].kind)
            return kf_fail(err, KF_E_INVALID, "step %d: argument %d of '%s' has the wrong kind", si, i, k->name);
        if (s->args[i].kind == KF_KP_PTR && !kf_cpu_buf_ok(p, s->args[i].buf))
            return kf_fail(err, KF_E_INVALID, "step %d: argument %d of '%s' names buffer %d, out of range", si,
                           i, k->name, s->args[i].buf);
    }
    return 0;
}

int kf_cpu_check_steps(const kf_program *p, kf_err *err) {
    for (int si = 0; si < p->n_steps; si++) {
        const kf_step *s = &p->steps[si];
        int rc = 0;
        switch (s->kind) {
        case KF_STEP_LAUNCH:
            rc = kf_cpu_check_launch(p, s, si, err);
            break;
        case KF_STEP_GEMM:
            if (s->m < 0 || s->n < 0 || s->k < 0 || s->batch < 0)
                return kf_fail(err, KF_E_INVALID, "step %d: gemm with a negative size", si);
            rc = kf_cpu_mat_ok(p, s->a, "A", s->trans_a ? s->k : s->m, s->trans_a ? s->m : s->k, s->lda,
                               s->batch, s->stride_a, si, err);
            if (!rc)
                rc = kf_cpu_mat_ok(p, s->b, "B", s->trans_b ? s->n : s->k, s->trans_b ? s->k : s->n, s->ldb,
                                   s->batch, s->stride_b, si, err);
            if (!rc) rc = kf_cpu_mat_ok(p, s->c, "C", s->m, s->n, s->ldc, s->batch, s->stride_c, si, err);
            break;
        case KF_STEP_COPY:
            if (!kf_cpu_buf_ok(p, s->src) || !kf_cpu_buf_ok(p, s->dst))
                return kf_fail(err, KF_E_INVALID, "step %d: copy buffer out of range", si);
            if (!kf_cpu_range_ok(s->src_offset, s->bytes, p->bufs[s->src].nbytes) ||
                !kf_cpu_range_ok(s->dst_offset, s->bytes, p->bufs[s->dst].nbytes))
                return kf_fail(err, KF_E_INVALID, "step %d: copy of %lld bytes outside '%s' or '%s'", si,
                               (long long)s->bytes, p->bufs[s->src].name, p->bufs[s->dst].name);
            break;
        case KF_STEP_FILL:
            if (!kf_cpu_buf_ok(p, s->dst)) return kf_fail(err, KF_E_INVALID, "step %d: fill buffer out of range", si);
            break;
        case KF_STEP_CONV:
            rc = kf_program_check_conv(p, s, si, err);
            break;
        default:
            return kf_fail(err, KF_E_INVALID, "step %d: unknown kind %d", si, (int)s->kind);
        }
        if (rc) return rc;
    }
    return 0;
}
