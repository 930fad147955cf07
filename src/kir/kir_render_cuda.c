/* kir_render_cuda.c: kernel IR -> one CUDA C++ translation unit for NVRTC.
 *
 * Expressions are the C renderer's (kir_render_c_expr.c): the prelude here defines, as
 * __device__ functions, every kf_ helper they call, plus the fixed-width integer types,
 * INT64_C, INFINITY and NAN, since NVRTC compiles without host headers. Float32 math stays
 * float32 (expf, tanhf, ...; never the __expf intrinsics); the runtime compiles with
 * --fmad=false and without fast math (src/targets/cuda_build.c).
 *
 * Mapping onto threads. A kernel runs on a 1-D grid of 1-D blocks (KIR_CU_BLOCK threads).
 * Every thread has kf_gtid (global thread index) and kf_gsize (threads in the grid). The
 * kernel body's statements run in order at the "uniform" level, where every thread executes
 * the same control flow:
 * - A PARALLEL loop (with the perfectly nested PARALLEL loops under it whose bounds do not
 *   use the outer ones, like OpenMP's collapse) becomes one grid-stride loop over the
 *   flattened iteration space, innermost loop fastest. Its body runs per thread, serially:
 *   loops inside are plain loops (PARALLEL and VECTOR ones too, UNROLL ones get
 *   `#pragma unroll`), barriers inside are no-ops.
 * - Promotion: when the body of that nest ends in a loop with constant bounds whose
 *   iterations provably write disjoint elements (it assigns no outer variable, loads no
 *   buffer it stores to, and every store index is c*m + Q + d with m its variable, c the
 *   same nonzero constant for every store to a buffer, Q the same expression of outer
 *   values and |d| spread < |c|), and the statements before it only declare locals, that
 *   loop joins the flattened space too (as its slowest dimension). This gives a matrix
 *   product lowered as "parallel over column blocks, serial over rows" one thread per
 *   (row, column block) instead of one per column block.
 * - A PARALLEL loop that updates variables declared outside it is run as a serial statement.
 * - Serial statements: without stores every thread runs them (they only compute locals);
 *   with stores global thread 0 runs them alone, or, when they also assign locals declared
 *   outside them, every thread runs them with each store done by thread 0 only.
 * - A serial loop, if or block that contains parallel loops is run by every thread, its body
 *   again at the uniform level.
 * - Between two statements where the later one reads a buffer an earlier one wrote, or
 *   writes a buffer an earlier one read or wrote (since the last barrier), the renderer puts
 *   a grid-wide barrier (kf_grid_sync, a generation counter in the device global
 *   kf_gridbar_NAME), as it does for a KIR barrier at the uniform level and at the end of a
 *   uniform loop's body. A kernel with such barriers must have all its blocks resident: the
 *   runtime launches kernels whose module defines kf_gridbar_NAME cooperatively and clamps
 *   their grid to what fits on the device (grid-stride loops make any grid size correct).
 *
 * Cooperative nests (kir_sched_gpu): when the outer loop of a PARALLEL nest has coop = G
 * (32: a warp, >= the block size: the block), each iteration of the flattened nest belongs
 * to a group of G threads (kf_lane = its thread's index in the group); no promotion. The
 * nest's body runs in every thread of the group: loops marked coop = 1 are split over the
 * lanes (lane, lane + G, ...), their reductions into outer variables (sum, max, min) start
 * from the identity in every lane but the first and are combined afterwards with
 * __shfl_xor_sync (kf_wred_*) plus, for a block, the warps' partials in a static
 * __shared__ array (kf_bred_*), so every thread has the result; statements that store
 * outside those loops run in lane 0; a group barrier (__syncwarp / __syncthreads) follows
 * a statement that stores a buffer the body loads.
 * Split rows: a nest with coop = KIR_COOP_SPLIT and a constant number of rows asks for
 * about KIR_CU_SPLIT_BLOCKS blocks and is launched cooperatively (it defines kf_gridbar_NAME,
 * so the runtime clamps the grid to what is resident); each row then belongs to kf_nb =
 * grid / rows consecutive blocks (kf_lane = index among their threads). Block partials go to
 * a device global (kf_part_T_NAME, two halves used alternately so a block never overwrites a
 * partial another one may still read), the group's blocks meet at a barrier on their own
 * counters (kf_group_sync on kf_grpbar_NAME) and every thread combines the kf_nb partials in
 * the same order (deterministic); group barriers become kf_group_sync too. A grid barrier
 * follows every split nest (the next one may group the blocks differently), and the half
 * (kf_par) alternates over the whole kernel.
 *
 * Launch geometry: block = the kernel's threads (kir_kernel.threads, else KIR_CU_BLOCK); grid = enough blocks for the largest
 * flattened space with constant bounds (at most KIR_CU_MAX_GRID), KIR_CU_DEFAULT_GRID when
 * a bound is not constant, and 1 block of 1 thread for a kernel without parallel loops. */
#include "kir/kir.h"
#include "kir/kir_int.h"
#include "kir/kir_rc.h"
#include "kir/kir_sched.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIR_CU_BLOCK 256
#define KIR_CU_MAX_GRID (1LL << 22)
#define KIR_CU_DEFAULT_GRID 4096
#define KIR_CU_LIN_MAX 24      /* atoms in a linear form */
#define KIR_CU_DEF_DEPTH 48    /* local definitions expanded at most this deep */
#define KIR_CU_SPLIT_BLOCKS 2048 /* blocks such a nest asks for (the runtime clamps to residency) */

static const char kir_cu_prelude[] =
    "/* Generated by kforge (kir_render_cuda): CUDA C++ for NVRTC. */\n"
    "#ifndef KF_CU_HELPERS\n"
    "#define KF_CU_HELPERS\n"
    "typedef signed char int8_t;\n"
    "typedef short int16_t;\n"
    "typedef int int32_t;\n"
    "typedef long long int64_t;\n"
    "typedef unsigned char uint8_t;\n"
    "typedef unsigned short uint16_t;\n"
    "typedef unsigned int uint32_t;\n"
    "typedef unsigned long long uint64_t;\n"
    "#define INT64_C(c) c##LL\n"
    "#define INFINITY __int_as_float(0x7f800000)\n"
    "#define NAN __int_as_float(0x7fffffff)\n"
    "#define KF_D static __device__ __forceinline__\n"
    "KF_D float kf_max_f32(float a, float b) { return (isnan(a) || a > b) ? a : b; }\n"
    "KF_D float kf_min_f32(float a, float b) { return (isnan(a) || a < b) ? a : b; }\n"
    "KF_D double kf_max_f64(double a, double b) { return (isnan(a) || a > b) ? a : b; }\n"
    "KF_D double kf_min_f64(double a, double b) { return (isnan(a) || a < b) ? a : b; }\n"
    "KF_D int32_t kf_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }\n"
    "KF_D int32_t kf_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }\n"
    "KF_D int64_t kf_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }\n"
    "KF_D int64_t kf_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }\n"
    "KF_D float kf_sign_f32(float a) { return (float)((a > 0.0f) - (a < 0.0f)); }\n"
    "KF_D double kf_sign_f64(double a) { return (double)((a > 0.0) - (a < 0.0)); }\n"
    "KF_D int32_t kf_sign_i32(int32_t a) { return (a > 0) - (a < 0); }\n"
    "KF_D int64_t kf_sign_i64(int64_t a) { return (a > 0) - (a < 0); }\n"
    "KF_D float kf_mod_f32(float a, float b) {\n"
    "    float r = fmodf(a, b);\n"
    "    return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;\n"
    "}\n"
    "KF_D double kf_mod_f64(double a, double b) {\n"
    "    double r = fmod(a, b);\n"
    "    return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r;\n"
    "}\n"
    "KF_D int64_t kf_pow_i64(int64_t b, int64_t e) {\n"
    "    if (e < 0) return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;\n"
    "    uint64_t r = 1, x = (uint64_t)b;\n"
    "    for (; e; e >>= 1, x *= x)\n"
    "        if (e & 1) r *= x;\n"
    "    return (int64_t)r;\n"
    "}\n"
    "KF_D float kf_bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }\n"
    "KF_D float kf_exp2i_f32(float n) { return __uint_as_float((uint32_t)((int32_t)n + 127) << 23); }\n"
    "KF_D float kf_frexp_m_f32(float x) { return __uint_as_float((__float_as_uint(x) & 0x007FFFFFu) | 0x3F800000u); }\n"
    "KF_D float kf_frexp_e_f32(float x) { return (float)((int32_t)((__float_as_uint(x) >> 23) & 0xFFu) - 127); }\n"
    "KF_D double kf_frexp_m_f64(double x) { return __longlong_as_double((__double_as_longlong(x) & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL); }\n"
    "KF_D double kf_frexp_e_f64(double x) { return (double)((int)((__double_as_longlong(x) >> 52) & 0x7FF) - 1023); }\n"
    "KF_D double kf_exp2i_f64(double n) { return __longlong_as_double((long long)(((uint64_t)((int64_t)n + 1023)) << 52)); }\n"
    "KF_D uint16_t kf_f32_to_bf16(float f) {\n"
    "    uint32_t u = __float_as_uint(f);\n"
    "    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40);\n"
    "    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);\n"
    "}\n"
    "KF_D float kf_f16_to_f32(uint16_t h) {\n"
    "    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;\n"
    "    if (e == 0x1F) return __uint_as_float(s | 0x7F800000u | (m << 13));\n"
    "    if (e) return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));\n"
    "    float f = (float)m * 5.9604644775390625e-8f; /* m * 2^-24 */\n"
    "    return s ? -f : f;\n"
    "}\n"
    "KF_D uint16_t kf_f32_to_f16(float f) {\n"
    "    uint32_t u = __float_as_uint(f);\n"
    "    uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;\n"
    "    if (a >= 0x7F800000u) return (uint16_t)(s | 0x7C00u | (a > 0x7F800000u ? 0x200u : 0u));\n"
    "    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u); /* rounds to infinity */\n"
    "    if (a < 0x38800000u) /* below 2^-14: a float16 subnormal, m * 2^-24 */\n"
    "        return (uint16_t)(s | (uint32_t)nearbyintf(fabsf(f) * 16777216.0f));\n"
    "    return (uint16_t)(s | ((a + 0xFFFu + ((a >> 13) & 1u) - 0x38000000u) >> 13));\n"
    "}\n"
    "/* Grid-wide barrier for cooperatively launched kernels: bar[0] counts arrivals, bar[1] is\n"
    " * the generation the last block to arrive advances. */\n"
    "KF_D void kf_grid_sync(unsigned int *bar) {\n"
    "    __syncthreads();\n"
    "    if (threadIdx.x == 0) {\n"
    "        volatile unsigned int *gen = bar + 1;\n"
    "        unsigned int g = *gen;\n"
    "        __threadfence();\n"
    "        if (atomicAdd(bar, 1u) == gridDim.x - 1u) {\n"
    "            atomicExch(bar, 0u);\n"
    "            __threadfence();\n"
    "            atomicAdd(bar + 1, 1u);\n"
    "        } else {\n"
    "            while (*gen == g) {\n"
    "            }\n"
    "        }\n"
    "        __threadfence();\n"
    "    }\n"
    "    __syncthreads();\n"
    "}\n"
    "/* Barrier of the n consecutive blocks of one group (split rows): same scheme on the\n"
    " * group's own counter pair. */\n"
    "KF_D void kf_group_sync(unsigned int *bar, unsigned int n) {\n"
    "    __syncthreads();\n"
    "    if (n > 1u && threadIdx.x == 0) {\n"
    "        volatile unsigned int *gen = bar + 1;\n"
    "        unsigned int g = *gen;\n"
    "        __threadfence();\n"
    "        if (atomicAdd(bar, 1u) == n - 1u) {\n"
    "            atomicExch(bar, 0u);\n"
    "            __threadfence();\n"
    "            atomicAdd(bar + 1, 1u);\n"
    "        } else {\n"
    "            while (*gen == g) {\n"
    "            }\n"
    "        }\n"
    "        __threadfence();\n"
    "    }\n"
    "    __syncthreads();\n"
    "}\n"
    "/* Reductions over a warp (every lane gets the result) and over the block (partials of the\n"
    " * warps through sh, 32 entries; every thread gets the result). */\n"
    "KF_D float kf_radd_f32(float a, float b) { return a + b; }\n"
    "KF_D double kf_radd_f64(double a, double b) { return a + b; }\n"
    "KF_D int32_t kf_radd_i32(int32_t a, int32_t b) { return a + b; }\n"
    "KF_D int64_t kf_radd_i64(int64_t a, int64_t b) { return a + b; }\n"
    "#define KF_RED(OP, T, TN, COMB)                                                      \\\n"
    "    KF_D T kf_wred_##OP##_##TN(T v) {                                                 \\\n"
    "        for (int o = 16; o > 0; o >>= 1) v = COMB(v, __shfl_xor_sync(0xffffffffu, v, o)); \\\n"
    "        return v;                                                                     \\\n"
    "    }                                                                                 \\\n"
    "    KF_D T kf_bred_##OP##_##TN(T v, T *sh) {                                          \\\n"
    "        v = kf_wred_##OP##_##TN(v);                                                   \\\n"
    "        __syncthreads();                                                              \\\n"
    "        if ((threadIdx.x & 31u) == 0) sh[threadIdx.x >> 5] = v;                       \\\n"
    "        __syncthreads();                                                              \\\n"
    "        T r = sh[0];                                                                  \\\n"
    "        for (unsigned int i = 1; i < (blockDim.x >> 5); i++) r = COMB(r, sh[i]);      \\\n"
    "        return r;                                                                     \\\n"
    "    }                                                                                 \\\n"
    "    KF_D T kf_gred_##OP##_##TN(T v, T *sh, T *part, int *par, unsigned int *bar, int64_t nb) { \\\n"
    "        v = kf_bred_##OP##_##TN(v, sh);                                               \\\n"
    "        if (nb <= 1) return v;                                                        \\\n"
    "        int64_t g = blockIdx.x / nb, p0 = (int64_t)(*par) * gridDim.x;               \\\n"
    "        if (threadIdx.x == 0) part[p0 + blockIdx.x] = v;                              \\\n"
    "        kf_group_sync(bar + 2 * g, (unsigned int)nb);                                 \\\n"
    "        volatile T *q = part + p0 + g * nb;                                           \\\n"
    "        T r = q[0];                                                                   \\\n"
    "        if (nb < 32) {                                                                \\\n"
    "            for (int64_t i = 1; i < nb; i++) r = COMB(r, q[i]);                       \\\n"
    "        } else { /* many partials: the first warp combines them, lane i taking i, i + 32, ... */ \\\n"
    "            if (threadIdx.x < 32u) {                                                  \\\n"
    "                T w = q[threadIdx.x];                                                 \\\n"
    "                for (int64_t i = threadIdx.x + 32; i < nb; i += 32) w = COMB(w, q[i]); \\\n"
    "                w = kf_wred_##OP##_##TN(w);                                           \\\n"
    "                if (threadIdx.x == 0) sh[0] = w;                                      \\\n"
    "            }                                                                         \\\n"
    "            __syncthreads();                                                          \\\n"
    "            r = sh[0];                                                                \\\n"
    "        }                                                                             \\\n"
    "        *par ^= 1;                                                                    \\\n"
    "        return r;                                                                     \\\n"
    "    }\n"
    "KF_RED(add, float, f32, kf_radd_f32)\n"
    "KF_RED(add, double, f64, kf_radd_f64)\n"
    "KF_RED(add, int32_t, i32, kf_radd_i32)\n"
    "KF_RED(add, int64_t, i64, kf_radd_i64)\n"
    "KF_RED(max, float, f32, kf_max_f32)\n"
    "KF_RED(max, double, f64, kf_max_f64)\n"
    "KF_RED(max, int32_t, i32, kf_max_i32)\n"
    "KF_RED(max, int64_t, i64, kf_max_i64)\n"
    "KF_RED(min, float, f32, kf_min_f32)\n"
    "KF_RED(min, double, f64, kf_min_f64)\n"
    "KF_RED(min, int32_t, i32, kf_min_i32)\n"
    "KF_RED(min, int64_t, i64, kf_min_i64)\n"
    "#endif\n";

