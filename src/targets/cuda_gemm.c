/* cuda_gemm.c: the cuda target's gemm steps. A row-major step C = alpha op(A) op(B) + beta C
 * (batched with element strides) is computed as the column-major C^T = op(B)^T op(A)^T, so
 * cuBLAS's "A" is our B and its "B" is our A.
 *
 * Two ways to run it: cublasSgemmStridedBatched (plain cuBLAS, pedantic math: what PyTorch
 * eager runs) and cublasLtMatmul with an explicit algorithm. At bind, once the device buffers
 * exist, each distinct gemm shape (sizes, transposes, leading dims, batch strides, pointer
 * alignment, beta zero or not) is measured once: cuBLASLt's heuristic is asked for up to
 * $KFORGE_GEMM_ALGOS (default 8) algorithms, those that keep float32 arithmetic are kept, and
 * each of them and the plain cuBLAS call is run once untimed (lazy kernel loading) and twice
 * timed with CUDA events after an L2 flush, on the step's own device buffers (their contents
 * are undefined at bind and overwritten by the next upload; only C is written). The fastest
 * is kept for every later run and for the CUDA graph of the timed runs; a run never
 * re-measures. Later steps of the same shape take the earlier step's choice.
 *
 * float32 stays float32: the compute type is CUBLAS_COMPUTE_32F (CUBLAS_COMPUTE_32F_FAST_TF32
 * only under allow_tf32), and an algorithm is used only when its numerical implementation
 * flags say plain FMA with float32 inputs and a float32 accumulator (no tensor-op, TF32,
 * bf16x9 or other emulated paths). Split-K is allowed only with a reduction in a float32
 * workspace (compute or output type, both float32 here; the algorithm's reduction scheme is
 * read back): deterministic, never the in-place one. One workspace (32 MiB) is allocated
 * once and shared by the steps (they run one after another on one stream).
 *
 * $KFORGE_CUDA_GEMM: "blas" uses plain cuBLAS only (no cuBLASLt, no measuring), "lt" uses
 * cuBLASLt's fastest algorithm without the plain call as a candidate (plain cuBLAS only when
 * no Lt algorithm applies); default both, fastest wins. Where cuBLASLt cannot be loaded the
 * steps run plain cuBLAS and a line says why. $KFORGE_GEMM_LOG names a file that gets one line
 * per choice (as does stderr under $KFORGE_DEBUG). */
#include "targets/cuda_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KF_GEMM_WS_BYTES ((size_t)32 << 20)
#define KF_GEMM_MAX_ALGOS 32
#define KF_GEMM_TIMED_REPS 2

static void kf_gemm_log(const char *fmt, ...) {
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    const char *path = getenv("KFORGE_GEMM_LOG");
    if (path && *path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f, "%s\n", line);
            fclose(f);
        }
    }
    if (getenv("KFORGE_DEBUG")) fprintf(stderr, "kforge: %s\n", line);
}

/* "blas", "lt" or "" (both) */
static const char *kf_gemm_mode(void) {
    const char *m = getenv("KFORGE_CUDA_GEMM");
    if (m && (strcmp(m, "blas") == 0 || strcmp(m, "lt") == 0)) return m;
    return "";
}

