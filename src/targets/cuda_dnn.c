/* cuda_dnn.c: the cuda target's conv steps through cuDNN's legacy convolution API (loaded
 * with dlopen, cuda_api.c). At open the handle is created and bound to the plan's stream, so
 * a conv step is captured into the timing graph like any launch. At bind, once the device
 * buffers exist, each conv step gets its descriptors (NCHW packed tensors; a 1-d convolution
 * is run as a 2-d one with a leading spatial dim of 1, since the Nd descriptors need 4 dims)
 * and its algorithm: the first of cuDNN's heuristic ranking (cudnnGet*Algorithm_v7, what
 * PyTorch eager uses by default) whose math is allowed, or with $KFORGE_CUDNN_FIND=1 the
 * fastest that cudnnFind*AlgorithmEx measures. On an H100, timed with the L2 flushed, the
 * measured choice was never faster on the GPU benchmark's convolutions and up to 1.5x
 * slower (a strided 3x3 and a strided 1x1 of a ResNet block); it won only on tiny ones
 * (10-20 us). So the heuristics are the default. float32 stays float32: the
 * convolution's math type is CUDNN_FMA_MATH (no TF32 tensor cores) unless allow_tf32 is
 * set, and the FFT and non-fused Winograd algorithms, whose rounding differs most from a
 * direct sum, are not used. One workspace, the largest any chosen algorithm needs, is
 * allocated once and shared by the steps (they run one after another on one stream).
 *
 * A forward step is cudnnConvolutionForward; a transposed step is the data gradient of the
 * forward convolution that maps its output to its input (cudnnConvolutionBackwardData, the
 * weight [c_in, c_out/groups, k...] being that convolution's filter). The bias, when the
 * step has one, is added by cudnnAddTensor. */
#include "targets/cuda_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_DNN_FIND_WS_MAX ((size_t)1 << 30) /* workspace offered to the algorithm search */

static int kf_dnn_fail(kf_cu_rt *rt, kf_err *err, int st, int si, const char *what) {
    const char *msg = rt->dnn.GetErrorString ? rt->dnn.GetErrorString(st) : NULL;
    if (si >= 0)
        return kf_fail(err, KF_E_INVALID, "cuda: step %d (conv): %s failed: %s (cuDNN status %d)", si, what,
                       msg ? msg : "?", st);
    return kf_fail(err, KF_E_UNSUPPORTED, "cuda: %s failed: %s (cuDNN status %d)", what, msg ? msg : "?", st);
}

int kf_cuda_open_dnn(kf_cu_rt *rt, kf_err *err) {
    int rc = kf_cudnn_load(&rt->dnn, err);
    if (rc) return rc;
    int st = rt->dnn.Create(&rt->dnn_h);
    if (st) return kf_dnn_fail(rt, err, st, -1, "cudnnCreate");
    rt->have_dnn = 1;
    if ((st = rt->dnn.SetStream(rt->dnn_h, rt->stream)) != 0) return kf_dnn_fail(rt, err, st, -1, "cudnnSetStream");
    rt->conv = calloc(rt->p->n_steps ? (size_t)rt->p->n_steps : 1, sizeof *rt->conv);
    if (!rt->conv) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    return 0;
}

static void kf_dnn_conv_free(kf_cu_rt *rt, kf_cu_conv *c) {
    kf_cudnn_api *d = &rt->dnn;
    if (c->xd) d->DestroyTensorDescriptor(c->xd);
    if (c->yd) d->DestroyTensorDescriptor(c->yd);
    if (c->bd) d->DestroyTensorDescriptor(c->bd);
    if (c->wd) d->DestroyFilterDescriptor(c->wd);
    if (c->cd) d->DestroyConvolutionDescriptor(c->cd);
    memset(c, 0, sizeof *c);
}

void kf_cuda_free_dnn(kf_cu_rt *rt) {
    if (rt->conv && rt->p)
        for (int i = 0; i < rt->p->n_steps; i++) kf_dnn_conv_free(rt, &rt->conv[i]);
    free(rt->conv);
    rt->conv = NULL;
    if (rt->ws) rt->cu.MemFree(rt->ws);
    rt->ws = 0;
    if (rt->have_dnn) rt->dnn.Destroy(rt->dnn_h);
    rt->have_dnn = 0;
    kf_cudnn_unload(&rt->dnn);
}