/* C and C++ keywords, CUDA built-ins, the math functions the expressions call, and the
 * prelude's names: a buffer or variable with one of these names gets a v_ prefix. */
static const char *const kir_cu_reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "asm", "bool", "true", "false", "class",
    "new", "delete", "this", "template", "typename", "namespace", "operator", "private",
    "public", "protected", "virtual", "friend", "using", "try", "catch", "throw", "explicit",
    "mutable", "export", "nullptr", "and", "or", "not", "xor", "bitand", "bitor", "compl",
    "and_eq", "or_eq", "xor_eq", "not_eq", "decltype", "constexpr", "alignas", "alignof",
    "char16_t", "char32_t", "noexcept", "static_assert", "thread_local", "typeid",
    "dynamic_cast", "static_cast", "const_cast", "reinterpret_cast", "wchar_t", "concept",
    "requires", "co_await", "co_yield", "co_return", "char8_t", "consteval", "constinit",
    "main", "errno", "threadIdx", "blockIdx", "blockDim", "gridDim", "warpSize", "dim3",
    "min", "max", "exp", "expf", "expm1", "expm1f", "log", "logf", "log1p", "log1pf", "sqrt",
    "sqrtf", "tanh", "tanhf", "erf", "erff", "sin", "sinf", "cos", "cosf", "floor", "floorf",
    "ceil", "ceilf", "nearbyint", "nearbyintf", "fabs", "fabsf", "pow", "powf", "fmod", "fmodf",
    "abs", "llabs", "isnan", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t",
    "uint32_t", "uint64_t", "NAN", "INFINITY", "NULL", "linux", "unix", "i386", NULL,
};

static const char *const kir_cu_reserved_prefix[] = {"kf_", "KF_", "__", "INT", "UINT", "cuda", NULL};

static int kir_cu_is_reserved(const char *s) {
    for (int i = 0; kir_cu_reserved_prefix[i]; i++)
        if (strncmp(s, kir_cu_reserved_prefix[i], strlen(kir_cu_reserved_prefix[i])) == 0) return 1;
    for (int i = 0; kir_cu_reserved[i]; i++)
        if (strcmp(s, kir_cu_reserved[i]) == 0) return 1;
    return 0;
}

static int kir_cu_is_ident(const char *s) {
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
}

