/* cuda_devcheck_src.h: the CUDA C source of the device-side checks of the cuda target's device
 * data path (cuda_compare.c compiles it with NVRTC, strict float options, and caches the CUBIN).
 *
 * kf_dc_bytes: bytes of a that differ from b (or from the byte c): the count (out[0]) and the
 * first offset (out[1], atomicMin), in the layout of kf_dc_final. 16 bytes at a time where
 * both pointers allow it.
 * kf_dc_close1 / kf_dc_close2: the harness's comparison rule (src/harness/kf_compare.c) as a
 * two-pass reduction. Element values are read as doubles exactly as kf_elem_get does; float
 * dtypes pass when |got - ref| <= atol + rtol * |ref| (computed in double, no FMA), NaN and
 * +-inf exactly where ref has them; other dtypes byte-exact (bool: zero/non-zero). Pass 1
 * gives one partial per block (failures, first failing index, worst element = largest
 * |got-ref|/tol with ties to the lower index, non-float or NaN/inf failures infinitely bad);
 * pass 2 (one block) reduces the partials and fills the summary with the values at the first
 * and worst indices. Mode 1 counts elements of got that are not 0.0 (the all-zero test for
 * degenerate problems). Internal to src/targets. */
#ifndef KF_CUDA_DEVCHECK_SRC_H
#define KF_CUDA_DEVCHECK_SRC_H

#define KF_DC_THREADS 256
#define KF_DC_MAX_BLOCKS 1024

/* dtype codes the kernels take */
enum { KF_DC_F32, KF_DC_F64, KF_DC_F16, KF_DC_BF16, KF_DC_I64, KF_DC_I32, KF_DC_I16, KF_DC_I8,
       KF_DC_U8, KF_DC_BOOL };

/* Layouts shared with the host (cuda_compare.c). */
typedef struct kf_dc_part {
    unsigned long long count;
    long long first, worst;
    double worst_ratio;
} kf_dc_part;

typedef struct kf_dc_final {
    unsigned long long count;
    long long first, worst;
    double got, expected, tol;
    double worst_got, worst_expected, worst_tol, worst_ratio;
} kf_dc_final;