int kf_cuda_open_gemm(kf_cu_rt *rt, kf_err *err) {
    int rc = kf_cublas_load(&rt->blas, err);
    if (rc) return rc;
    int r = rt->blas.Create(&rt->blas_h);
    if (r) return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cublasCreate failed (status %d)", r);
    rt->have_blas = 1;
    /* pedantic: never TF32 or other reduced-precision paths for float32, unless allowed */
    int mode = rt->allow_tf32 ? KF_CUBLAS_TF32_TENSOR_OP_MATH : KF_CUBLAS_PEDANTIC_MATH;
    if ((r = rt->blas.SetMathMode(rt->blas_h, mode)) != 0)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cublasSetMathMode(%d) failed (status %d)", mode, r);
    if ((r = rt->blas.SetStream(rt->blas_h, rt->stream)) != 0)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cublasSetStream failed (status %d)", r);
    rt->gemm = calloc(rt->p->n_steps ? (size_t)rt->p->n_steps : 1, sizeof *rt->gemm);
    if (!rt->gemm) return kf_fail(err, KF_E_NOMEM, "cuda: out of memory");
    if (strcmp(kf_gemm_mode(), "blas") == 0) {
        kf_gemm_log("gemm: plain cuBLAS only ($KFORGE_CUDA_GEMM=blas)");
        return 0;
    }
    kf_err e2;
    kf_err_clear(&e2);
    if (kf_cublaslt_load(&rt->lt, &e2) != 0) {
        kf_gemm_log("gemm: cuBLASLt not used, plain cuBLAS sgemm instead: %s", e2.msg);
        return 0;
    }
    if ((r = rt->lt.Create(&rt->lt_h)) != 0) {
        kf_gemm_log("gemm: cuBLASLt not used, plain cuBLAS sgemm instead: cublasLtCreate failed (status %d)", r);
        kf_cublaslt_unload(&rt->lt);
        return 0;
    }
    rt->have_lt = 1;
    return 0;
}

static void kf_gemm_state_free(kf_cu_rt *rt, kf_cu_gemm *g) {
    if (rt->have_lt) {
        if (g->desc) rt->lt.DescDestroy(g->desc);
        if (g->la) rt->lt.LayoutDestroy(g->la);
        if (g->lb) rt->lt.LayoutDestroy(g->lb);
        if (g->lc) rt->lt.LayoutDestroy(g->lc);
    }
    memset(g, 0, sizeof *g);
}

void kf_cuda_free_gemm(kf_cu_rt *rt) {
    if (rt->gemm && rt->p)
        for (int i = 0; i < rt->p->n_steps; i++) kf_gemm_state_free(rt, &rt->gemm[i]);
    free(rt->gemm);
    rt->gemm = NULL;
    if (rt->gemm_ws) rt->cu.MemFree(rt->gemm_ws);
    rt->gemm_ws = 0;
    rt->gemm_ws_bytes = 0;
    if (rt->have_lt) rt->lt.Destroy(rt->lt_h);
    rt->have_lt = 0;
    kf_cublaslt_unload(&rt->lt);
    if (rt->have_blas) rt->blas.Destroy(rt->blas_h);
    rt->have_blas = 0;
    kf_cublas_unload(&rt->blas);
}

static int kf_gemm_empty(const kf_step *s) { return s->m == 0 || s->n == 0 || s->batch == 0; }

static int kf_gemm_sizes_ok(const kf_step *s, kf_err *err) {
    if (s->m > 0x7fffffff || s->n > 0x7fffffff || s->k > 0x7fffffff || s->batch > 0x7fffffff ||
        s->lda > 0x7fffffff || s->ldb > 0x7fffffff || s->ldc > 0x7fffffff)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: gemm sizes beyond 32 bits");
    return 0;
}

static CUdeviceptr kf_gemm_ptr(const kf_cu_rt *rt, int buf) { return rt->mem[buf] + KF_GUARD_BYTES; }

/* The largest power of two (<= 256) dividing the address and, for batches, the stride. */
static uint32_t kf_gemm_align(CUdeviceptr p, int64_t stride, int64_t batch) {
    uint64_t x = (uint64_t)p | 256u;
    if (batch > 1 && stride) x |= (uint64_t)stride * 4u;
    return (uint32_t)(x & (~x + 1));
}