/* An identifier for name, distinct from the n names in taken and from reserved ones. */
static char *kir_cu_name(const char *name, char *const *taken, int n) {
    size_t len = strlen(name ? name : "");
    char *base = malloc(len + 3);
    if (!base) return NULL;
    size_t j = 0;
    if (!name || !isalpha((unsigned char)name[0])) {
        base[j++] = 'v';
        base[j++] = '_';
    }
    for (size_t i = 0; i < len; i++) base[j++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    base[j] = '\0';
    for (char *p = base; p[0] && p[1]; p++) /* no "__" anywhere: reserved in C++ */
        if (p[0] == '_' && p[1] == '_') p[1] = 'x';
    if (kir_cu_is_reserved(base)) {
        char *pre = kf_asprintf("v_%s", base);
        free(base);
        if (!(base = pre)) return NULL;
    }
    char *out = kf_strdup(base);
    for (int suffix = 1; out; suffix++) {
        int clash = kir_cu_is_reserved(out);
        for (int i = 0; i < n && !clash; i++) clash = strcmp(out, taken[i]) == 0;
        if (!clash) break;
        free(out);
        out = kf_asprintf("%s_%d", base, suffix);
    }
    free(base);
    return out;
}

/* ---- renderer state ---- */

typedef struct kir_cu {
    kir_rc c;                  /* names, scopes and the first error (shared with the expressions) */
    unsigned char *rd, *wr;    /* buffers read / written since the last grid barrier */
    int grid_syncs;
    int n_dist;                /* distributed loop nests rendered */
    int64_t max_total;         /* largest constant flattened space */
    int unknown_total;         /* some flattened space has non-constant bounds */
    int pred;                  /* stores are done by one thread only: 1 global thread 0,
                                * 2 the group's first thread (kf_lane == 0) */
    int threads;               /* threads per block */
    int group;                 /* inside a cooperative nest: threads per group, else 0 */
    int sh_used[KIR_T_F64 + 1];/* block reductions need a shared array of this type */
    int split;                 /* inside a split nest: a group is kf_nb blocks (runtime value) */
    int split_used;            /* the kernel has split nests (group barriers, partials) */
    int part_used[KIR_T_F64 + 1]; /* split reductions need global partials of this type */
    unsigned char *grp_rd;     /* buffers loaded anywhere in the cooperative nest's body */
    const kir_expr **def;      /* var -> its only initialiser (declared once, never assigned) */
    const unsigned char *vec_st; /* 16-byte accesses: stores of flagged buffers at one of
                                  * c.vec_idx go to component c.vec_lane of the float4 kf_vs<buf> */
    int *declared_in;          /* scratch flags per var */
} kir_cu;

static void kir_cu_indent(int depth, kf_str *o) {
    for (int i = 0; i < depth; i++) kf_str_append(o, "    ");
}

static void kir_cu_scope_end(kir_cu *x, int mark) {
    kir_rc *c = &x->c;
    while (c->n_scope > mark) c->live[c->scope[--c->n_scope]] = 0;
}

static int kir_cu_declare(kir_cu *x, int var) {
    kir_rc *c = &x->c;
    if (!kir_rc_var_ok(c, var)) return 0;
    if (c->live[var]) {
        kir_rc_fail(c, KF_E_INVALID, "variable '%s' declared twice in one scope", c->k->vars[var].name);
        return 0;
    }
    if (c->n_scope == c->cap_scope) {
        int cap = c->cap_scope ? c->cap_scope * 2 : 16;
        int *s = realloc(c->scope, (size_t)cap * sizeof *s);
        if (!s) {
            kir_rc_fail(c, KF_E_NOMEM, "out of memory");
            return 0;
        }
        c->scope = s;
        c->cap_scope = cap;
    }
    c->scope[c->n_scope++] = var;
    c->live[var] = 1;
    return 1;
}

/* ---- questions about statements ---- */

static void kir_cu_expr_bufs(const kir_expr *e, unsigned char *rd) {
    if (!e) return;
    if (e->kind == KIR_E_LOAD && e->buf >= 0) rd[e->buf] = 1;
    kir_cu_expr_bufs(e->a, rd);
    kir_cu_expr_bufs(e->b, rd);
    kir_cu_expr_bufs(e->c, rd);
}

/* Buffers s loads (rd) and stores (wr); both arrays have one flag per kernel buffer. */
static void kir_cu_stmt_bufs(const kir_stmt *s, unsigned char *rd, unsigned char *wr) {
    if (!s) return;
    kir_cu_expr_bufs(s->lo, rd);
    kir_cu_expr_bufs(s->hi, rd);
    kir_cu_expr_bufs(s->idx, rd);
    kir_cu_expr_bufs(s->val, rd);
    kir_cu_expr_bufs(s->cond, rd);
    if (s->kind == KIR_S_STORE && s->buf >= 0 && wr) wr[s->buf] = 1;
    for (int i = 0; i < s->n_body; i++) kir_cu_stmt_bufs(s->body[i], rd, wr);
    for (int i = 0; i < s->n_els; i++) kir_cu_stmt_bufs(s->els[i], rd, wr);
}

static int kir_cu_has_kind(const kir_stmt *s, kir_stmt_kind kind, int parallel_loop) {
    if (!s) return 0;
    if (parallel_loop ? (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_PARALLEL) : s->kind == kind) return 1;
    for (int i = 0; i < s->n_body; i++)
        if (kir_cu_has_kind(s->body[i], kind, parallel_loop)) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (kir_cu_has_kind(s->els[i], kind, parallel_loop)) return 1;
    return 0;
}

/* 1 if s assigns a variable that is live (declared outside s) right now. */
static int kir_cu_assigns_outer(const kir_cu *x, const kir_stmt *s) {
    if (!s) return 0;
    if (s->kind == KIR_S_ASSIGN && s->var >= 0 && s->var < x->c.k->n_vars && x->c.live[s->var]) return 1;
    for (int i = 0; i < s->n_body; i++)
        if (kir_cu_assigns_outer(x, s->body[i])) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (kir_cu_assigns_outer(x, s->els[i])) return 1;
    return 0;
}

/* Marks every variable declared inside s (DECLs and loop variables) in flags. */
static void kir_cu_mark_declared(const kir_stmt *s, int n_vars, int *flags) {
    if (!s) return;
    if ((s->kind == KIR_S_DECL || s->kind == KIR_S_FOR) && s->var >= 0 && s->var < n_vars) flags[s->var] = 1;
    for (int i = 0; i < s->n_body; i++) kir_cu_mark_declared(s->body[i], n_vars, flags);
    for (int i = 0; i < s->n_els; i++) kir_cu_mark_declared(s->els[i], n_vars, flags);
}

/* 1 if s assigns a variable not marked in flags (declared outside s). */
static int kir_cu_assigns_unmarked(const kir_stmt *s, int n_vars, const int *flags) {
    if (!s) return 0;
    if (s->kind == KIR_S_ASSIGN && (s->var < 0 || s->var >= n_vars || !flags[s->var])) return 1;
    for (int i = 0; i < s->n_body; i++)
        if (kir_cu_assigns_unmarked(s->body[i], n_vars, flags)) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (kir_cu_assigns_unmarked(s->els[i], n_vars, flags)) return 1;
    return 0;
}

/* ---- variable definitions: var -> initialiser, for variables declared once, never assigned */

static void kir_cu_count(const kir_stmt *s, int n_vars, int *decls, int *assigns, const kir_expr **def) {
    if (!s) return;
    if (s->var >= 0 && s->var < n_vars) {
        if (s->kind == KIR_S_DECL) {
            decls[s->var]++;
            def[s->var] = s->val;
        } else if (s->kind == KIR_S_FOR) {
            decls[s->var] += 2; /* a loop variable changes: never a definition */
        } else if (s->kind == KIR_S_ASSIGN) {
            assigns[s->var]++;
        }
    }
    for (int i = 0; i < s->n_body; i++) kir_cu_count(s->body[i], n_vars, decls, assigns, def);
    for (int i = 0; i < s->n_els; i++) kir_cu_count(s->els[i], n_vars, decls, assigns, def);
}

static int kir_cu_defs(kir_cu *x) {
    const kir_kernel *k = x->c.k;
    size_t nv = k->n_vars ? (size_t)k->n_vars : 1;
    int *decls = calloc(nv * 2, sizeof *decls);
    x->def = calloc(nv, sizeof *x->def);
    x->declared_in = calloc(nv, sizeof *x->declared_in);
    if (!decls || !x->def || !x->declared_in) {
        free(decls);
        return KF_E_NOMEM;
    }
    kir_cu_count(k->body, k->n_vars, decls, decls + nv, x->def);
    for (int v = 0; v < k->n_vars; v++)
        if (decls[v] != 1 || decls[nv + v] != 0) x->def[v] = NULL;
    free(decls);
    return 0;
}

/* ---- linear forms over atoms, for the promotion's disjointness proof ---- */

typedef struct kir_cu_lin {
    const kir_expr *atom[KIR_CU_LIN_MAX];
    int64_t coef[KIR_CU_LIN_MAX];
    int n;
    int64_t k;   /* constant term */
    int ok;
} kir_cu_lin;

/* Follows a variable to its definition (if any). */
static const kir_expr *kir_cu_resolve(const kir_cu *x, const kir_expr *e, int *depth) {
    while (e && e->kind == KIR_E_VAR && e->var >= 0 && e->var < x->c.k->n_vars && x->def[e->var] &&
           *depth < KIR_CU_DEF_DEPTH) {
        e = x->def[e->var];
        (*depth)++;
    }
    return e;
}

/* Structural equality with definitions expanded. */
static int kir_cu_eq(const kir_cu *x, const kir_expr *a, const kir_expr *b, int depth) {
    if (depth > KIR_CU_DEF_DEPTH) return 0;
    int da = depth, db = depth;
    a = kir_cu_resolve(x, a, &da);
    b = kir_cu_resolve(x, b, &db);
    if (!a || !b) return a == b;
    if (a == b) return 1;
    if (a->kind != b->kind || a->type != b->type) return 0;
    int d = (da > db ? da : db) + 1;
    switch (a->kind) {
    case KIR_E_CONST_I: return a->ival == b->ival;
    case KIR_E_CONST_F: return a->fval == b->fval;
    case KIR_E_VAR: return a->var == b->var;
    case KIR_E_LOAD: return a->buf == b->buf && kir_cu_eq(x, a->a, b->a, d);
    default:
        return a->op == b->op && kir_cu_eq(x, a->a, b->a, d) && kir_cu_eq(x, a->b, b->b, d) &&
               kir_cu_eq(x, a->c, b->c, d);
    }
}

/* 1 if e (definitions expanded) reads a variable flagged in flags that has no definition. */
static int kir_cu_uses_flagged(const kir_cu *x, const kir_expr *e, const int *flags, int depth) {
    if (!e) return 0;
    if (depth > KIR_CU_DEF_DEPTH) return 1;
    if (e->kind == KIR_E_VAR) {
        if (e->var < 0 || e->var >= x->c.k->n_vars) return 1;
        if (x->def[e->var]) return kir_cu_uses_flagged(x, x->def[e->var], flags, depth + 1);
        return flags[e->var];
    }
    return kir_cu_uses_flagged(x, e->a, flags, depth + 1) || kir_cu_uses_flagged(x, e->b, flags, depth + 1) ||
           kir_cu_uses_flagged(x, e->c, flags, depth + 1);
}

static void kir_cu_lin_atom(const kir_cu *x, kir_cu_lin *l, const kir_expr *atom, int64_t coef) {
    if (!l->ok || coef == 0) return;
    for (int i = 0; i < l->n; i++)
        if (kir_cu_eq(x, l->atom[i], atom, 0)) {
            if (__builtin_add_overflow(l->coef[i], coef, &l->coef[i])) l->ok = 0;
            return;
        }
    if (l->n == KIR_CU_LIN_MAX) {
        l->ok = 0;
        return;
    }
    l->atom[l->n] = atom;
    l->coef[l->n++] = coef;
}

/* l += scale * e */
static void kir_cu_linearize(const kir_cu *x, const kir_expr *e, int64_t scale, kir_cu_lin *l, int depth) {
    if (!l->ok) return;
    if (!e || depth > KIR_CU_DEF_DEPTH) {
        l->ok = 0;
        return;
    }
    int d = depth;
    e = kir_cu_resolve(x, e, &d);
    if (e->type != KIR_T_I32 && e->type != KIR_T_I64) {
        l->ok = 0;
        return;
    }
    int64_t t;
    switch (e->kind) {
    case KIR_E_CONST_I:
        if (__builtin_mul_overflow(e->ival, scale, &t) || __builtin_add_overflow(l->k, t, &l->k)) l->ok = 0;
        return;
    case KIR_E_CAST:
        if (e->a && (e->a->type == KIR_T_I32 || e->a->type == KIR_T_I64)) {
            kir_cu_linearize(x, e->a, scale, l, d + 1);
            return;
        }
        break;
    case KIR_E_UN:
        if (e->op == KIR_NEG) {
            kir_cu_linearize(x, e->a, -scale, l, d + 1);
            return;
        }
        break;
    case KIR_E_BIN:
        if (e->op == KIR_ADD || e->op == KIR_SUB) {
            kir_cu_linearize(x, e->a, scale, l, d + 1);
            kir_cu_linearize(x, e->b, e->op == KIR_SUB ? -scale : scale, l, d + 1);
            return;
        }
        if (e->op == KIR_MUL) {
            kir_cu_lin ca = {.ok = 1}, cb = {.ok = 1};
            kir_cu_linearize(x, e->a, 1, &ca, d + 1);
            kir_cu_linearize(x, e->b, 1, &cb, d + 1);
            const kir_expr *other = NULL;
            int64_t factor = 0;
            if (ca.ok && ca.n == 0) {
                factor = ca.k;
                other = e->b;
            } else if (cb.ok && cb.n == 0) {
                factor = cb.k;
                other = e->a;
            }
            if (other) {
                if (__builtin_mul_overflow(factor, scale, &t)) l->ok = 0;
                else kir_cu_linearize(x, other, t, l, d + 1);
                return;
            }
        }
        break;
    default: break;
    }
    kir_cu_lin_atom(x, l, e, scale); /* anything else is an opaque atom */
}

typedef struct kir_cu_store_form {
    int buf;
    int64_t c, d;            /* c * m + Q + d */
    kir_cu_lin q;            /* Q: atoms only */
} kir_cu_store_form;

typedef struct kir_cu_promo {
    const kir_cu *x;
    int m;                   /* the promoted loop's variable */
    const int *inside;       /* vars declared inside the promoted loop */
    kir_cu_store_form *forms;
    int n_forms, cap_forms;
    int ok;
} kir_cu_promo;

static int kir_cu_lin_same_atoms(const kir_cu *x, const kir_cu_lin *a, const kir_cu_lin *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        int found = 0;
        for (int j = 0; j < b->n && !found; j++)
            found = a->coef[i] == b->coef[j] && kir_cu_eq(x, a->atom[i], b->atom[j], 0);
        if (!found) return 0;
    }
    return 1;
}

static void kir_cu_promo_store(kir_cu_promo *pr, const kir_stmt *s) {
    const kir_cu *x = pr->x;
    kir_cu_lin l = {.ok = 1};
    kir_cu_linearize(x, s->idx, 1, &l, 0);
    if (!l.ok) {
        pr->ok = 0;
        return;
    }
    kir_cu_store_form f = {.buf = s->buf, .d = l.k, .q = {.ok = 1}};
    for (int i = 0; i < l.n; i++) {
        const kir_expr *a = l.atom[i];
        if (a->kind == KIR_E_VAR && a->var == pr->m) {
            f.c += l.coef[i];
        } else if (kir_cu_uses_flagged(x, a, pr->inside, 0)) {
            pr->ok = 0; /* depends on the loop variable (or a local of the loop) non-linearly */
            return;
        } else {
            f.q.atom[f.q.n] = a;
            f.q.coef[f.q.n++] = l.coef[i];
        }
    }
    if (f.c == 0) {
        pr->ok = 0;
        return;
    }
    for (int i = 0; i < pr->n_forms; i++) {
        kir_cu_store_form *g = &pr->forms[i];
        if (g->buf != f.buf) continue;
        if (g->c != f.c || !kir_cu_lin_same_atoms(x, &g->q, &f.q)) {
            pr->ok = 0;
            return;
        }
    }
    if (pr->n_forms == pr->cap_forms) {
        int cap = pr->cap_forms ? pr->cap_forms * 2 : 8;
        kir_cu_store_form *nf = realloc(pr->forms, (size_t)cap * sizeof *nf);
        if (!nf) {
            pr->ok = 0;
            return;
        }
        pr->forms = nf;
        pr->cap_forms = cap;
    }
    pr->forms[pr->n_forms++] = f;
}

static void kir_cu_promo_walk(kir_cu_promo *pr, const kir_stmt *s) {
    if (!s || !pr->ok) return;
    if (s->kind == KIR_S_STORE) kir_cu_promo_store(pr, s);
    for (int i = 0; i < s->n_body && pr->ok; i++) kir_cu_promo_walk(pr, s->body[i]);
    for (int i = 0; i < s->n_els && pr->ok; i++) kir_cu_promo_walk(pr, s->els[i]);
}

/* 1 if the last statement of body (a loop) may join the flattened space: see the file comment. */
static int kir_cu_can_promote(kir_cu *x, kir_stmt *const *body, int n) {
    const kir_kernel *k = x->c.k;
    if (n < 1) return 0;
    const kir_stmt *l = body[n - 1];
    if (!l || l->kind != KIR_S_FOR || !l->lo || !l->hi || l->lo->kind != KIR_E_CONST_I ||
        l->hi->kind != KIR_E_CONST_I || l->step <= 0 || l->var < 0 || l->var >= k->n_vars)
        return 0;
    if (l->hi->ival - l->lo->ival < 2 * l->step) return 0;
    for (int i = 0; i < n - 1; i++)
        if (!body[i] || body[i]->kind != KIR_S_DECL) return 0;
    int *inside = x->declared_in;
    memset(inside, 0, (size_t)k->n_vars * sizeof *inside);
    kir_cu_mark_declared(l, k->n_vars, inside);
    if (kir_cu_assigns_unmarked(l, k->n_vars, inside)) return 0;
    size_t nb = k->n_bufs ? (size_t)k->n_bufs : 1;
    unsigned char *rd = calloc(nb * 2, 1);
    if (!rd) return 0;
    unsigned char *wr = rd + nb;
    for (int i = 0; i < n; i++) kir_cu_stmt_bufs(body[i], rd, wr);
    int ok = 1;
    for (int b = 0; b < k->n_bufs && ok; b++) ok = !(rd[b] && wr[b]);
    free(rd);
    if (!ok) return 0;
    kir_cu_promo pr = {.x = x, .m = l->var, .inside = inside, .ok = 1};
    for (int i = 0; i < l->n_body && pr.ok; i++) kir_cu_promo_walk(&pr, l->body[i]);
    for (int i = 0; i < pr.n_forms && pr.ok; i++) {
        int64_t lo = pr.forms[i].d, hi = pr.forms[i].d;
        for (int j = 0; j < pr.n_forms; j++)
            if (pr.forms[j].buf == pr.forms[i].buf) {
                if (pr.forms[j].d < lo) lo = pr.forms[j].d;
                if (pr.forms[j].d > hi) hi = pr.forms[j].d;
            }
        int64_t c = pr.forms[i].c < 0 ? -pr.forms[i].c : pr.forms[i].c;
        if (hi - lo >= c) pr.ok = 0;
    }
    free(pr.forms);
    return pr.ok;
}