static const char kf_cuda_devcheck_src[] =
"#line 1 \"kforge_devcheck.cu\"\n"
"typedef unsigned long long u64;\n"
"struct part { u64 count; long long first, worst; double worst_ratio; };\n"
"struct fin { u64 count; long long first, worst; double got, expected, tol;\n"
"             double worst_got, worst_expected, worst_tol, worst_ratio; };\n"
"#define NT 256\n"
"extern \"C\" __global__ void kf_dc_bytes(const unsigned char *a, const unsigned char *b, unsigned int c,\n"
"                                        int use_b, u64 n, u64 *out) {\n"
"    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x, step = (u64)gridDim.x * blockDim.x;\n"
"    u64 first = ~0ULL, cnt = 0;\n"
"    unsigned char cb = (unsigned char)c;\n"
"    int vec = (((u64)a | (use_b ? (u64)b : 0ULL)) & 15ULL) == 0;\n"
"    u64 nv = vec ? n / 16 : 0;\n"
"    for (u64 k = tid; k < nv; k += step) {\n"
"        uint4 x = ((const uint4 *)a)[k], y;\n"
"        if (use_b) y = ((const uint4 *)b)[k];\n"
"        else { unsigned int w = cb * 0x01010101u; y = make_uint4(w, w, w, w); }\n"
"        if (x.x == y.x && x.y == y.y && x.z == y.z && x.w == y.w) continue;\n"
"        for (int j = 0; j < 16; j++) {\n"
"            u64 i = k * 16 + j;\n"
"            unsigned char want = use_b ? b[i] : cb;\n"
"            if (a[i] != want) { if (i < first) first = i; cnt++; }\n"
"        }\n"
"    }\n"
"    for (u64 i = nv * 16 + tid; i < n; i += step) {\n"
"        unsigned char want = use_b ? b[i] : cb;\n"
"        if (a[i] != want) { if (i < first) first = i; cnt++; }\n"
"    }\n"
"    for (int o = 16; o > 0; o >>= 1) {\n"
"        cnt += __shfl_down_sync(0xffffffffu, cnt, o);\n"
"        u64 f = __shfl_down_sync(0xffffffffu, first, o);\n"
"        if (f < first) first = f;\n"
"    }\n"
"    if ((threadIdx.x & 31) == 0 && cnt) { atomicAdd(&out[0], cnt); atomicMin(&out[1], first); }\n"
"}\n"
"__device__ double half_d(unsigned short h) {\n"
"    int s = (h >> 15) & 1, e = (h >> 10) & 0x1F, m = h & 0x3FF;\n"
"    double v;\n"
"    if (e == 0) v = ldexp((double)m, -24);\n"
"    else if (e == 31) v = m ? __longlong_as_double(0x7ff8000000000000LL) : __longlong_as_double(0x7ff0000000000000LL);\n"
"    else v = ldexp((double)(m | 0x400), e - 25);\n"
"    return s ? -v : v;\n"
"}\n"
"__device__ double elem(const void *p, int dt, long long i) {\n"
"    switch (dt) {\n"
"    case 0: return (double)((const float *)p)[i];\n"
"    case 1: return ((const double *)p)[i];\n"
"    case 2: return half_d(((const unsigned short *)p)[i]);\n"
"    case 3: return (double)__int_as_float((int)((unsigned int)((const unsigned short *)p)[i] << 16));\n"
"    case 4: return (double)((const long long *)p)[i];\n"
"    case 5: return (double)((const int *)p)[i];\n"
"    case 6: return (double)((const short *)p)[i];\n"
"    case 7: return (double)((const signed char *)p)[i];\n"
"    case 8: return (double)((const unsigned char *)p)[i];\n"
"    default: return ((const unsigned char *)p)[i] ? 1.0 : 0.0;\n"
"    }\n"
"}\n"
"__device__ int exact_eq(const void *a, const void *b, int dt, long long i) {\n"
"    switch (dt) {\n"
"    case 4: return ((const long long *)a)[i] == ((const long long *)b)[i];\n"
"    case 5: return ((const int *)a)[i] == ((const int *)b)[i];\n"
"    case 6: return ((const short *)a)[i] == ((const short *)b)[i];\n"
"    case 7: case 8: return ((const unsigned char *)a)[i] == ((const unsigned char *)b)[i];\n"
"    default: return (((const unsigned char *)a)[i] != 0) == (((const unsigned char *)b)[i] != 0);\n"
"    }\n"
"}\n"
"/* ok, tol and ratio of element i (kf_compare's rule) */\n"
"__device__ int judge(const void *g_, const void *r_, int dt, long long i, double atol, double rtol,\n"
"                     double *tol, double *ratio) {\n"
"    const double INF = __longlong_as_double(0x7ff0000000000000LL);\n"
"    int is_float = dt <= 3;\n"
"    double g = elem(g_, dt, i), r = elem(r_, dt, i);\n"
"    int ok;\n"
"    *tol = 0;\n"
"    if (!is_float) ok = exact_eq(g_, r_, dt, i);\n"
"    else if (isnan(r)) ok = isnan(g);\n"
"    else if (isinf(r)) ok = g == r;\n"
"    else { *tol = __dadd_rn(atol, __dmul_rn(rtol, fabs(r))); ok = isfinite(g) && fabs(g - r) <= *tol; }\n"
"    *ratio = is_float && isfinite(r) && isfinite(g) && *tol > 0 ? fabs(g - r) / *tol : INF;\n"
"    return ok;\n"
"}\n"
"__device__ void merge(part *x, const part *y) {\n"
"    x->count += y->count;\n"
"    if (y->first >= 0 && (x->first < 0 || y->first < x->first)) x->first = y->first;\n"
"    if (y->worst >= 0 && (x->worst < 0 || y->worst_ratio > x->worst_ratio ||\n"
"                          (y->worst_ratio == x->worst_ratio && y->worst < x->worst))) {\n"
"        x->worst = y->worst; x->worst_ratio = y->worst_ratio;\n"
"    }\n"
"}\n"
"__device__ void block_reduce(part *sh, part mine) {\n"
"    sh[threadIdx.x] = mine;\n"
"    __syncthreads();\n"
"    for (int s = NT / 2; s > 0; s >>= 1) {\n"
"        if (threadIdx.x < s) merge(&sh[threadIdx.x], &sh[threadIdx.x + s]);\n"
"        __syncthreads();\n"
"    }\n"
"}\n"
"extern \"C\" __global__ void __launch_bounds__(NT) kf_dc_close1(const void *got, const void *ref, int dt,\n"
"        long long n, double atol, double rtol, int mode, part *parts) {\n"
"    __shared__ part sh[NT];\n"
"    part mine; mine.count = 0; mine.first = -1; mine.worst = -1; mine.worst_ratio = 0;\n"
"    long long step = (long long)gridDim.x * NT;\n"
"    for (long long i = (long long)blockIdx.x * NT + threadIdx.x; i < n; i += step) {\n"
"        if (mode == 1) { if (elem(got, dt, i) != 0.0) mine.count++; continue; }\n"
"        double tol, ratio;\n"
"        if (judge(got, ref, dt, i, atol, rtol, &tol, &ratio)) continue;\n"
"        mine.count++;\n"
"        if (mine.first < 0) mine.first = i;\n"
"        if (mine.worst < 0 || ratio > mine.worst_ratio) { mine.worst = i; mine.worst_ratio = ratio; }\n"
"    }\n"
"    block_reduce(sh, mine);\n"
"    if (threadIdx.x == 0) parts[blockIdx.x] = sh[0];\n"
"}\n"
"extern \"C\" __global__ void __launch_bounds__(NT) kf_dc_close2(const part *parts, int nparts,\n"
"        const void *got, const void *ref, int dt, double atol, double rtol, int mode, fin *out) {\n"
"    __shared__ part sh[NT];\n"
"    part mine; mine.count = 0; mine.first = -1; mine.worst = -1; mine.worst_ratio = 0;\n"
"    for (int k = threadIdx.x; k < nparts; k += NT) merge(&mine, &parts[k]);\n"
"    block_reduce(sh, mine);\n"
"    if (threadIdx.x != 0) return;\n"
"    fin f;\n"
"    f.count = sh[0].count; f.first = sh[0].first; f.worst = sh[0].worst;\n"
"    f.got = f.expected = f.tol = f.worst_got = f.worst_expected = f.worst_tol = f.worst_ratio = 0;\n"
"    if (mode == 0 && f.first >= 0) {\n"
"        double tol, ratio;\n"
"        judge(got, ref, dt, f.first, atol, rtol, &tol, &ratio);\n"
"        f.got = elem(got, dt, f.first); f.expected = elem(ref, dt, f.first); f.tol = tol;\n"
"        judge(got, ref, dt, f.worst, atol, rtol, &tol, &ratio);\n"
"        f.worst_got = elem(got, dt, f.worst); f.worst_expected = elem(ref, dt, f.worst);\n"
"        f.worst_tol = tol; f.worst_ratio = ratio;\n"
"    }\n"
"    *out = f;\n"
"}\n";

#endif