/* The plain cuBLAS call, or cublasLtMatmul with algo and its workspace. */
static int kf_gemm_call(kf_cu_rt *rt, const kf_step *s, const kf_cu_gemm *g, int use_lt, const kf_lt_algo *algo,
                        size_t ws) {
    const float *a = (const float *)(uintptr_t)kf_gemm_ptr(rt, s->a);
    const float *b = (const float *)(uintptr_t)kf_gemm_ptr(rt, s->b);
    float *c = (float *)(uintptr_t)kf_gemm_ptr(rt, s->c);
    if (use_lt)
        return rt->lt.Matmul(rt->lt_h, g->desc, &g->alpha, b, g->la, a, g->lb, &g->beta, c, g->lc, c, g->lc, algo,
                             ws ? (void *)(uintptr_t)rt->gemm_ws : NULL, ws, rt->stream);
    return rt->blas.SgemmStridedBatched(rt->blas_h, s->trans_b ? KF_CUBLAS_OP_T : KF_CUBLAS_OP_N,
                                        s->trans_a ? KF_CUBLAS_OP_T : KF_CUBLAS_OP_N, (int)s->n, (int)s->m, (int)s->k,
                                        &g->alpha, b, (int)s->ldb, s->stride_b, a, (int)s->lda, s->stride_a, &g->beta,
                                        c, (int)s->ldc, s->stride_c, (int)s->batch);
}

int kf_cuda_gemm(kf_cu_rt *rt, int si, kf_err *err) {
    const kf_step *s = &rt->p->steps[si];
    if (kf_gemm_empty(s)) return 0;
    int rc = kf_gemm_sizes_ok(s, err);
    if (rc) return rc;
    const kf_cu_gemm *g = &rt->gemm[si];
    if (!g->ready) return kf_fail(err, KF_E_INTERNAL, "cuda: step %d (gemm) run before bind chose its algorithm", si);
    int r = kf_gemm_call(rt, s, g, g->use_lt, &g->algo, g->ws);
    if (r)
        return kf_fail(err, KF_E_INVALID, "cuda: step %d (gemm): %s failed (status %d)", si,
                       g->use_lt ? "cublasLtMatmul" : "cublasSgemmStridedBatched", r);
    return 0;
}

/* Lt's descriptors for the step (column-major view, see the header). */
static int kf_gemm_lt_describe(kf_cu_rt *rt, const kf_step *s, kf_cu_gemm *g) {
    kf_cublaslt_api *L = &rt->lt;
    int compute = rt->allow_tf32 ? KF_CUBLAS_COMPUTE_32F_FAST_TF32 : KF_CUBLAS_COMPUTE_32F;
    int st = L->DescCreate(&g->desc, compute, KF_CUDA_R_32F);
    int32_t ta = s->trans_b ? KF_CUBLAS_OP_T : KF_CUBLAS_OP_N, tb = s->trans_a ? KF_CUBLAS_OP_T : KF_CUBLAS_OP_N;
    if (!st) st = L->DescSetAttribute(g->desc, KF_LT_DESC_TRANSA, &ta, sizeof ta);
    if (!st) st = L->DescSetAttribute(g->desc, KF_LT_DESC_TRANSB, &tb, sizeof tb);
    /* Lt A = our B: op N -> n x k; Lt B = our A: op N -> k x m; C: n x m */
    if (!st) st = L->LayoutCreate(&g->la, KF_CUDA_R_32F, (uint64_t)(s->trans_b ? s->k : s->n),
                                  (uint64_t)(s->trans_b ? s->n : s->k), s->ldb);
    if (!st) st = L->LayoutCreate(&g->lb, KF_CUDA_R_32F, (uint64_t)(s->trans_a ? s->m : s->k),
                                  (uint64_t)(s->trans_a ? s->k : s->m), s->lda);
    if (!st) st = L->LayoutCreate(&g->lc, KF_CUDA_R_32F, (uint64_t)s->n, (uint64_t)s->m, s->ldc);
    if (!st && s->batch > 1) {
        int32_t count = (int32_t)s->batch;
        kf_lt_layout ls[3] = {g->la, g->lb, g->lc};
        int64_t strides[3] = {s->stride_b, s->stride_a, s->stride_c};
        for (int i = 0; i < 3 && !st; i++) {
            st = L->LayoutSetAttribute(ls[i], KF_LT_LAYOUT_BATCH_COUNT, &count, sizeof count);
            if (!st) st = L->LayoutSetAttribute(ls[i], KF_LT_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i], sizeof strides[i]);
        }
    }
    return st;
}