/* A packed NCHW-style descriptor of dims[0..nd-1]. */
static int kf_dnn_tensor(kf_cu_rt *rt, cudnnTensorDescriptor_t *t, int nd, const int *dims) {
    int strides[8];
    strides[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) strides[i] = strides[i + 1] * dims[i + 1];
    int st = rt->dnn.CreateTensorDescriptor(t);
    if (!st) st = rt->dnn.SetTensorNdDescriptor(*t, KF_CUDNN_DATA_FLOAT, nd, dims, strides);
    return st;
}

/* The algorithm whose math and numerics are allowed, fastest first in perf[]. */
static int kf_dnn_pick(const kf_cu_rt *rt, const kf_cudnn_perf *perf, int n, int transposed, kf_cudnn_perf *out) {
    for (int i = 0; i < n; i++) {
        const kf_cudnn_perf *q = &perf[i];
        if (q->status != 0) continue;
        if (!rt->allow_tf32 && q->math_type != KF_CUDNN_FMA_MATH && q->math_type != KF_CUDNN_DEFAULT_MATH) continue;
        /* forward: FFT 4, FFT_TILING 5, WINOGRAD_NONFUSED 7; data gradient: FFT 2, FFT_TILING 3,
         * WINOGRAD_NONFUSED 5 */
        if (!transposed && (q->algo == 4 || q->algo == 5 || q->algo == 7)) continue;
        if (transposed && (q->algo == 2 || q->algo == 3 || q->algo == 5)) continue;
        *out = *q;
        return 1;
    }
    return 0;
}

