/* cpu_run.c: the cpu target runs a plan: launch steps call the kernel's trampoline with the
 * prepared argument array, gemm steps call cblas_sgemm (row-major, one call per batch entry),
 * copy steps memmove bytes, fill steps set every element in the buffer's dtype, conv steps
 * run the reference loop (cpu_conv.c); `time`
 * measures whole runs with CLOCK_MONOTONIC after the harness's cache flush. */
#include "targets/cpu_int.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

static void kf_cpu_gemm(const kf_cpu_rt *rt, const kf_step *s) {
    if (s->m == 0 || s->n == 0) return;
    const float *a = (const float *)rt->slots[s->a].data;
    const float *b = (const float *)rt->slots[s->b].data;
    float *c = (float *)rt->slots[s->c].data;
    for (int64_t i = 0; i < s->batch; i++)
        cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans,
                    (blasint)s->m, (blasint)s->n, (blasint)s->k, (float)s->alpha, a + i * s->stride_a,
                    (blasint)s->lda, b + i * s->stride_b, (blasint)s->ldb, (float)s->beta, c + i * s->stride_c,
                    (blasint)s->ldc);
}

/* float32 -> float16 / bfloat16 bits, round to nearest even (NaN stays NaN). */
static uint16_t kf_cpu_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(s | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0u));
    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u);
    if (a < 0x38800000u) return (uint16_t)(s | (uint32_t)nearbyintf(fabsf(f) * 16777216.0f));
    return (uint16_t)(s | ((a + 0xFFFu + ((a >> 13) & 1u) - 0x38000000u) >> 13));
}

static uint16_t kf_cpu_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static void kf_cpu_fill(unsigned char *dst, const kf_pbuf *b, double v) {
    size_t es = kf_dtype_size(b->desc.dtype), n = es ? b->nbytes / es : 0;
    unsigned char elem[8] = {0};
    switch (b->desc.dtype) {
    case KF_F32: { float x = (float)v; memcpy(elem, &x, 4); break; }
    case KF_F64: memcpy(elem, &v, 8); break;
    case KF_F16: { uint16_t x = kf_cpu_f16((float)v); memcpy(elem, &x, 2); break; }
    case KF_BF16: { uint16_t x = kf_cpu_bf16((float)v); memcpy(elem, &x, 2); break; }
    case KF_I64: { int64_t x = (int64_t)v; memcpy(elem, &x, 8); break; }
    case KF_I32: { int32_t x = (int32_t)v; memcpy(elem, &x, 4); break; }
    case KF_I16: { int16_t x = (int16_t)v; memcpy(elem, &x, 2); break; }
    case KF_I8: { int8_t x = (int8_t)v; memcpy(elem, &x, 1); break; }
    case KF_U8: { uint8_t x = (uint8_t)v; memcpy(elem, &x, 1); break; }
    case KF_BOOL: elem[0] = v != 0; break;
    default: return;
    }
    int zero = 1;
    for (size_t i = 0; i < es; i++) zero &= elem[i] == 0;
    if (zero) {
        memset(dst, 0, n * es);
        return;
    }
    for (size_t i = 0; i < n; i++) memcpy(dst + i * es, elem, es);
}

int kf_cpu_run(void *vrt, kf_err *err) {
    kf_cpu_rt *rt = vrt;
    if (!rt || !rt->slots) return kf_fail(err, KF_E_INVALID, "cpu: run before bind");
    const kf_program *p = rt->p;
    for (int si = 0; si < p->n_steps; si++) {
        const kf_step *s = &p->steps[si];
        switch (s->kind) {
        case KF_STEP_LAUNCH:
            rt->launch[si].fn(rt->launch[si].argv);
            break;
        case KF_STEP_GEMM:
            kf_cpu_gemm(rt, s);
            break;
        case KF_STEP_COPY:
            memmove(rt->slots[s->dst].data + s->dst_offset, rt->slots[s->src].data + s->src_offset, (size_t)s->bytes);
            break;
        case KF_STEP_FILL:
            kf_cpu_fill(rt->slots[s->dst].data, &p->bufs[s->dst], s->value);
            break;
        case KF_STEP_CONV: {
            const kf_conv_step *c = &s->conv;
            kf_conv_reference(c, (const float *)rt->slots[c->x].data + c->x_offset,
                              (const float *)rt->slots[c->w].data + c->w_offset,
                              c->bias >= 0 ? (const float *)rt->slots[c->bias].data + c->bias_offset : NULL,
                              (float *)rt->slots[c->y].data + c->y_offset);
            break;
        }
        default:
            return kf_fail(err, KF_E_INVALID, "cpu: step %d has unknown kind %d", si, (int)s->kind);
        }
    }
    return 0;
}

int kf_cpu_time(void *rt, int n, void (*flush)(void *ctx), void *flush_ctx, double *ms, kf_err *err) {
    for (int i = 0; i < n; i++) {
        if (flush) flush(flush_ctx);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = kf_cpu_run(rt, err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc) return rc;
        ms[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
    }
    return 0;
}