/* ---- statements per thread ---- */

static void kir_cu_tstmt(kir_cu *x, const kir_stmt *s, int depth, kf_str *o);

static void kir_cu_tlist(kir_cu *x, kir_stmt *const *l, int n, int depth, kf_str *o) {
    int mark = x->c.n_scope;
    for (int i = 0; i < n && !x->c.rc; i++) kir_cu_tstmt(x, l[i], depth, o);
    kir_cu_scope_end(x, mark);
}

static int kir_cu_loop_var_ok(kir_cu *x, const kir_stmt *s) {
    kir_rc *c = &x->c;
    if (!kir_rc_var_ok(c, s->var)) return 0;
    kir_type t = c->k->vars[s->var].type;
    if (t != KIR_T_I32 && t != KIR_T_I64) {
        kir_rc_fail(c, KF_E_INVALID, "loop variable '%s' is %s, not an integer", c->k->vars[s->var].name,
                    kir_type_name(t));
        return 0;
    }
    if (s->step <= 0) {
        kir_rc_fail(c, KF_E_INVALID, "loop over '%s' has step %lld (must be > 0)", c->k->vars[s->var].name,
                    (long long)s->step);
        return 0;
    }
    return 1;
}

static int64_t kir_cu_unroll_count(const kir_stmt *s) {
    if (s->unroll > 0) return s->unroll > 1024 ? 1024 : s->unroll;
    if (s->lo && s->hi && s->lo->kind == KIR_E_CONST_I && s->hi->kind == KIR_E_CONST_I) {
        int64_t span = s->hi->ival - s->lo->ival;
        int64_t trip = span <= 0 ? 0 : (span + s->step - 1) / s->step;
        return trip < 2 ? 1 : trip > 1024 ? 1024 : trip;
    }
    return 8;
}

static void kir_cu_tfor(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    if (!kir_cu_loop_var_ok(x, s)) return;
    int mark = c->n_scope;
    kir_type t = c->k->vars[s->var].type;
    const char *v = c->vname[s->var];
    if (s->loop == KIR_LOOP_UNROLL) {
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "#pragma unroll %lld\n", (long long)kir_cu_unroll_count(s));
    }
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "for (%s %s = ", kir_rc_ctype(t), v);
    kir_rc_expr_as(c, s->lo, t, o);
    kf_str_appendf(o, "; %s < ", v);
    if (!kir_cu_declare(x, s->var)) return;
    kir_rc_expr_as(c, s->hi, t, o);
    kf_str_appendf(o, "; %s += %lld) {\n", v, (long long)s->step);
    kir_cu_tlist(x, s->body, s->n_body, depth + 1, o);
    kir_cu_indent(depth, o);
    kf_str_append(o, "}\n");
    kir_cu_scope_end(x, mark);
}

static void kir_cu_store(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    if (s->buf < 0 || s->buf >= k->n_bufs) {
        kir_rc_fail(c, KF_E_INVALID, "store to buffer id %d out of range", s->buf);
        return;
    }
    if (!k->bufs[s->buf].writes) {
        kir_rc_fail(c, KF_E_INVALID, "store to buffer '%s', which is declared read-only", k->bufs[s->buf].name);
        return;
    }
    if (s->idx && (s->idx->type == KIR_T_F32 || s->idx->type == KIR_T_F64)) {
        kir_rc_fail(c, KF_E_INVALID, "index into '%s' is a float", k->bufs[s->buf].name);
        return;
    }
    kf_dtype dt = k->bufs[s->buf].dtype;
    kir_cu_indent(depth, o);
    for (int j = 0; x->vec_st && x->vec_st[s->buf] && j < c->n_vec_idx; j++)
        if (c->vec_idx[j] == s->idx) {
            kf_str_appendf(o, "kf_vs%d.%c = ", s->buf, "xyzw"[c->vec_lane & 3]);
            kir_rc_expr_as(c, s->val, KIR_T_F32, o);
            kf_str_append(o, ";\n");
            return;
        }
    if (x->pred) kf_str_append(o, x->pred == 2 ? "if (kf_lane == 0) " : "if (kf_gtid == 0) ");
    kf_str_appendf(o, "%s[", c->bname[s->buf]);
    kir_rc_expr(c, s->idx, o);
    kf_str_append(o, "] = ");
    const char *conv = dt == KF_F16 ? "kf_f32_to_f16(" : dt == KF_BF16 ? "kf_f32_to_bf16(" : "";
    kf_str_append(o, conv);
    kir_rc_expr_as(c, s->val, dt == KF_BOOL ? KIR_T_BOOL : kir_type_of_dtype(dt), o);
    kf_str_append(o, *conv ? ");\n" : ";\n");
}

static void kir_cu_decl(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    if (!kir_rc_var_ok(c, s->var)) return;
    kir_type t = c->k->vars[s->var].type;
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "%s %s = ", kir_rc_ctype(t), c->vname[s->var]);
    if (s->val) kir_rc_expr_as(c, s->val, t, o);
    else kf_str_append(o, "0");
    kf_str_append(o, ";\n");
    if (!kir_cu_declare(x, s->var)) return;
    if (c->reads[s->var] == 0) {
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "(void)%s;\n", c->vname[s->var]);
    }
}

static void kir_cu_assign(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    if (!kir_rc_var_ok(c, s->var)) return;
    if (!c->live[s->var]) {
        kir_rc_fail(c, KF_E_INVALID, "assignment to '%s' outside its declaration's scope", c->k->vars[s->var].name);
        return;
    }
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "%s = ", c->vname[s->var]);
    kir_rc_expr_as(c, s->val, c->k->vars[s->var].type, o);
    kf_str_append(o, ";\n");
}

static void kir_cu_tstmt(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    if (!s) {
        kir_rc_fail(c, KF_E_INVALID, "missing statement");
        return;
    }
    switch (s->kind) {
    case KIR_S_BLOCK:
        kir_cu_indent(depth, o);
        kf_str_append(o, "{\n");
        kir_cu_tlist(x, s->body, s->n_body, depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
        return;
    case KIR_S_FOR: kir_cu_tfor(x, s, depth, o); return;
    case KIR_S_STORE: kir_cu_store(x, s, depth, o); return;
    case KIR_S_DECL: kir_cu_decl(x, s, depth, o); return;
    case KIR_S_ASSIGN: kir_cu_assign(x, s, depth, o); return;
    case KIR_S_IF:
        kir_cu_indent(depth, o);
        kf_str_append(o, "if (");
        kir_rc_expr(c, s->cond, o);
        kf_str_append(o, ") {\n");
        kir_cu_tlist(x, s->body, s->n_body, depth + 1, o);
        if (s->n_els) {
            kir_cu_indent(depth, o);
            kf_str_append(o, "} else {\n");
            kir_cu_tlist(x, s->els, s->n_els, depth + 1, o);
        }
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
        return;
    case KIR_S_BARRIER:
        kir_cu_indent(depth, o);
        kf_str_append(o, "/* barrier: a no-op inside one thread's iterations */\n");
        return;
    }
    kir_rc_fail(c, KF_E_INVALID, "unknown statement kind %d", (int)s->kind);
}

/* ---- the uniform level ---- */

static void kir_cu_sync(kir_cu *x, int depth, kf_str *o) {
    const kir_kernel *k = x->c.k;
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "kf_grid_sync(kf_gridbar_%s);\n", k->name);
    x->grid_syncs++;
    memset(x->rd, 0, (size_t)k->n_bufs);
    memset(x->wr, 0, (size_t)k->n_bufs);
}

/* Emits a grid barrier if s touches what an earlier statement since the last one wrote, or
 * writes what it read; then records s's accesses. */
static int kir_cu_order(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    const kir_kernel *k = x->c.k;
    size_t nb = k->n_bufs ? (size_t)k->n_bufs : 1;
    unsigned char *rd = calloc(nb * 2, 1);
    if (!rd) {
        kir_rc_fail(&x->c, KF_E_NOMEM, "out of memory");
        return 0;
    }
    unsigned char *wr = rd + nb;
    kir_cu_stmt_bufs(s, rd, wr);
    int conflict = 0;
    for (int b = 0; b < k->n_bufs && !conflict; b++)
        conflict = (rd[b] && x->wr[b]) || (wr[b] && (x->rd[b] || x->wr[b]));
    if (conflict) kir_cu_sync(x, depth, o);
    for (int b = 0; b < k->n_bufs; b++) {
        x->rd[b] |= rd[b];
        x->wr[b] |= wr[b];
    }
    free(rd);
    return 1;
}

/* Perfectly nested PARALLEL loops from s whose bounds do not use the run's variables. */
static int kir_cu_collapse(const kir_kernel *k, const kir_stmt *s, const kir_stmt **run, int max) {
    int n = 0;
    for (const kir_stmt *cur = s;; cur = cur->body[0]) {
        run[n++] = cur;
        if (n == max || cur->n_body != 1) break;
        const kir_stmt *in = cur->body[0];
        if (!in || in->kind != KIR_S_FOR || in->loop != KIR_LOOP_PARALLEL || in->step <= 0 || in->var < 0 ||
            in->var >= k->n_vars)
            break;
        int dep = 0;
        for (int i = 0; i < n && !dep; i++)
            dep = kir_expr_uses(in->lo, run[i]->var) || kir_expr_uses(in->hi, run[i]->var);
        if (dep) break;
    }
    return n;
}

static int64_t kir_cu_trip_const(const kir_stmt *s) {
    if (!s->lo || !s->hi || s->lo->kind != KIR_E_CONST_I || s->hi->kind != KIR_E_CONST_I) return -1;
    int64_t span = s->hi->ival - s->lo->ival;
    return span <= 0 ? 0 : (span + s->step - 1) / s->step;
}

/* Trip count of loop s as an int64 expression: ((hi - lo) + step - 1) / step, at least 0. */
static void kir_cu_trip(kir_cu *x, const kir_stmt *s, kf_str *o) {
    kir_rc *c = &x->c;
    kf_str_append(o, "kf_trip(");
    kir_rc_expr_as(c, s->lo, KIR_T_I64, o);
    kf_str_append(o, ", ");
    kir_rc_expr_as(c, s->hi, KIR_T_I64, o);
    kf_str_appendf(o, ", %lld)", (long long)s->step);
}

/* ---- cooperative nests: a group of threads per iteration (kir_sched_gpu) ---- */

static int kir_cu_has_coop(const kir_stmt *s) {
    if (!s) return 0;
    if (s->kind == KIR_S_FOR && s->coop) return 1;
    for (int i = 0; i < s->n_body; i++)
        if (kir_cu_has_coop(s->body[i])) return 1;
    for (int i = 0; i < s->n_els; i++)
        if (kir_cu_has_coop(s->els[i])) return 1;
    return 0;
}

/* 1 if s stores a buffer the cooperative nest's body loads (other threads may read it). */
static int kir_cu_group_reread(kir_cu *x, const kir_stmt *s) {
    const kir_kernel *k = x->c.k;
    size_t nb = k->n_bufs ? (size_t)k->n_bufs : 1;
    unsigned char *rd = calloc(nb * 2, 1);
    if (!rd) return 1;
    kir_cu_stmt_bufs(s, rd, rd + nb);
    int hit = 0;
    for (int b = 0; b < k->n_bufs && !hit; b++) hit = rd[nb + b] && (!x->grp_rd || x->grp_rd[b]);
    free(rd);
    return hit;
}

static void kir_cu_group_sync(kir_cu *x, int depth, kf_str *o) {
    kir_cu_indent(depth, o);
    if (x->split) kf_str_appendf(o, "kf_group_sync(kf_grpbar_%s + 2 * (blockIdx.x / kf_nb), (unsigned int)kf_nb);\n",
                                 x->c.k->name);
    else kf_str_append(o, x->group < x->threads ? "__syncwarp();\n" : "__syncthreads();\n");
}

typedef struct kir_cu_red { int var, op; } kir_cu_red;