static int kf_dnn_fits_int(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

/* Descriptors and algorithm of conv step si; *ws_need gets its workspace size. */
static int kf_dnn_prepare(kf_cu_rt *rt, int si, size_t *ws_need, kf_err *err) {
    const kf_conv_step *s = &rt->p->steps[si].conv;
    kf_cu_conv *c = &rt->conv[si];
    kf_cudnn_api *d = &rt->dnn;
    kf_dnn_conv_free(rt, c);
    /* spatial dims, at least 2 */
    int lead = s->nsd == 1 ? 1 : 0, sd = s->nsd + lead;
    int in[3], out[3], k[3], str[3], pad[3], dil[3];
    int64_t xn = s->n * s->c_in, yn = s->n * s->c_out;
    for (int j = 0; j < sd; j++) {
        int q = j - lead;
        int64_t o = q < 0 ? 1 : kf_conv_step_out(s, q);
        int64_t v[6] = {q < 0 ? 1 : s->in[q], o, q < 0 ? 1 : s->kernel[q], q < 0 ? 1 : s->stride[q],
                        q < 0 ? 0 : s->padding[q], q < 0 ? 1 : s->dilation[q]};
        for (int t = 0; t < 6; t++)
            if (!kf_dnn_fits_int(v[t]))
                return kf_fail(err, KF_E_UNSUPPORTED, "cuda: step %d (conv): sizes beyond 32 bits", si);
        in[j] = (int)v[0], out[j] = (int)v[1], k[j] = (int)v[2], str[j] = (int)v[3], pad[j] = (int)v[4];
        dil[j] = (int)v[5];
        xn *= v[0];
        yn *= v[1];
    }
    if (!kf_dnn_fits_int(xn) || !kf_dnn_fits_int(yn) || !kf_dnn_fits_int(s->n) || !kf_dnn_fits_int(s->c_in) ||
        !kf_dnn_fits_int(s->c_out) || !kf_dnn_fits_int(s->groups))
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: step %d (conv): tensors beyond 2^31 elements", si);
    int xdims[5] = {(int)s->n, (int)s->c_in}, ydims[5] = {(int)s->n, (int)s->c_out}, wdims[5], bdims[5] = {1, (int)s->c_out};
    if (s->transposed) wdims[0] = (int)s->c_in, wdims[1] = (int)(s->c_out / s->groups);
    else wdims[0] = (int)s->c_out, wdims[1] = (int)(s->c_in / s->groups);
    for (int j = 0; j < sd; j++) {
        xdims[2 + j] = in[j];
        ydims[2 + j] = out[j];
        wdims[2 + j] = k[j];
        bdims[2 + j] = 1;
    }
    int nd = sd + 2;
    int st = kf_dnn_tensor(rt, &c->xd, nd, xdims);
    if (!st) st = kf_dnn_tensor(rt, &c->yd, nd, ydims);
    if (!st && s->bias >= 0) st = kf_dnn_tensor(rt, &c->bd, nd, bdims);
    if (st) return kf_dnn_fail(rt, err, st, si, "setting up tensor descriptors");
    st = d->CreateFilterDescriptor(&c->wd);
    if (!st) st = d->SetFilterNdDescriptor(c->wd, KF_CUDNN_DATA_FLOAT, KF_CUDNN_TENSOR_NCHW, nd, wdims);
    if (st) return kf_dnn_fail(rt, err, st, si, "setting up the filter descriptor");
    int math = rt->allow_tf32 ? KF_CUDNN_DEFAULT_MATH : KF_CUDNN_FMA_MATH;
    st = d->CreateConvolutionDescriptor(&c->cd);
    if (!st) st = d->SetConvolutionNdDescriptor(c->cd, sd, pad, str, dil, KF_CUDNN_CROSS_CORRELATION, KF_CUDNN_DATA_FLOAT);
    if (!st) st = d->SetConvolutionGroupCount(c->cd, (int)s->groups);
    if (!st) st = d->SetConvolutionMathType(c->cd, math);
    if (st) return kf_dnn_fail(rt, err, st, si, "setting up the convolution descriptor");
    /* transposed: the forward convolution maps y's shape to x's: dy = x, dx = y */
    const char *fe = getenv("KFORGE_CUDNN_FIND");
    int find = fe && strcmp(fe, "1") == 0;
    kf_cudnn_perf perf[16];
    memset(perf, 0, sizeof perf);
    int n = 0;
    CUdeviceptr xp = rt->mem[s->x] + KF_GUARD_BYTES + (CUdeviceptr)s->x_offset * 4;
    CUdeviceptr wp = rt->mem[s->w] + KF_GUARD_BYTES + (CUdeviceptr)s->w_offset * 4;
    CUdeviceptr yp = rt->mem[s->y] + KF_GUARD_BYTES + (CUdeviceptr)s->y_offset * 4;
    if (find) {
        /* the search may use up to KF_DNN_FIND_WS_MAX of workspace, or what is free */
        size_t ws = KF_DNN_FIND_WS_MAX;
        CUdeviceptr buf = 0;
        while (ws >= ((size_t)1 << 20) && rt->cu.MemAlloc(&buf, ws) != 0) ws /= 2;
        if (!buf) ws = 0;
        void *wsp = (void *)(uintptr_t)buf;
        if (s->transposed)
            st = d->FindBwdDataAlgoEx(rt->dnn_h, c->wd, (const void *)(uintptr_t)wp, c->xd, (const void *)(uintptr_t)xp,
                                      c->cd, c->yd, (void *)(uintptr_t)yp, 16, &n, perf, wsp, ws);
        else
            st = d->FindFwdAlgoEx(rt->dnn_h, c->xd, (const void *)(uintptr_t)xp, c->wd, (const void *)(uintptr_t)wp,
                                  c->cd, c->yd, (void *)(uintptr_t)yp, 16, &n, perf, wsp, ws);
        if (buf) rt->cu.MemFree(buf);
        if (st) return kf_dnn_fail(rt, err, st, si, s->transposed ? "cudnnFindConvolutionBackwardDataAlgorithmEx"
                                                                  : "cudnnFindConvolutionForwardAlgorithmEx");
    } else {
        st = s->transposed ? d->GetBwdDataAlgo(rt->dnn_h, c->wd, c->xd, c->cd, c->yd, 16, &n, perf)
                           : d->GetFwdAlgo(rt->dnn_h, c->xd, c->wd, c->cd, c->yd, 16, &n, perf);
        if (st) return kf_dnn_fail(rt, err, st, si, "cudnnGetConvolution*Algorithm_v7");
    }
    kf_cudnn_perf best;
    if (!kf_dnn_pick(rt, perf, n < 16 ? n : 16, s->transposed, &best))
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: step %d (conv): cuDNN offers no float32 algorithm for this "
                       "convolution under the precision rules (%d candidates)", si, n);
    c->algo = best.algo;
    /* strict float32 keeps CUDNN_FMA_MATH whatever the search reports; with TF32 allowed the
     * measured math type is used */
    if (rt->allow_tf32 && best.math_type != math && (st = d->SetConvolutionMathType(c->cd, best.math_type)) != 0)
        return kf_dnn_fail(rt, err, st, si, "cudnnSetConvolutionMathType");
    size_t need = 0;
    st = s->transposed ? d->GetBwdDataWorkspaceSize(rt->dnn_h, c->wd, c->xd, c->cd, c->yd, c->algo, &need)
                       : d->GetFwdWorkspaceSize(rt->dnn_h, c->xd, c->wd, c->cd, c->yd, c->algo, &need);
    if (st) return kf_dnn_fail(rt, err, st, si, "getting the workspace size");
    c->ws_bytes = need;
    *ws_need = need;
    c->ready = 1;
    if (getenv("KFORGE_CUDNN_VERBOSE"))
        fprintf(stderr, "kforge: step %d (conv%s): cuDNN algorithm %d, math %d, workspace %zu bytes, %.4f ms\n", si,
                s->transposed ? ", transposed" : "", c->algo, best.math_type, need, (double)best.time);
    return 0;
}

