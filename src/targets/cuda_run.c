/* cuda_run.c: the cuda target runs a plan on its one stream: launch steps with
 * cuLaunchKernel (cuLaunchCooperativeKernel for kernels with grid barriers), gemm steps with
 * the cuBLASLt algorithm or plain cuBLAS call chosen at bind (cuda_gemm.c), copy steps with
 * cuMemcpyDtoDAsync (through a staging buffer when source and destination are the same
 * buffer), fill steps with cuMemsetD8/16/32Async or the kf_fill_u64 helper kernel for 8-byte
 * elements, conv steps with cuDNN (cuda_dnn.c).
 *
 * Timing: CUDA events around the whole plan; before each timed run the L2 cache is flushed
 * by writing a device buffer of twice its size (cuMemsetD8Async, outside the events; the
 * harness's host-cache flush callback is not needed and not called). After one untimed run
 * the plan is captured into a CUDA graph and the timed runs are graph replays (fewer launch
 * gaps, as the harness's timing protocol intends for a verified plan); if capture is refused
 * (some driver or library path that cannot be captured) the timed runs launch the plan step
 * by step. $KFORGE_CUDA_GRAPH=0 turns graphs off; =require makes a refused capture an error
 * (tests use it to prove a plan is captured). */
#include "targets/cuda_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32 -> float16 / bfloat16 bits, round to nearest even (NaN stays NaN). */
static uint16_t kf_cu_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (uint16_t)(s | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0u));
    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u);
    if (a < 0x38800000u) return (uint16_t)(s | (uint32_t)nearbyintf(fabsf(f) * 16777216.0f));
    return (uint16_t)(s | ((a + 0xFFFu + ((a >> 13) & 1u) - 0x38000000u) >> 13));
}

static uint16_t kf_cu_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static int kf_cu_fill(kf_cu_rt *rt, const kf_step *s, kf_err *err) {
    const kf_pbuf *b = &rt->p->bufs[s->dst];
    size_t es = kf_dtype_size(b->desc.dtype), n = es ? b->nbytes / es : 0;
    if (!n) return 0;
    double v = s->value;
    uint64_t bits = 0;
    switch (b->desc.dtype) {
    case KF_F32: { float x = (float)v; memcpy(&bits, &x, 4); break; }
    case KF_F64: memcpy(&bits, &v, 8); break;
    case KF_F16: bits = kf_cu_f16((float)v); break;
    case KF_BF16: bits = kf_cu_bf16((float)v); break;
    case KF_I64: { int64_t x = (int64_t)v; memcpy(&bits, &x, 8); break; }
    case KF_I32: { int32_t x = (int32_t)v; memcpy(&bits, &x, 4); break; }
    case KF_I16: { int16_t x = (int16_t)v; memcpy(&bits, &x, 2); break; }
    case KF_I8: { int8_t x = (int8_t)v; memcpy(&bits, &x, 1); break; }
    case KF_U8: bits = (uint8_t)v; break;
    case KF_BOOL: bits = v != 0; break;
    default: return kf_fail(err, KF_E_UNSUPPORTED, "cuda: fill of dtype %s", kf_dtype_name(b->desc.dtype));
    }
    kf_cu_api *a = &rt->cu;
    CUdeviceptr d = rt->mem[s->dst] + KF_GUARD_BYTES;
    CUresult r;
    switch (es) {
    case 1: r = a->MemsetD8Async(d, (unsigned char)bits, n, rt->stream); break;
    case 2: r = a->MemsetD16Async(d, (unsigned short)bits, n, rt->stream); break;
    case 4: r = a->MemsetD32Async(d, (unsigned int)bits, n, rt->stream); break;
    default: {
        long long count = (long long)n;
        unsigned long long value = bits;
        void *params[] = {&d, &value, &count};
        size_t blocks = (n + 255) / 256;
        r = a->LaunchKernel(rt->fill_u64, (unsigned)(blocks < 4096 ? blocks : 4096), 1, 1, 256, 1, 1, 0, rt->stream,
                            params, NULL);
    }
    }
    return kf_cuda_check(rt, r, "fill step", err);
}

static int kf_cu_copy(kf_cu_rt *rt, const kf_step *s, kf_err *err) {
    if (s->bytes <= 0) return 0;
    kf_cu_api *a = &rt->cu;
    CUdeviceptr src = rt->mem[s->src] + KF_GUARD_BYTES + (CUdeviceptr)s->src_offset;
    CUdeviceptr dst = rt->mem[s->dst] + KF_GUARD_BYTES + (CUdeviceptr)s->dst_offset;
    CUresult r;
    if (s->src == s->dst) { /* may overlap: through the staging buffer */
        r = a->MemcpyDtoDAsync(rt->tmp, src, (size_t)s->bytes, rt->stream);
        if (!r) r = a->MemcpyDtoDAsync(dst, rt->tmp, (size_t)s->bytes, rt->stream);
    } else {
        r = a->MemcpyDtoDAsync(dst, src, (size_t)s->bytes, rt->stream);
    }
    return kf_cuda_check(rt, r, "copy step", err);
}