/* Outer variables a cooperative loop reduces into (live now), with their ops. */
static int kir_cu_reductions(kir_cu *x, const kir_stmt *s, kir_cu_red *out, int n, int max) {
    if (!s || x->c.rc) return n;
    const kir_kernel *k = x->c.k;
    if (s->kind == KIR_S_ASSIGN && s->var >= 0 && s->var < k->n_vars && x->c.live[s->var]) {
        int op = kir_sched_gpu_reduction(s->val, s->var);
        kir_type t = k->vars[s->var].type;
        if (op < 0 || t == KIR_T_BOOL) {
            kir_rc_fail(&x->c, KF_E_INVALID, "cooperative loop assigns '%s' other than as a sum, max or min",
                        k->vars[s->var].name);
            return n;
        }
        int seen = 0;
        for (int i = 0; i < n; i++)
            if (out[i].var == s->var) {
                seen = 1;
                if (out[i].op != op)
                    kir_rc_fail(&x->c, KF_E_INVALID, "cooperative loop combines '%s' with two ops",
                                k->vars[s->var].name);
            }
        if (!seen) {
            if (n == max) {
                kir_rc_fail(&x->c, KF_E_INVALID, "cooperative loop reduces more than %d variables", max);
                return n;
            }
            out[n++] = (kir_cu_red){s->var, op};
        }
    }
    for (int i = 0; i < s->n_body; i++) n = kir_cu_reductions(x, s->body[i], out, n, max);
    for (int i = 0; i < s->n_els; i++) n = kir_cu_reductions(x, s->els[i], out, n, max);
    return n;
}

static const char *kir_cu_red_name(int op) { return op == KIR_ADD ? "add" : op == KIR_MAX ? "max" : "min"; }

/* A cooperative loop: the group's threads take iterations lane, lane + G, ...; reductions
 * start from the identity in every thread but the first and are combined afterwards. */
static int kir_cu_gfor_vec4(kir_cu *x, const kir_stmt *s, int depth, kf_str *o);

static void kir_cu_gfor(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    if (!kir_cu_loop_var_ok(x, s)) return;
    kir_cu_red red[32];
    int nr = kir_cu_reductions(x, s, red, 0, 32);
    if (c->rc) return;
    if (nr == 0 && k->vec4 && kir_cu_gfor_vec4(x, s, depth, o)) return;
    int mark = c->n_scope;
    kir_type t = k->vars[s->var].type;
    const char *v = c->vname[s->var];
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "{ /* cooperative loop over %s: %s threads split it */\n", v,
                   x->split ? "the group's blocks'" : x->group < x->threads ? "the warp's" : "the block's");
    for (int i = 0; i < nr; i++) {
        kir_type vt = k->vars[red[i].var].type;
        int fl = vt == KIR_T_F32 || vt == KIR_T_F64;
        const char *id = red[i].op == KIR_ADD ? "0"
                         : red[i].op == KIR_MAX ? (fl ? "-INFINITY" : vt == KIR_T_I32 ? "(-2147483647 - 1)" : "(-INT64_C(9223372036854775807) - 1)")
                                                : (fl ? "INFINITY" : vt == KIR_T_I32 ? "2147483647" : "INT64_C(9223372036854775807)");
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "if (kf_lane != 0) %s = (%s)%s;\n", c->vname[red[i].var], kir_rc_ctype(vt), id);
    }
    kir_cu_indent(depth + 1, o);
    kf_str_appendf(o, "for (%s %s = (%s)(", kir_rc_ctype(t), v, kir_rc_ctype(t));
    kir_rc_expr_as(c, s->lo, KIR_T_I64, o);
    kf_str_appendf(o, " + kf_lane * %lld); %s < ", (long long)s->step, v);
    if (!kir_cu_declare(x, s->var)) return;
    kir_rc_expr_as(c, s->hi, t, o);
    if (x->split) kf_str_appendf(o, "; %s += %lld * kf_gs) {\n", v, (long long)s->step);
    else kf_str_appendf(o, "; %s += %lld) {\n", v, (long long)s->step * x->group);
    kir_cu_tlist(x, s->body, s->n_body, depth + 2, o);
    kir_cu_indent(depth + 1, o);
    kf_str_append(o, "}\n");
    kir_cu_scope_end(x, mark);
    for (int i = 0; i < nr; i++) {
        kir_type vt = k->vars[red[i].var].type;
        const char *tn = kir_type_name(vt);
        kir_cu_indent(depth + 1, o);
        if (x->split) {
            x->sh_used[vt] = x->part_used[vt] = 1;
            kf_str_appendf(o, "%s = kf_gred_%s_%s(%s, kf_sh_%s, kf_part_%s_%s, &kf_par, kf_grpbar_%s, kf_nb);\n",
                           c->vname[red[i].var], kir_cu_red_name(red[i].op), tn, c->vname[red[i].var], tn, tn,
                           k->name, k->name);
        } else if (x->group < x->threads) {
            kf_str_appendf(o, "%s = kf_wred_%s_%s(%s);\n", c->vname[red[i].var], kir_cu_red_name(red[i].op), tn,
                           c->vname[red[i].var]);
        } else {
            x->sh_used[vt] = 1;
            kf_str_appendf(o, "%s = kf_bred_%s_%s(%s, kf_sh_%s);\n", c->vname[red[i].var],
                           kir_cu_red_name(red[i].op), tn, c->vname[red[i].var], tn);
        }
    }
    if (kir_cu_group_reread(x, s)) kir_cu_group_sync(x, depth + 1, o);
    kir_cu_indent(depth, o);
    kf_str_append(o, "}\n");
}

static void kir_cu_glist(kir_cu *x, kir_stmt *const *l, int n, int depth, kf_str *o);