int kf_cuda_prepare_convs(kf_cu_rt *rt, kf_err *err) {
    if (!rt->have_dnn) return 0;
    size_t ws = 0;
    for (int si = 0; si < rt->p->n_steps; si++) {
        if (rt->p->steps[si].kind != KF_STEP_CONV) continue;
        size_t need = 0;
        int rc = kf_dnn_prepare(rt, si, &need, err);
        if (rc) return rc;
        if (need > ws) ws = need;
    }
    if (rt->ws) rt->cu.MemFree(rt->ws);
    rt->ws = 0;
    rt->ws_bytes = 0;
    if (ws) {
        CUresult r = rt->cu.MemAlloc(&rt->ws, ws);
        if (r) return kf_cuda_check(rt, r, "allocating the cuDNN workspace", err);
        rt->ws_bytes = ws;
    }
    CUresult r = rt->cu.StreamSynchronize(rt->stream);
    return kf_cuda_check(rt, r, "choosing the cuDNN algorithms", err);
}

int kf_cuda_conv(kf_cu_rt *rt, int si, kf_err *err) {
    const kf_conv_step *s = &rt->p->steps[si].conv;
    kf_cu_conv *c = rt->conv ? &rt->conv[si] : NULL;
    if (!c || !c->ready) return kf_fail(err, KF_E_INVALID, "cuda: step %d (conv) was not prepared", si);
    kf_cudnn_api *d = &rt->dnn;
    const void *x = (const void *)(uintptr_t)(rt->mem[s->x] + KF_GUARD_BYTES + (CUdeviceptr)s->x_offset * 4);
    const void *w = (const void *)(uintptr_t)(rt->mem[s->w] + KF_GUARD_BYTES + (CUdeviceptr)s->w_offset * 4);
    void *y = (void *)(uintptr_t)(rt->mem[s->y] + KF_GUARD_BYTES + (CUdeviceptr)s->y_offset * 4);
    void *ws = (void *)(uintptr_t)rt->ws;
    float one = 1.0f, zero = 0.0f;
    int st = s->transposed
        ? d->ConvolutionBackwardData(rt->dnn_h, &one, c->wd, w, c->xd, x, c->cd, c->algo, ws, c->ws_bytes, &zero, c->yd, y)
        : d->ConvolutionForward(rt->dnn_h, &one, c->xd, x, c->wd, w, c->cd, c->algo, ws, c->ws_bytes, &zero, c->yd, y);
    if (st) return kf_dnn_fail(rt, err, st, si, s->transposed ? "cudnnConvolutionBackwardData" : "cudnnConvolutionForward");
    if (s->bias >= 0) {
        const void *b = (const void *)(uintptr_t)(rt->mem[s->bias] + KF_GUARD_BYTES + (CUdeviceptr)s->bias_offset * 4);
        st = d->AddTensor(rt->dnn_h, &one, c->bd, b, &one, c->yd, y);
        if (st) return kf_dnn_fail(rt, err, st, si, "cudnnAddTensor (bias)");
    }
    return 0;
}