int kf_cuda_enqueue_step(kf_cu_rt *rt, int si, kf_err *err) {
    const kf_program *p = rt->p;
    kf_cu_api *a = &rt->cu;
    const kf_step *s = &p->steps[si];
    switch (s->kind) {
    case KF_STEP_LAUNCH: {
        const kf_cu_launch *l = &rt->launch[si];
        CUresult r;
        if (l->coop)
            r = a->LaunchCooperativeKernel(l->fn, l->grid, 1, 1, (unsigned)s->block[0], (unsigned)s->block[1],
                                           (unsigned)s->block[2], l->shared, rt->stream, l->params);
        else
            r = a->LaunchKernel(l->fn, (unsigned)s->grid[0], (unsigned)s->grid[1], (unsigned)s->grid[2],
                                (unsigned)s->block[0], (unsigned)s->block[1], (unsigned)s->block[2], l->shared,
                                rt->stream, l->params, NULL);
        if (r) {
            char what[340];
            snprintf(what, sizeof what, "step %d: launching kernel '%s'", si, p->kernels[s->kernel].name);
            return kf_cuda_check(rt, r, what, err);
        }
        return 0;
    }
    case KF_STEP_GEMM: return kf_cuda_gemm(rt, si, err);
    case KF_STEP_COPY: return kf_cu_copy(rt, s, err);
    case KF_STEP_FILL: return kf_cu_fill(rt, s, err);
    case KF_STEP_CONV: return kf_cuda_conv(rt, si, err);
    default: return kf_fail(err, KF_E_INVALID, "cuda: step %d has unknown kind %d", si, (int)s->kind);
    }
}

int kf_cuda_enqueue(kf_cu_rt *rt, kf_err *err) {
    for (int si = 0; si < rt->p->n_steps; si++) {
        int rc = kf_cuda_enqueue_step(rt, si, err);
        if (rc) return rc;
    }
    return 0;
}

static int kf_cu_alive(kf_cu_rt *rt, kf_err *err) {
    if (!rt || !rt->slots) return kf_fail(err, KF_E_INVALID, "cuda: run before bind");
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    return 0;
}

int kf_cuda_run(void *vrt, kf_err *err) {
    kf_cu_rt *rt = vrt;
    int rc = kf_cu_alive(rt, err);
    if (!rc) rc = kf_cuda_enqueue(rt, err);
    CUresult r = rt && rt->stream ? rt->cu.StreamSynchronize(rt->stream) : 0;
    if (!rc && r) rc = kf_cuda_check(rt, r, "running the plan", err);
    return rc;
}

/* Captures the plan into an executable graph; 0 with *exec NULL when capture is refused. */
static int kf_cu_capture(kf_cu_rt *rt, CUgraphExec *exec, kf_err *err) {
    kf_cu_api *a = &rt->cu;
    *exec = NULL;
    if (a->StreamBeginCapture(rt->stream, KF_CU_CAPTURE_MODE_THREAD_LOCAL) != 0) return 0;
    kf_err e2;
    kf_err_clear(&e2);
    int erc = kf_cuda_enqueue(rt, &e2);
    CUgraph graph = NULL;
    CUresult r = a->StreamEndCapture(rt->stream, &graph);
    if (!erc && !r && graph && a->GraphInstantiate(exec, graph, 0) != 0) *exec = NULL;
    if (graph) a->GraphDestroy(graph);
    if (rt->dead) return kf_fail(err, KF_E_INVALID, "cuda: the device context is unusable after %s", rt->dead_msg);
    return 0;
}

int kf_cuda_time(void *vrt, int n, void (*flush)(void *ctx), void *flush_ctx, double *ms, kf_err *err) {
    kf_cu_rt *rt = vrt;
    kf_cu_api *a = &rt->cu;
    int rc = kf_cuda_run(rt, err); /* warm-up, and a check that the plan still runs */
    if (rc) return rc;
    CUgraphExec exec = NULL;
    if (rt->use_graph) {
        rc = kf_cu_capture(rt, &exec, err);
        if (rc) return rc;
        if (!exec && rt->use_graph == 2)
            return kf_fail(err, KF_E_UNSUPPORTED, "cuda: the plan could not be captured into a CUDA graph "
                           "($KFORGE_CUDA_GRAPH=require)");
        if (exec) { /* one replay before timing: a graph that fails here is not used */
            CUresult r = a->GraphLaunch(exec, rt->stream);
            if (!r) r = a->StreamSynchronize(rt->stream);
            if (r) {
                rc = kf_cuda_check(rt, r, "replaying the plan's CUDA graph", err);
                a->GraphExecDestroy(exec);
                return rc;
            }
        }
    }
    CUevent e0 = NULL, e1 = NULL;
    CUresult r = a->EventCreate(&e0, 0);
    if (!r) r = a->EventCreate(&e1, 0);
    if (r) rc = kf_cuda_check(rt, r, "cuEventCreate", err);
    for (int i = 0; i < n && !rc; i++) {
        r = a->MemsetD8Async(rt->flush, (unsigned char)(i * 37 + 1), rt->flush_bytes, rt->stream);
        if (!r) r = a->EventRecord(e0, rt->stream);
        if (r) {
            rc = kf_cuda_check(rt, r, "timing (flush, event)", err);
            break;
        }
        if (exec) {
            r = a->GraphLaunch(exec, rt->stream);
            if (r) rc = kf_cuda_check(rt, r, "replaying the plan's CUDA graph", err);
        } else {
            rc = kf_cuda_enqueue(rt, err);
        }
        if (rc) break;
        r = a->EventRecord(e1, rt->stream);
        if (!r) r = a->EventSynchronize(e1);
        float t = 0.0f;
        if (!r) r = a->EventElapsedTime(&t, e0, e1);
        if (r) rc = kf_cuda_check(rt, r, "timing the plan", err);
        else ms[i] = (double)t;
    }
    if (e0) a->EventDestroy(e0);
    if (e1) a->EventDestroy(e1);
    if (exec) a->GraphExecDestroy(exec);
    const char *prof = getenv("KFORGE_CUDA_PROFILE");
    if (!rc && prof && *prof && n >= 5 && !rt->profiled) {
        rt->profiled = 1;
        rc = kf_cuda_profile(rt, prof, ms, n, err);
    }
    return rc;
}