/* Whether the algorithm keeps float32 arithmetic (always, under allow_tf32) and, if it
 * splits k, reduces the parts in a float32 workspace rather than in place. */
static int kf_gemm_algo_f32(kf_cu_rt *rt, const kf_lt_algo *algo) {
    uint32_t red = 0;
    size_t n = 0;
    if (rt->lt.ConfigGetAttribute(algo, KF_LT_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &n) != 0) return 0;
    if (red & KF_LT_REDUCTION_INPLACE) return 0;
    if (rt->allow_tf32) return 1;
    uint64_t flags = 0;
    if (rt->lt.CapGetAttribute(algo, KF_LT_CAP_NUMERICAL_IMPL_FLAGS, &flags, sizeof flags, &n) != 0) return 0;
    return (flags & KF_LT_IMPL_OP_TYPE_MASK) == KF_LT_IMPL_FMA && (flags & KF_LT_IMPL_ACC_MASK) == KF_LT_IMPL_ACC_32F &&
           (flags & KF_LT_IMPL_INPUT_MASK) == KF_LT_IMPL_INPUT_32F;
}

/* Up to max float32 candidates from the heuristic; the count. */
static int kf_gemm_lt_candidates(kf_cu_rt *rt, const kf_step *s, kf_cu_gemm *g, kf_lt_heur *out, int max) {
    kf_cublaslt_api *L = &rt->lt;
    kf_lt_pref pref = NULL;
    if (L->PrefCreate(&pref) != 0) return 0;
    uint64_t ws = rt->gemm_ws_bytes;
    uint32_t al_a = kf_gemm_align(kf_gemm_ptr(rt, s->b), s->stride_b, s->batch);
    uint32_t al_b = kf_gemm_align(kf_gemm_ptr(rt, s->a), s->stride_a, s->batch);
    uint32_t al_c = kf_gemm_align(kf_gemm_ptr(rt, s->c), s->stride_c, s->batch);
    int st = L->PrefSetAttribute(pref, KF_LT_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (!st) st = L->PrefSetAttribute(pref, KF_LT_PREF_MIN_ALIGNMENT_A, &al_a, sizeof al_a);
    if (!st) st = L->PrefSetAttribute(pref, KF_LT_PREF_MIN_ALIGNMENT_B, &al_b, sizeof al_b);
    if (!st) st = L->PrefSetAttribute(pref, KF_LT_PREF_MIN_ALIGNMENT_C, &al_c, sizeof al_c);
    if (!st) st = L->PrefSetAttribute(pref, KF_LT_PREF_MIN_ALIGNMENT_D, &al_c, sizeof al_c);
    kf_lt_heur res[KF_GEMM_MAX_ALGOS];
    int got = 0, n = 0;
    if (!st) st = L->GetHeuristic(rt->lt_h, g->desc, g->la, g->lb, g->lc, g->lc, pref, max, res, &got);
    L->PrefDestroy(pref);
    if (st) return 0;
    for (int i = 0; i < got && i < max; i++)
        if (res[i].state == 0 && res[i].workspace <= rt->gemm_ws_bytes && kf_gemm_algo_f32(rt, &res[i].algo))
            out[n++] = res[i];
    return n;
}

typedef struct kf_gemm_timer {
    CUevent e0, e1;
} kf_gemm_timer;

/* Runs a candidate once untimed, then times it; the best time in *ms. Nonzero status (the
 * library's) or a driver error when it cannot run. */
static int kf_gemm_measure(kf_cu_rt *rt, kf_gemm_timer *t, const kf_step *s, const kf_cu_gemm *g, int use_lt,
                           const kf_lt_algo *algo, size_t ws, double *ms, kf_err *err) {
    kf_cu_api *a = &rt->cu;
    int st = kf_gemm_call(rt, s, g, use_lt, algo, ws);
    CUresult r = a->StreamSynchronize(rt->stream);
    if (r) return kf_cuda_check(rt, r, "measuring a gemm algorithm", err);
    if (st) return st;
    double best = 1e30;
    for (int i = 0; i < KF_GEMM_TIMED_REPS; i++) {
        r = a->MemsetD8Async(rt->flush, (unsigned char)(i * 29 + 3), rt->flush_bytes, rt->stream);
        if (!r) r = a->EventRecord(t->e0, rt->stream);
        if (r) return kf_cuda_check(rt, r, "measuring a gemm algorithm", err);
        st = kf_gemm_call(rt, s, g, use_lt, algo, ws);
        r = a->EventRecord(t->e1, rt->stream);
        if (!r) r = a->EventSynchronize(t->e1);
        float x = 0.0f;
        if (!r) r = a->EventElapsedTime(&x, t->e0, t->e1);
        if (r) return kf_cuda_check(rt, r, "measuring a gemm algorithm", err);
        if (st) return st;
        if (x < best) best = x;
    }
    *ms = best;
    return 0;
}

/* Whether two gemm steps share everything a choice depends on. */
static int kf_gemm_same(const kf_cu_rt *rt, const kf_step *x, const kf_step *y) {
    return x->m == y->m && x->n == y->n && x->k == y->k && x->trans_a == y->trans_a && x->trans_b == y->trans_b &&
           x->lda == y->lda && x->ldb == y->ldb && x->ldc == y->ldc && x->batch == y->batch &&
           x->stride_a == y->stride_a && x->stride_b == y->stride_b && x->stride_c == y->stride_c &&
           (x->beta == 0) == (y->beta == 0) &&
           kf_gemm_align(kf_gemm_ptr(rt, x->a), x->stride_a, x->batch) ==
               kf_gemm_align(kf_gemm_ptr(rt, y->a), y->stride_a, y->batch) &&
           kf_gemm_align(kf_gemm_ptr(rt, x->b), x->stride_b, x->batch) ==
               kf_gemm_align(kf_gemm_ptr(rt, y->b), y->stride_b, y->batch) &&
           kf_gemm_align(kf_gemm_ptr(rt, x->c), x->stride_c, x->batch) ==
               kf_gemm_align(kf_gemm_ptr(rt, y->c), y->stride_c, y->batch);
}

static int kf_gemm_choose(kf_cu_rt *rt, kf_gemm_timer *t, int si, kf_err *err) {
    const kf_step *s = &rt->p->steps[si];
    kf_cu_gemm *g = &rt->gemm[si];
    int lt_only = strcmp(kf_gemm_mode(), "lt") == 0;
    double blas_ms = -1, lt_best = -1;
    int n_cand = 0, n_ran = 0;
    g->use_lt = 0;
    g->ms = -1;
    if (rt->have_lt && kf_gemm_lt_describe(rt, s, g) == 0) {
        int max = 8;
        const char *e = getenv("KFORGE_GEMM_ALGOS");
        if (e && atoi(e) > 0) max = atoi(e) < KF_GEMM_MAX_ALGOS ? atoi(e) : KF_GEMM_MAX_ALGOS;
        kf_lt_heur cand[KF_GEMM_MAX_ALGOS];
        n_cand = kf_gemm_lt_candidates(rt, s, g, cand, max);
        for (int i = 0; i < n_cand; i++) {
            double ms = 0;
            int rc = kf_gemm_measure(rt, t, s, g, 1, &cand[i].algo, cand[i].workspace, &ms, err);
            if (rt->dead) return rc;
            if (rc) continue; /* this algorithm refused these operands */
            n_ran++;
            if (lt_best < 0 || ms < lt_best) {
                lt_best = ms;
                g->algo = cand[i].algo;
                g->ws = cand[i].workspace;
                g->use_lt = 1;
            }
        }
    }
    if (!n_ran) { /* nothing to compare: plain cuBLAS, unmeasured */
        g->use_lt = 0;
    } else if (!lt_only) {
        int rc = kf_gemm_measure(rt, t, s, g, 0, NULL, 0, &blas_ms, err);
        if (rc > 0 && !rt->dead)
            rc = kf_fail(err, KF_E_INVALID, "cuda: step %d (gemm): cublasSgemmStridedBatched failed (status %d)", si, rc);
        if (rc) return rc;
        if (blas_ms < lt_best) g->use_lt = 0;
    }
    g->ms = g->use_lt ? lt_best : blas_ms; /* -1: not measured */
    g->ready = 1;
    kf_gemm_log("gemm step %d: %lldx%lldx%lld batch %lld%s%s: tuned: %s %.4f ms (plain cuBLAS %.4f ms, cuBLASLt "
                "%d/%d algorithms ran, best %.4f ms)",
                si, (long long)s->m, (long long)s->n, (long long)s->k, (long long)s->batch, s->trans_a ? " A^T" : "",
                s->trans_b ? " B^T" : "", g->use_lt ? "cuBLASLt" : "cuBLAS", g->ms, blas_ms, n_ran, n_cand, lt_best);
    return 0;
}

int kf_cuda_prepare_gemms(kf_cu_rt *rt, kf_err *err) {
    const kf_program *p = rt->p;
    if (!rt->gemm) return 0;
    kf_cu_api *a = &rt->cu;
    for (int si = 0; si < p->n_steps; si++) kf_gemm_state_free(rt, &rt->gemm[si]);
    if (rt->have_lt && !rt->gemm_ws) {
        CUresult r = a->MemAlloc(&rt->gemm_ws, KF_GEMM_WS_BYTES);
        if (r) return kf_cuda_check(rt, r, "allocating the cuBLASLt workspace", err);
        rt->gemm_ws_bytes = KF_GEMM_WS_BYTES;
    }
    kf_gemm_timer t = {NULL, NULL};
    CUresult r = a->EventCreate(&t.e0, 0);
    if (!r) r = a->EventCreate(&t.e1, 0);
    int rc = r ? kf_cuda_check(rt, r, "cuEventCreate", err) : 0;
    for (int si = 0; si < p->n_steps && !rc; si++) {
        const kf_step *s = &p->steps[si];
        kf_cu_gemm *g = &rt->gemm[si];
        if (s->kind != KF_STEP_GEMM) continue;
        g->same_as = -1;
        g->alpha = (float)s->alpha;
        g->beta = (float)s->beta;
        if (kf_gemm_empty(s)) {
            g->ready = 1;
            continue;
        }
        if ((rc = kf_gemm_sizes_ok(s, err)) != 0) break;
        for (int j = 0; j < si && g->same_as < 0; j++)
            if (p->steps[j].kind == KF_STEP_GEMM && rt->gemm[j].ready && !kf_gemm_empty(&p->steps[j]) &&
                kf_gemm_same(rt, &p->steps[j], s))
                g->same_as = j;
        if (g->same_as >= 0) {
            const kf_cu_gemm *o = &rt->gemm[g->same_as];
            if (o->use_lt && kf_gemm_lt_describe(rt, s, g) != 0) {
                rc = kf_fail(err, KF_E_INVALID, "cuda: step %d (gemm): cuBLASLt descriptors", si);
                break;
            }
            g->use_lt = o->use_lt;
            g->algo = o->algo;
            g->ws = o->ws;
            g->ms = o->ms;
            g->ready = 1;
            kf_gemm_log("gemm step %d: same shape as step %d, reuses its choice (%s)", si, g->same_as,
                        g->use_lt ? "cuBLASLt" : "cuBLAS");
            continue;
        }
        rc = kf_gemm_choose(rt, &t, si, err);
    }
    if (t.e0) a->EventDestroy(t.e0);
    if (t.e1) a->EventDestroy(t.e1);
    return rc;
}