/* A statement of a cooperative nest's body, run by every thread of the group. */
static void kir_cu_gstmt(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    if (!s) {
        kir_rc_fail(c, KF_E_INVALID, "missing statement");
        return;
    }
    if (s->kind == KIR_S_FOR && s->coop) {
        kir_cu_gfor(x, s, depth, o);
        return;
    }
    if (s->kind == KIR_S_BARRIER) {
        kir_cu_group_sync(x, depth, o);
        return;
    }
    if (kir_cu_has_coop(s)) { /* control flow the whole group follows alike */
        int mark = c->n_scope;
        if (s->kind == KIR_S_BLOCK) {
            kir_cu_indent(depth, o);
            kf_str_append(o, "{\n");
            kir_cu_glist(x, s->body, s->n_body, depth + 1, o);
        } else if (s->kind == KIR_S_FOR) {
            if (!kir_cu_loop_var_ok(x, s)) return;
            kir_type t = k->vars[s->var].type;
            const char *v = c->vname[s->var];
            kir_cu_indent(depth, o);
            kf_str_appendf(o, "for (%s %s = ", kir_rc_ctype(t), v);
            kir_rc_expr_as(c, s->lo, t, o);
            kf_str_appendf(o, "; %s < ", v);
            if (!kir_cu_declare(x, s->var)) return;
            kir_rc_expr_as(c, s->hi, t, o);
            kf_str_appendf(o, "; %s += %lld) {\n", v, (long long)s->step);
            kir_cu_glist(x, s->body, s->n_body, depth + 1, o);
            if (kir_cu_group_reread(x, s)) kir_cu_group_sync(x, depth + 1, o);
        } else { /* IF */
            kir_cu_indent(depth, o);
            kf_str_append(o, "if (");
            kir_rc_expr(c, s->cond, o);
            kf_str_append(o, ") {\n");
            kir_cu_glist(x, s->body, s->n_body, depth + 1, o);
            if (s->n_els) {
                kir_cu_indent(depth, o);
                kf_str_append(o, "} else {\n");
                kir_cu_glist(x, s->els, s->n_els, depth + 1, o);
            }
        }
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
        kir_cu_scope_end(x, mark);
        return;
    }
    if (!kir_cu_has_kind(s, KIR_S_STORE, 0)) {
        kir_cu_tstmt(x, s, depth, o); /* only locals: every thread of the group computes them */
        return;
    }
    /* stores outside the cooperative loops: the group's first thread */
    if (!kir_cu_assigns_outer(x, s) && s->kind != KIR_S_DECL) {
        kir_cu_indent(depth, o);
        kf_str_append(o, "if (kf_lane == 0) {\n");
        kir_cu_tstmt(x, s, depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
    } else {
        int saved = x->pred;
        x->pred = 2;
        kir_cu_tstmt(x, s, depth, o);
        x->pred = saved;
    }
    if (kir_cu_group_reread(x, s)) kir_cu_group_sync(x, depth, o);
}

static void kir_cu_glist(kir_cu *x, kir_stmt *const *l, int n, int depth, kf_str *o) {
    int mark = x->c.n_scope;
    for (int i = 0; i < n && !x->c.rc; i++) kir_cu_gstmt(x, l[i], depth, o);
    kir_cu_scope_end(x, mark);
}

/* ---- 16-byte accesses (kir_kernel.vec4) ----
 * A loop for v in [lo, hi) with step 1 and no loops or barriers in its body, either a flat
 * grid-stride loop (lo 0, constant trip count) or a cooperative loop over a row (lo 0, constant
 * trip count a multiple of 4, no reductions): each thread takes 4 consecutive iterations. The
 * index of the accesses is one expression E = v + (a loop-invariant multiple of 4), the loop
 * variable itself or a variable the body declares first as such (a row's base plus the
 * column). A float32 buffer whose every access in the body is at E is read with one float4
 * load before the 4 iterations (when one of its accesses is unconditional, so the 4 elements
 * exist) and written with one float4 store after them (when all its stores are unconditional
 * top-level statements and no load of it follows its first store); other accesses stay
 * scalar. Iterations past the last multiple of 4, and all of them when a flagged pointer is
 * not 16-byte aligned, run one per thread as before. */
#define KIR_CU_VEC_E 4         /* distinct index expressions E per loop */
typedef struct kir_cu_vacc {
    const kir_cu *x;
    int var;                  /* the loop variable */
    const int *inside;        /* the loop's own variables */
    const kir_expr *e[KIR_CU_VEC_E]; int n_e; /* the index expressions E */
    unsigned char *bad, *ld_any, *uncond, *st, *st_nested, *ld_after_st, *stored_before;
    signed char *be;          /* per buffer: its E, -1 before its first access */
    const kir_expr **idx; int n_idx, cap_idx; /* accesses at some E (their index expressions) */
} kir_cu_vacc;

static int kir_cu_mult4(const kir_cu *x, const kir_expr *e, int depth);

/* An atom that is a multiple of 4: x % m with m a positive multiple of 4 and x one. */
static int kir_cu_atom_mult4(const kir_cu *x, const kir_expr *a, int depth) {
    int d = depth;
    a = kir_cu_resolve(x, a, &d);
    return a && a->kind == KIR_E_BIN && a->op == KIR_MOD && a->b && a->b->kind == KIR_E_CONST_I &&
           a->b->ival > 0 && a->b->ival % 4 == 0 && kir_cu_mult4(x, a->a, d + 1);
}

/* 1 if e (definitions expanded) is provably a multiple of 4. */
static int kir_cu_mult4(const kir_cu *x, const kir_expr *e, int depth) {
    if (depth > 8) return 0;
    kir_cu_lin l = {.ok = 1};
    kir_cu_linearize(x, e, 1, &l, 0);
    if (!l.ok || l.k % 4) return 0;
    for (int i = 0; i < l.n; i++)
        if (l.coef[i] % 4 && !kir_cu_atom_mult4(x, l.atom[i], depth + 1)) return 0;
    return 1;
}

/* 1 if e (definitions expanded) is v plus a multiple of 4 whose atoms are all declared outside
 * the loop (inside[] marks the loop's own variables, v included). */
static int kir_cu_vec_index(const kir_cu *x, const kir_expr *e, int v, const int *inside) {
    kir_cu_lin l = {.ok = 1};
    kir_cu_linearize(x, e, 1, &l, 0);
    if (!l.ok || l.k % 4) return 0;
    int seen = 0;
    for (int i = 0; i < l.n; i++) {
        if (l.atom[i]->kind == KIR_E_VAR && l.atom[i]->var == v) {
            if (l.coef[i] != 1) return 0;
            seen = 1;
        } else if ((l.coef[i] % 4 && !kir_cu_atom_mult4(x, l.atom[i], 0)) ||
                   kir_cu_uses_flagged(x, l.atom[i], inside, 0)) {
            return 0;
        }
    }
    return seen;
}

static void kir_cu_vacc_note(kir_cu_vacc *a, int buf, const kir_expr *idx) {
    if (a->bad[buf] || !idx) {
        a->bad[buf] = 1;
        return;
    }
    if (a->be[buf] < 0) { /* the buffer's first access: its E, an earlier one or a new one */
        for (int j = 0; j < a->n_e && a->be[buf] < 0; j++)
            if (kir_cu_eq(a->x, idx, a->e[j], 0)) a->be[buf] = (signed char)j;
        if (a->be[buf] < 0) {
            if (a->n_e == KIR_CU_VEC_E || a->x->c.k->bufs[buf].dtype != KF_F32 ||
                !kir_cu_vec_index(a->x, idx, a->var, a->inside)) {
                a->bad[buf] = 1;
                return;
            }
            a->e[a->n_e] = idx;
            a->be[buf] = (signed char)a->n_e++;
        }
    } else if (!kir_cu_eq(a->x, idx, a->e[a->be[buf]], 0)) {
        a->bad[buf] = 1;
        return;
    }
    if (a->n_idx == a->cap_idx) {
        int cap = a->cap_idx ? 2 * a->cap_idx : 16;
        const kir_expr **n = realloc(a->idx, sizeof *n * (size_t)cap);
        if (!n) {
            a->bad[buf] = 1;
            return;
        }
        a->idx = n;
        a->cap_idx = cap;
    }
    a->idx[a->n_idx++] = idx;
}

/* cond: e is evaluated only on some paths (a select's arms, the right side of && / ||) */
static void kir_cu_vacc_expr(kir_cu_vacc *a, const kir_expr *e, int cond) {
    if (!e) return;
    if (e->kind == KIR_E_LOAD && e->buf >= 0 && e->buf < a->x->c.k->n_bufs) {
        kir_cu_vacc_note(a, e->buf, e->a);
        a->ld_any[e->buf] = 1;
        if (!cond) a->uncond[e->buf] = 1;
        if (a->stored_before[e->buf]) a->ld_after_st[e->buf] = 1;
    }
    int lazy = e->kind == KIR_E_SELECT || (e->kind == KIR_E_BIN && (e->op == KIR_AND || e->op == KIR_OR));
    kir_cu_vacc_expr(a, e->a, cond);
    kir_cu_vacc_expr(a, e->b, cond || lazy);
    kir_cu_vacc_expr(a, e->c, cond || lazy);
}

static void kir_cu_vacc_stmt(kir_cu_vacc *a, const kir_stmt *s, int nested) {
    if (!s) return;
    switch (s->kind) {
    case KIR_S_STORE:
        kir_cu_vacc_expr(a, s->val, nested);
        kir_cu_vacc_expr(a, s->idx, nested);
        if (s->buf >= 0 && s->buf < a->x->c.k->n_bufs) {
            kir_cu_vacc_note(a, s->buf, s->idx);
            a->st[s->buf] = 1;
            if (nested) a->st_nested[s->buf] = 1;
            else a->uncond[s->buf] = 1;
            a->stored_before[s->buf] = 1;
        }
        break;
    case KIR_S_DECL: case KIR_S_ASSIGN:
        kir_cu_vacc_expr(a, s->val, nested);
        break;
    case KIR_S_IF:
        kir_cu_vacc_expr(a, s->cond, nested);
        for (int i = 0; i < s->n_body; i++) kir_cu_vacc_stmt(a, s->body[i], 1);
        for (int i = 0; i < s->n_els; i++) kir_cu_vacc_stmt(a, s->els[i], 1);
        break;
    case KIR_S_BLOCK:
        for (int i = 0; i < s->n_body; i++) kir_cu_vacc_stmt(a, s->body[i], nested);
        break;
    default:
        break;
    }
}

/* Plans 16-byte accesses for loop s: vl / vs flag buffers (per buffer id), a->e / a->be the
 * index expressions and each buffer's, a->idx (the caller frees it) the index expressions of
 * every access the plan covers. 0: none. */
static int kir_cu_vec_plan(kir_cu *x, const kir_stmt *s, unsigned char *vl, unsigned char *vs, kir_cu_vacc *a) {
    const kir_kernel *k = x->c.k;
    memset(a, 0, sizeof *a);
    if (!k->vec4 || s->step != 1 || !s->lo || s->lo->kind != KIR_E_CONST_I || s->lo->ival != 0) return 0;
    if (kir_cu_trip_const(s) < 8) return 0;
    for (int i = 0; i < s->n_body; i++)
        if (kir_cu_has_kind(s->body[i], KIR_S_FOR, 0) || kir_cu_has_kind(s->body[i], KIR_S_BARRIER, 0)) return 0;
    size_t nb = (size_t)k->n_bufs + 1, nv = (size_t)k->n_vars + 1;
    unsigned char *m = calloc(nb * 8, 1);
    int *inside = calloc(nv, sizeof *inside);
    if (!m || !inside) {
        free(m);
        free(inside);
        return 0;
    }
    kir_cu_mark_declared(s, k->n_vars, inside);
    a->x = x;
    a->var = s->var;
    a->inside = inside;
    a->bad = m, a->ld_any = m + nb, a->uncond = m + 2 * nb, a->st = m + 3 * nb, a->st_nested = m + 4 * nb;
    a->ld_after_st = m + 5 * nb, a->stored_before = m + 6 * nb, a->be = (signed char *)(m + 7 * nb);
    memset(a->be, -1, nb);
    for (int i = 0; i < s->n_body; i++) kir_cu_vacc_stmt(a, s->body[i], 0);
    int any = 0;
    for (int b = 0; b < k->n_bufs; b++) {
        vl[b] = vs[b] = 0;
        if (k->bufs[b].dtype != KF_F32 || a->bad[b] || a->be[b] < 0 || !a->uncond[b] || a->ld_after_st[b]) continue;
        if (a->st[b] && a->st_nested[b]) continue;
        vl[b] = a->ld_any[b];
        vs[b] = a->st[b];
        any |= vl[b] | vs[b];
    }
    /* keep the be[] map (the renderer needs it) in a block of its own */
    signed char *be = malloc(nb);
    if (be) memcpy(be, a->be, nb);
    a->be = be;
    free(m);
    free(inside);
    a->inside = NULL;
    a->bad = a->ld_any = a->uncond = a->st = a->st_nested = a->ld_after_st = a->stored_before = NULL;
    if (!any || !be) {
        free(a->idx);
        free(be);
        a->idx = NULL;
        a->be = NULL;
        return 0;
    }
    return 1;
}

/* E number j at the first of a thread's 4 iterations (v declared by the caller), as kf_vi<j>:
 * E itself, or the definition of the variable E names; every variable it reads directly must
 * be in scope here. */
static int kir_cu_vec_base(kir_cu *x, const kir_expr *ei, int j, int v, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_expr *e = ei;
    if (e->kind == KIR_E_VAR && e->var != v) {
        if (!x->def[e->var]) return 0;
        e = x->def[e->var];
    }
    const kir_expr *stack[64];
    int n = 0;
    stack[n++] = e;
    while (n > 0) {
        const kir_expr *q = stack[--n];
        if (!q) continue;
        if (q->kind == KIR_E_VAR && !c->live[q->var]) return 0;
        if (q->kind == KIR_E_LOAD) return 0;
        if (n + 3 > 64) return 0;
        stack[n++] = q->a;
        stack[n++] = q->b;
        stack[n++] = q->c;
    }
    kf_str_appendf(o, "const int64_t kf_vi%d = ", j);
    kir_rc_expr_as(c, e, KIR_T_I64, o);
    kf_str_append(o, ";\n");
    return 1;
}

/* The body of loop s for a thread's 4 iterations starting at v = first (text), with the float4
 * loads before and the float4 stores after; returns 0 (nothing written) when an E's base
 * cannot be rendered here. */
static int kir_cu_vec_body(kir_cu *x, const kir_stmt *s, const char *first, const unsigned char *vl,
                           const unsigned char *vs, const kir_cu_vacc *a, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    kir_type t = k->vars[s->var].type;
    const char *v = c->vname[s->var];
    int mark = c->n_scope;
    kf_str pre;
    kf_str_init(&pre);
    kir_cu_indent(depth, &pre);
    kf_str_appendf(&pre, "const %s %s = (%s)(%s);\n", kir_rc_ctype(t), v, kir_rc_ctype(t), first);
    int ok = kir_cu_declare(x, s->var);
    for (int j = 0; j < a->n_e && ok; j++) {
        int used = 0;
        for (int b = 0; b < k->n_bufs; b++) used |= (vl[b] || vs[b]) && a->be[b] == j;
        if (!used) continue;
        kir_cu_indent(depth, &pre);
        ok = kir_cu_vec_base(x, a->e[j], j, s->var, &pre);
    }
    kir_cu_scope_end(x, mark);
    if (!ok) {
        kf_str_free(&pre);
        return 0;
    }
    kir_cu_indent(depth - 1, o);
    kf_str_append(o, "{\n");
    kf_str_append(o, pre.data ? pre.data : "");
    kf_str_free(&pre);
    for (int b = 0; b < k->n_bufs; b++) {
        if (vl[b]) {
            kir_cu_indent(depth, o);
            kf_str_appendf(o, "const float4 kf_vl%d = *(const float4 *)(%s + kf_vi%d);\n", b, c->bname[b], a->be[b]);
        }
        if (vs[b]) {
            kir_cu_indent(depth, o);
            kf_str_appendf(o, "float4 kf_vs%d;\n", b);
        }
    }
    c->vec_ld = vl;
    c->vec_idx = a->idx;
    c->n_vec_idx = a->n_idx;
    x->vec_st = vs;
    for (int lane = 0; lane < 4 && !c->rc; lane++) {
        c->vec_lane = lane;
        int m2 = c->n_scope;
        kir_cu_indent(depth, o);
        kf_str_append(o, "{\n");
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "const %s %s = (%s)(%s + %d);\n", kir_rc_ctype(t), v, kir_rc_ctype(t), first, lane);
        if (kir_cu_declare(x, s->var)) kir_cu_tlist(x, s->body, s->n_body, depth + 1, o);
        kir_cu_scope_end(x, m2);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
    }
    c->vec_ld = NULL;
    c->vec_idx = NULL;
    c->n_vec_idx = 0;
    x->vec_st = NULL;
    for (int b = 0; b < k->n_bufs; b++) {
        if (!vs[b]) continue;
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "*(float4 *)(%s + kf_vi%d) = kf_vs%d;\n", c->bname[b], a->be[b], b);
    }
    kir_cu_indent(depth - 1, o);
    kf_str_append(o, "}\n");
    return 1;
}

/* The flagged pointers' alignment test, for an if or a ?: condition. */
static void kir_cu_vec_aligned(const kir_cu *x, const unsigned char *vl, const unsigned char *vs, kf_str *o) {
    kf_str_append(o, "(((");
    int first = 1;
    for (int b = 0; b < x->c.k->n_bufs; b++) {
        if (!vl[b] && !vs[b]) continue;
        kf_str_appendf(o, "%s(unsigned long long)%s", first ? "" : " | ", x->c.bname[b]);
        first = 0;
    }
    kf_str_append(o, ") & 15) == 0)");
}

/* The loop's body one iteration per thread: "for (HEAD) { const T v = (T)INIT; body }". */
static void kir_cu_vec_scalar(kir_cu *x, const kir_stmt *s, const char *head, const char *init, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    kir_type t = c->k->vars[s->var].type;
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "for (%s) {\n", head);
    int mark = c->n_scope;
    kir_cu_indent(depth + 1, o);
    kf_str_appendf(o, "const %s %s = (%s)%s;\n", kir_rc_ctype(t), c->vname[s->var], kir_rc_ctype(t), init);
    if (kir_cu_declare(x, s->var)) kir_cu_tlist(x, s->body, s->n_body, depth + 1, o);
    kir_cu_scope_end(x, mark);
    kir_cu_indent(depth, o);
    kf_str_append(o, "}\n");
}

/* Plans loop s's 16-byte accesses into *vf (vl = *vf, vs = *vf + n_bufs + 1) and *a; 0 if
 * none (nothing to free then). kir_cu_vec_done frees both. */
static int kir_cu_vec_start(kir_cu *x, const kir_stmt *s, unsigned char **vf, kir_cu_vacc *a) {
    size_t nb = (size_t)x->c.k->n_bufs + 1;
    *vf = calloc(nb * 2, 1);
    if (*vf && kir_cu_vec_plan(x, s, *vf, *vf + nb, a)) return 1;
    free(*vf);
    *vf = NULL;
    return 0;
}

static void kir_cu_vec_done(unsigned char *vf, kir_cu_vacc *a) {
    free(vf);
    free(a->idx);
    free(a->be);
}

/* Flat grid-stride loop s with 16-byte accesses; 0 (nothing written) if it does not qualify. */
static int kir_cu_dist_vec4(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    unsigned char *vf;
    kir_cu_vacc a;
    if (!kir_cu_vec_start(x, s, &vf, &a)) return 0;
    const unsigned char *vl = vf, *vs = vf + c->k->n_bufs + 1;
    int64_t T = kir_cu_trip_const(s);
    kf_str body;
    kf_str_init(&body);
    int ok = kir_cu_vec_body(x, s, "4 * kf_f", vl, vs, &a, depth + 3, &body);
    if (ok) {
        int64_t total = (T + 3) / 4;
        if (total > x->max_total) x->max_total = total;
        x->n_dist++;
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "{ /* parallel loop over %s: grid-stride, 4 per thread (16-byte accesses) */\n",
                       c->vname[s->var]);
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "const int64_t kf_n = %lld;\n", (long long)T);
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "const int64_t kf_n4 = ");
        kir_cu_vec_aligned(x, vl, vs, o);
        kf_str_append(o, " ? kf_n / 4 : 0;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "for (int64_t kf_f = kf_gtid; kf_f < kf_n4; kf_f += kf_gsize)\n");
        kf_str_append(o, body.data ? body.data : "");
        /* the rest (and everything, unaligned): one iteration per thread */
        kir_cu_vec_scalar(x, s, "int64_t kf_f = kf_n4 * 4 + kf_gtid; kf_f < kf_n; kf_f += kf_gsize", "kf_f", depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
    }
    kf_str_free(&body);
    kir_cu_vec_done(vf, &a);
    return ok;
}

/* Cooperative row loop s (no reductions, trip a multiple of 4) with 16-byte accesses: the
 * group's threads take 4 columns each; 0 (nothing written) if it does not qualify. */
static int kir_cu_gfor_vec4(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    int64_t T = kir_cu_trip_const(s);
    if (x->split || T < 0 || T % 4) return 0;
    unsigned char *vf;
    kir_cu_vacc a;
    if (!kir_cu_vec_start(x, s, &vf, &a)) return 0;
    const unsigned char *vl = vf, *vs = vf + c->k->n_bufs + 1;
    kf_str body;
    kf_str_init(&body);
    int ok = kir_cu_vec_body(x, s, "4 * kf_c4", vl, vs, &a, depth + 3, &body);
    if (ok) {
        const char *v = c->vname[s->var];
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "{ /* cooperative loop over %s: %s threads split it, 4 columns each (16-byte accesses) */\n",
                       v, x->group < x->threads ? "the warp's" : "the block's");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "if ");
        kir_cu_vec_aligned(x, vl, vs, o);
        kf_str_append(o, " {\n");
        kir_cu_indent(depth + 2, o);
        kf_str_appendf(o, "for (int64_t kf_c4 = kf_lane; kf_c4 < %lld; kf_c4 += %d)\n", (long long)(T / 4), x->group);
        kf_str_append(o, body.data ? body.data : "");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "} else {\n");
        char head[96];
        snprintf(head, sizeof head, "int64_t kf_c = kf_lane; kf_c < %lld; kf_c += %d", (long long)T, x->group);
        kir_cu_vec_scalar(x, s, head, "kf_c", depth + 2, o);
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "}\n");
        if (kir_cu_group_reread(x, s)) kir_cu_group_sync(x, depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
    }
    kf_str_free(&body);
    kir_cu_vec_done(vf, &a);
    return ok;
}

/* A grid-stride loop over a PARALLEL nest (and maybe the promoted loop ending its body). */
static void kir_cu_dist(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    const kir_stmt *run[65];
    int n = kir_cu_collapse(k, s, run, 64);
    for (int i = 0; i < n; i++)
        if (!kir_cu_loop_var_ok(x, run[i])) return;
    const kir_stmt *inner = run[n - 1];
    int group = run[0]->coop > 0 && x->group == 0 && !x->pred ? (run[0]->coop < x->threads ? 32 : x->threads) : 0;
    int promote = !group && kir_cu_can_promote(x, inner->body, inner->n_body);
    if (!group && !promote && n == 1 && k->vec4 && kir_cu_dist_vec4(x, run[0], depth, o)) return;
    if (promote) {
        run[n] = inner->body[inner->n_body - 1];
        if (!kir_cu_loop_var_ok(x, run[n])) return;
    }
    int nl = n + promote;
    int64_t total = 1;
    for (int i = 0; i < nl && total >= 0; i++) {
        int64_t t = kir_cu_trip_const(run[i]);
        if (t < 0 || __builtin_mul_overflow(total, t, &total)) total = -1;
    }
    /* few rows for whole blocks: each row split over kf_nb blocks (kf_nb = grid / rows at run
     * time, the grid clamped to what is resident since group barriers need a cooperative launch) */
    int64_t rows = total;
    int split = group && group == x->threads && run[0]->coop >= KIR_COOP_SPLIT && rows > 0;
    if (split) {
        int64_t nb = (KIR_CU_SPLIT_BLOCKS + rows - 1) / rows;
        total = rows * nb * group;
        x->split_used = 1;
    } else if (group && total >= 0 && __builtin_mul_overflow(total, (int64_t)group, &total)) total = -1;
    if (total < 0) x->unknown_total = 1;
    else if (total > x->max_total) x->max_total = total;
    x->n_dist++;
    int mark = c->n_scope;
    kir_cu_indent(depth, o);
    kf_str_appendf(o, "{ /* %s loop%s over %s", promote ? "promoted parallel" : "parallel", nl > 1 ? "s" : "",
                   c->vname[run[0]->var]);
    for (int i = 1; i < nl; i++) kf_str_appendf(o, ", %s", c->vname[run[i]->var]);
    if (split)
        kf_str_append(o, ": grid-stride over groups of kf_nb blocks (split rows) */\n");
    else if (group)
        kf_str_appendf(o, ": grid-stride over groups of %d threads (%s) */\n", group,
                       group < x->threads ? "warps" : "blocks");
    else
        kf_str_append(o, ": grid-stride */\n");
    /* trip counts: the run's loops in order, then the promoted one */
    for (int i = 0; i < nl; i++) {
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "const int64_t kf_t%d = ", i);
        kir_cu_trip(x, run[i], o);
        kf_str_append(o, ";\n");
    }
    kir_cu_indent(depth + 1, o);
    kf_str_append(o, "const int64_t kf_n = ");
    for (int i = 0; i < nl; i++) kf_str_appendf(o, "%skf_t%d", i ? " * " : "", i);
    kf_str_append(o, ";\n");
    kir_cu_indent(depth + 1, o);
    if (split) {
        kf_str_append(o, "const int64_t kf_nb = (int64_t)gridDim.x >= kf_n ? (int64_t)gridDim.x / kf_n : 1;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "const int64_t kf_gs = kf_nb * blockDim.x;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "const int64_t kf_lane = (int64_t)(blockIdx.x % kf_nb) * blockDim.x + threadIdx.x;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "(void)kf_lane;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_append(o, "for (int64_t kf_f = (int64_t)blockIdx.x / kf_nb; kf_f < kf_n; kf_f += (int64_t)gridDim.x / kf_nb) {\n");
    } else if (group) {
        kf_str_appendf(o, "const int64_t kf_lane = (int64_t)(threadIdx.x %% %du);\n", group);
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "(void)kf_lane;\n");
        kir_cu_indent(depth + 1, o);
        kf_str_appendf(o, "for (int64_t kf_f = kf_gtid / %d; kf_f < kf_n; kf_f += kf_gsize / %d) {\n", group, group);
    } else {
        kf_str_append(o, "for (int64_t kf_f = kf_gtid; kf_f < kf_n; kf_f += kf_gsize) {\n");
    }
    kir_cu_indent(depth + 2, o);
    kf_str_append(o, "int64_t kf_r = kf_f;\n");
    /* innermost of the run fastest, the promoted loop slowest */
    for (int i = n - 1; i >= 0; i--) {
        kir_type t = k->vars[run[i]->var].type;
        kir_cu_indent(depth + 2, o);
        kf_str_appendf(o, "const %s %s = (%s)(", kir_rc_ctype(t), c->vname[run[i]->var], kir_rc_ctype(t));
        kir_rc_expr_as(c, run[i]->lo, KIR_T_I64, o);
        kf_str_appendf(o, " + (kf_r %% kf_t%d) * %lld);\n", i, (long long)run[i]->step);
        kir_cu_indent(depth + 2, o);
        kf_str_appendf(o, "kf_r /= kf_t%d;\n", i);
    }
    for (int i = n - 1; i >= 0; i--)
        if (!kir_cu_declare(x, run[i]->var)) return;
    if (promote) {
        const kir_stmt *l = run[n];
        /* the declarations before the promoted loop, then its variable and body */
        for (int i = 0; i + 1 < inner->n_body && !c->rc; i++) kir_cu_tstmt(x, inner->body[i], depth + 2, o);
        kir_type t = k->vars[l->var].type;
        kir_cu_indent(depth + 2, o);
        kf_str_appendf(o, "const %s %s = (%s)(", kir_rc_ctype(t), c->vname[l->var], kir_rc_ctype(t));
        kir_rc_expr_as(c, l->lo, KIR_T_I64, o);
        kf_str_appendf(o, " + kf_r * %lld);\n", (long long)l->step);
        if (kir_cu_declare(x, l->var)) kir_cu_tlist(x, l->body, l->n_body, depth + 2, o);
    } else if (group) {
        size_t nb = k->n_bufs ? (size_t)k->n_bufs : 1;
        x->grp_rd = calloc(nb * 2, 1);
        for (int i = 0; x->grp_rd && i < inner->n_body; i++) kir_cu_stmt_bufs(inner->body[i], x->grp_rd, x->grp_rd + nb);
        x->group = group;
        x->split = split;
        kir_cu_glist(x, inner->body, inner->n_body, depth + 2, o);
        x->group = 0;
        x->split = 0;
        free(x->grp_rd);
        x->grp_rd = NULL;
    } else {
        kir_cu_tlist(x, inner->body, inner->n_body, depth + 2, o);
    }
    kir_cu_indent(depth + 1, o);
    kf_str_append(o, "}\n");
    kir_cu_indent(depth, o);
    kf_str_append(o, "}\n");
    kir_cu_scope_end(x, mark);
    /* the next split nest (or this one again, in a loop) may group the blocks differently:
     * no block may reach its group barriers before every block has left this nest's */
    if (split) kir_cu_sync(x, depth, o);
}

static void kir_cu_ulist(kir_cu *x, kir_stmt *const *l, int n, int depth, kf_str *o);

/* A serial loop, if or block that holds parallel loops: every thread runs its control flow. */
static void kir_cu_uniform_compound(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    size_t nb = k->n_bufs ? (size_t)k->n_bufs : 1;
    int mark = c->n_scope;
    if (s->kind == KIR_S_BLOCK) {
        kir_cu_indent(depth, o);
        kf_str_append(o, "{\n");
        kir_cu_ulist(x, s->body, s->n_body, depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
        kir_cu_scope_end(x, mark);
        return;
    }
    /* the header reads buffers at the uniform level */
    unsigned char *hr = calloc(nb * 5, 1);
    if (!hr) {
        kir_rc_fail(c, KF_E_NOMEM, "out of memory");
        return;
    }
    unsigned char *all_r = hr + nb, *all_w = hr + 2 * nb, *save_r = hr + 3 * nb, *save_w = hr + 4 * nb;
    kir_cu_expr_bufs(s->lo, hr);
    kir_cu_expr_bufs(s->hi, hr);
    kir_cu_expr_bufs(s->cond, hr);
    kir_cu_stmt_bufs(s, all_r, all_w);
    int conflict = 0;
    for (int b = 0; b < k->n_bufs && !conflict; b++) conflict = hr[b] && x->wr[b];
    if (conflict) kir_cu_sync(x, depth, o);
    for (int b = 0; b < k->n_bufs; b++) x->rd[b] |= hr[b];
    memcpy(save_r, x->rd, (size_t)k->n_bufs);
    memcpy(save_w, x->wr, (size_t)k->n_bufs);
    if (s->kind == KIR_S_FOR) {
        if (!kir_cu_loop_var_ok(x, s)) {
            free(hr);
            return;
        }
        kir_type t = k->vars[s->var].type;
        const char *v = c->vname[s->var];
        kir_cu_indent(depth, o);
        kf_str_appendf(o, "for (%s %s = ", kir_rc_ctype(t), v);
        kir_rc_expr_as(c, s->lo, t, o);
        kf_str_appendf(o, "; %s < ", v);
        if (kir_cu_declare(x, s->var)) {
            kir_rc_expr_as(c, s->hi, t, o);
            kf_str_appendf(o, "; %s += %lld) {\n", v, (long long)s->step);
            /* the body starts from what is pending before the loop (first iteration) or
             * from nothing (later ones, after the barrier that ends each iteration) */
            kir_cu_ulist(x, s->body, s->n_body, depth + 1, o);
            kir_cu_sync(x, depth + 1, o);
            kir_cu_indent(depth, o);
            kf_str_append(o, "}\n");
        }
        /* after the loop: either its last iteration ended in a barrier, or it ran no
         * iteration and what was pending before still is */
        memcpy(x->rd, save_r, (size_t)k->n_bufs);
        memcpy(x->wr, save_w, (size_t)k->n_bufs);
    } else { /* IF */
        kir_cu_indent(depth, o);
        kf_str_append(o, "if (");
        kir_rc_expr(c, s->cond, o);
        kf_str_append(o, ") {\n");
        kir_cu_ulist(x, s->body, s->n_body, depth + 1, o);
        unsigned char *then_r = all_r, *then_w = all_w; /* reuse: the branch's end state */
        memcpy(then_r, x->rd, (size_t)k->n_bufs);
        memcpy(then_w, x->wr, (size_t)k->n_bufs);
        memcpy(x->rd, save_r, (size_t)k->n_bufs);
        memcpy(x->wr, save_w, (size_t)k->n_bufs);
        if (s->n_els) {
            kir_cu_indent(depth, o);
            kf_str_append(o, "} else {\n");
            kir_cu_ulist(x, s->els, s->n_els, depth + 1, o);
        }
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
        for (int b = 0; b < k->n_bufs; b++) {
            x->rd[b] |= then_r[b];
            x->wr[b] |= then_w[b];
        }
    }
    free(hr);
    kir_cu_scope_end(x, mark);
}

static void kir_cu_ustmt(kir_cu *x, const kir_stmt *s, int depth, kf_str *o) {
    kir_rc *c = &x->c;
    if (!s) {
        kir_rc_fail(c, KF_E_INVALID, "missing statement");
        return;
    }
    if (s->kind == KIR_S_BARRIER) {
        kir_cu_sync(x, depth, o);
        return;
    }
    int outer = kir_cu_assigns_outer(x, s);
    if (s->kind == KIR_S_FOR && s->loop == KIR_LOOP_PARALLEL && !outer) {
        if (kir_cu_order(x, s, depth, o)) kir_cu_dist(x, s, depth, o);
        return;
    }
    if ((s->kind == KIR_S_FOR || s->kind == KIR_S_IF || s->kind == KIR_S_BLOCK) && !outer &&
        kir_cu_has_kind(s, KIR_S_FOR, 1)) {
        kir_cu_uniform_compound(x, s, depth, o);
        return;
    }
    /* a serial statement */
    if (!kir_cu_order(x, s, depth, o)) return;
    if (!kir_cu_has_kind(s, KIR_S_STORE, 0)) {
        kir_cu_tstmt(x, s, depth, o); /* only locals: every thread computes them */
    } else if (!outer) {
        kir_cu_indent(depth, o);
        kf_str_append(o, "if (kf_gtid == 0) {\n");
        kir_cu_tstmt(x, s, depth + 1, o);
        kir_cu_indent(depth, o);
        kf_str_append(o, "}\n");
    } else {
        int saved = x->pred;
        x->pred = 1;
        kir_cu_tstmt(x, s, depth, o);
        x->pred = saved;
    }
}

static void kir_cu_ulist(kir_cu *x, kir_stmt *const *l, int n, int depth, kf_str *o) {
    int mark = x->c.n_scope;
    for (int i = 0; i < n && !x->c.rc; i++) kir_cu_ustmt(x, l[i], depth, o);
    kir_cu_scope_end(x, mark);
}

/* ---- kernels ---- */

static void kir_cu_count_reads(const kir_expr *e, int *reads, int n_vars) {
    if (!e) return;
    if (e->kind == KIR_E_VAR && e->var >= 0 && e->var < n_vars) reads[e->var]++;
    kir_cu_count_reads(e->a, reads, n_vars);
    kir_cu_count_reads(e->b, reads, n_vars);
    kir_cu_count_reads(e->c, reads, n_vars);
}

static void kir_cu_count_stmt_reads(const kir_stmt *s, int *reads, int n_vars) {
    if (!s) return;
    kir_cu_count_reads(s->lo, reads, n_vars);
    kir_cu_count_reads(s->hi, reads, n_vars);
    kir_cu_count_reads(s->idx, reads, n_vars);
    kir_cu_count_reads(s->val, reads, n_vars);
    kir_cu_count_reads(s->cond, reads, n_vars);
    for (int i = 0; i < s->n_body; i++) kir_cu_count_stmt_reads(s->body[i], reads, n_vars);
    for (int i = 0; i < s->n_els; i++) kir_cu_count_stmt_reads(s->els[i], reads, n_vars);
}

static int kir_cu_names(kir_cu *x) {
    kir_rc *c = &x->c;
    const kir_kernel *k = c->k;
    int n = k->n_bufs + k->n_vars;
    char **all = calloc(n ? (size_t)n : 1, sizeof *all);
    if (!all) return KF_E_NOMEM;
    c->bname = all;
    c->vname = all + k->n_bufs;
    for (int i = 0; i < n; i++) {
        const char *src = i < k->n_bufs ? k->bufs[i].name : k->vars[i - k->n_bufs].name;
        if (!(all[i] = kir_cu_name(src, all, i))) return KF_E_NOMEM;
    }
    return 0;
}

static int kir_cu_kernel(const kir_kernel *k, kf_str *o, kir_launch *launch, kf_err *err) {
    const char *why = kir_failure(k);
    if (why)
        return kf_fail(err, strcmp(why, KIR_OOM) == 0 ? KF_E_NOMEM : KF_E_INVALID,
                       "kir_render_cuda: kernel '%s' is incomplete: %s", k && k->name ? k->name : "?", why);
    if (!kir_cu_is_ident(k->name) || kir_cu_is_reserved(k->name) || strstr(k->name, "__"))
        return kf_fail(err, KF_E_INVALID, "kir_render_cuda: kernel name '%s' is not a usable CUDA identifier",
                       k->name);
    kir_cu x;
    memset(&x, 0, sizeof x);
    x.c.k = k;
    x.c.err = err;
    size_t nv = k->n_vars ? (size_t)k->n_vars : 1, nb = k->n_bufs ? (size_t)k->n_bufs : 1;
    x.c.live = calloc(nv, sizeof *x.c.live);
    x.c.reads = calloc(nv, sizeof *x.c.reads);
    x.rd = calloc(nb * 2, 1);
    x.wr = x.rd ? x.rd + nb : NULL;
    if (!x.c.live || !x.c.reads || !x.rd || (x.c.rc = kir_cu_names(&x)) != 0 || (x.c.rc = kir_cu_defs(&x)) != 0) {
        if (!x.c.rc) x.c.rc = KF_E_NOMEM;
        kf_fail(err, x.c.rc, "kir_render_cuda: out of memory");
    }
    for (int i = 0; i < k->n_bufs && !x.c.rc; i++)
        if (!kir_rc_buf_ctype(k->bufs[i].dtype))
            x.c.rc = kf_fail(err, KF_E_UNSUPPORTED, "kir_render_cuda: kernel '%s': buffer '%s' has dtype %s, which "
                             "CUDA kernels cannot use", k->name, k->bufs[i].name, kf_dtype_name(k->bufs[i].dtype));
    x.threads = k->threads >= 32 && k->threads <= 1024 && k->threads % 32 == 0 ? k->threads : KIR_CU_BLOCK;
    kf_str body;
    kf_str_init(&body);
    if (!x.c.rc) {
        kir_cu_count_stmt_reads(k->body, x.c.reads, k->n_vars);
        if (k->body && k->body->kind == KIR_S_BLOCK) kir_cu_ulist(&x, k->body->body, k->body->n_body, 1, &body);
        else kir_cu_ustmt(&x, k->body, 1, &body);
    }
    if (!x.c.rc) {
        int64_t block = x.n_dist ? x.threads : 1, grid = 1;
        if (x.n_dist) {
            grid = (x.max_total + block - 1) / block;
            if (x.unknown_total && grid < KIR_CU_DEFAULT_GRID) grid = KIR_CU_DEFAULT_GRID;
            if (grid > KIR_CU_MAX_GRID) grid = KIR_CU_MAX_GRID;
            if (grid < 1) grid = 1;
        }
        /* the grid barrier's counters also mark the kernel for a cooperative launch */
        if (x.grid_syncs || x.split_used) kf_str_appendf(o, "__device__ unsigned int kf_gridbar_%s[2];\n", k->name);
        if (x.split_used) {
            kf_str_appendf(o, "__device__ unsigned int kf_grpbar_%s[%lld];\n", k->name, (long long)(2 * grid));
            for (int t = 0; t <= KIR_T_F64; t++) /* partials of split reductions: two halves of grid entries */
                if (x.part_used[t])
                    kf_str_appendf(o, "__device__ %s kf_part_%s_%s[%lld];\n", kir_rc_ctype((kir_type)t),
                                   kir_type_name((kir_type)t), k->name, (long long)(2 * grid));
        }
        kf_str_appendf(o, "extern \"C\" __global__ void __launch_bounds__(%lld) %s(", (long long)block, k->name);
        for (int i = 0; i < k->n_bufs; i++)
            kf_str_appendf(o, "%s%s%s *__restrict__ %s", i ? ", " : "", k->bufs[i].writes ? "" : "const ",
                           kir_rc_buf_ctype(k->bufs[i].dtype), x.c.bname[i]);
        kf_str_append(o, ")\n{\n");
        kf_str_append(o, "    const int64_t kf_gtid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;\n"
                         "    const int64_t kf_gsize = (int64_t)gridDim.x * blockDim.x;\n"
                         "    (void)kf_gtid;\n    (void)kf_gsize;\n");
        if (x.split_used) /* which half of the split partials the block's next reduction uses */
            kf_str_append(o, "    int kf_par = 0;\n    (void)kf_par;\n");
        for (int t = 0; t <= KIR_T_F64; t++) /* partials of block reductions, one per warp */
            if (x.sh_used[t])
                kf_str_appendf(o, "    __shared__ %s kf_sh_%s[32];\n", kir_rc_ctype((kir_type)t), kir_type_name((kir_type)t));
        kf_str_appendn(o, body.data ? body.data : "", body.len);
        kf_str_append(o, "}\n");
        if (launch) {
            memset(launch, 0, sizeof *launch);
            launch->grid[0] = grid;
            launch->grid[1] = launch->grid[2] = 1;
            launch->block[0] = block;
            launch->block[1] = launch->block[2] = 1;
            launch->grid_sync = x.grid_syncs > 0 || x.split_used;
        }
    }
    kf_str_free(&body);
    if (x.c.bname)
        for (int i = 0; i < k->n_bufs + k->n_vars; i++) free(x.c.bname[i]);
    free(x.c.bname);
    free(x.c.live);
    free(x.c.reads);
    free(x.c.scope);
    free(x.rd);
    free(x.def);
    free(x.declared_in);
    return x.c.rc;
}

int kir_render_cuda(kir_kernel *const *kernels, int n, kf_str *out, kir_launch *launch, kf_err *err) {
    if (!out || (n > 0 && !kernels)) return kf_fail(err, KF_E_INVALID, "kir_render_cuda: no output or kernels");
    kf_str unit;
    kf_str_init(&unit);
    kf_str_append(&unit, kir_cu_prelude);
    kf_str_append(&unit, "#ifndef KF_CU_TRIP\n#define KF_CU_TRIP\n"
                         "KF_D int64_t kf_trip(int64_t lo, int64_t hi, int64_t step) {\n"
                         "    return hi > lo ? (hi - lo + step - 1) / step : 0;\n}\n#endif\n");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (!kernels[i]) {
            rc = kf_fail(err, KF_E_INVALID, "kir_render_cuda: kernel %d is NULL", i);
            break;
        }
        for (int j = 0; j < i && !rc; j++)
            if (strcmp(kernels[i]->name, kernels[j]->name) == 0)
                rc = kf_fail(err, KF_E_INVALID, "kir_render_cuda: two kernels named '%s'", kernels[i]->name);
        if (rc) break;
        kf_str_append(&unit, "\n");
        rc = kir_cu_kernel(kernels[i], &unit, launch ? &launch[i] : NULL, err);
    }
    if (!rc) kf_str_appendn(out, unit.data ? unit.data : "", unit.len);
    kf_str_free(&unit);
    return rc;
}
