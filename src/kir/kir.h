/* kir.h: the kernel IR, one small loop-nest language that every target renders.
 *
 * A kernel has buffer parameters (typed pointers), variables (loop indices and locals) and a
 * body of statements: loops (serial, parallel, vector, unrolled), stores, local declarations
 * and assignments, ifs, barriers. Expressions: integer and float constants, variables, loads,
 * unary and binary ops, select, cast, fused multiply-add. Shapes are baked in as constants (kernels are
 * specialised to the problem's shapes). All nodes live in the kernel's arena and are freed
 * with it. Renderers: kir_render_c (C with OpenMP), kir_render_cuda (CUDA C for NVRTC);
 * OpenCL/Metal later.
 *
 * Loop semantics: for (v = lo; v < hi; v += step). KIR_LOOP_PARALLEL loops are independent
 * iterations (the C renderer emits an OpenMP parallel for over the outermost run of them,
 * collapsing perfectly nested parallel loops; nested parallel loops inside a parallel region
 * run serially). KIR_LOOP_VECTOR asks for SIMD (omp simd), KIR_LOOP_UNROLL for unrolling by
 * `unroll` (0 = full). */
#ifndef KIR_H
#define KIR_H

#include <stdint.h>
#include "core/kf_dtype.h"
#include "core/kf_err.h"
#include "core/kf_str.h"
#include "ir/kf_program.h"

typedef enum { KIR_T_BOOL, KIR_T_I32, KIR_T_I64, KIR_T_F32, KIR_T_F64 } kir_type;

typedef enum {
    KIR_E_CONST_I, KIR_E_CONST_F, KIR_E_VAR, KIR_E_LOAD, KIR_E_UN, KIR_E_BIN, KIR_E_SELECT,
    KIR_E_CAST,
    KIR_E_FMA    /* a * b + c rounded once (float types only): dot-product accumulations */
} kir_expr_kind;

typedef enum {
    KIR_NEG, KIR_NOT, KIR_ABS, KIR_EXP, KIR_EXPM1, KIR_LOG, KIR_LOG1P, KIR_SQRT, KIR_RSQRT,
    KIR_RECIP, KIR_TANH, KIR_SIGMOID, KIR_ERF, KIR_SIN, KIR_COS, KIR_FLOOR, KIR_CEIL,
    KIR_ROUND /* half to even, like torch.round */, KIR_SIGN, KIR_ISNAN,
    KIR_EXP2I /* 2^trunc(x) for trunc(x) in the normal exponent range (f32: -126..127), by
               * building the float's exponent bits: the vector math's exp scaling */,
    KIR_FREXP_M /* x's significand scaled into [1, 2) (finite normal x > 0) */,
    KIR_FREXP_E /* x's unbiased binary exponent, as a float (finite normal x > 0): the
                 * vector math's log range reduction */,
    KIR_UN_COUNT
} kir_unop;

typedef enum {
    KIR_ADD, KIR_SUB, KIR_MUL, KIR_DIV /* int: truncating, operands non-negative */, KIR_MOD,
    KIR_MAX, KIR_MIN /* float: NaN-propagating like torch.maximum */, KIR_POW, KIR_FMOD,
    KIR_LT, KIR_LE, KIR_GT, KIR_GE, KIR_EQ, KIR_NE, KIR_AND, KIR_OR, KIR_BIN_COUNT
} kir_binop;

typedef struct kir_expr {
    kir_expr_kind kind;
    kir_type type;          /* result type */
    int64_t ival;           /* CONST_I */
    double fval;            /* CONST_F */
    int var;                /* VAR */
    int buf;                /* LOAD */
    int op;                 /* kir_unop / kir_binop */
    struct kir_expr *a, *b, *c; /* operands; LOAD: a = element index (i64) */
} kir_expr;

typedef enum {
    KIR_S_BLOCK, KIR_S_FOR, KIR_S_STORE, KIR_S_DECL, KIR_S_ASSIGN, KIR_S_IF, KIR_S_BARRIER
} kir_stmt_kind;

typedef enum { KIR_LOOP_SERIAL, KIR_LOOP_PARALLEL, KIR_LOOP_VECTOR, KIR_LOOP_UNROLL } kir_loop_kind;

typedef struct kir_stmt {
    kir_stmt_kind kind;
    /* FOR */
    int var; kir_expr *lo, *hi; int64_t step; kir_loop_kind loop; int unroll;
    /* FOR, GPU mapping (kir_sched_gpu; the C renderer ignores it): on the outermost PARALLEL
     * loop of a nest, the number of threads that share each iteration (32: a warp; the
     * kernel's block size or more: the block; KIR_COOP_SPLIT: several blocks per iteration,
     * as many as fit (kir_render_cuda's split rows); 0: one thread per iteration); on a loop in such a nest's body,
     * 1 when the group's threads split its iterations (a cooperative loop, whose
     * reductions into outer variables are combined across the group afterwards). */
    int coop;
#define KIR_COOP_SPLIT 4096
    /* STORE: buf[idx] = val;  DECL: var = val (val may be NULL);  ASSIGN: var = val */
    int buf; kir_expr *idx, *val;
    /* IF */
    kir_expr *cond;
    /* BLOCK / FOR / IF(then) bodies; IF else in els */
    struct kir_stmt **body; int n_body, cap_body;
    struct kir_stmt **els; int n_els, cap_els;
} kir_stmt;

typedef struct kir_bufdecl { char *name; kf_dtype dtype; int writes; } kir_bufdecl;
typedef struct kir_vardecl { char *name; kir_type type; } kir_vardecl;

typedef struct kir_arena kir_arena;

typedef struct kir_kernel {
    kir_arena *arena;
    char *name;
    kir_bufdecl *bufs; int n_bufs, cap_bufs;   /* the kernel's parameters, in order */
    kir_vardecl *vars; int n_vars, cap_vars;
    kir_stmt *body;                            /* a BLOCK */
    int threads;       /* GPU threads per block (0: the renderer's default); kir_sched_gpu */
    int vec4;          /* GPU: 1 would let the renderer use 16-byte loads/stores in
                        * elementwise loops (kir_sched_gpu sets it; not rendered yet) */
} kir_kernel;

kir_kernel *kir_kernel_new(const char *name);
void kir_kernel_free(kir_kernel *k);
int kir_add_buf(kir_kernel *k, const char *name, kf_dtype dtype, int writes); /* -> buf id */
int kir_add_var(kir_kernel *k, const char *hint, kir_type type);              /* -> var id, unique name */
kir_type kir_type_of_dtype(kf_dtype dt);  /* element type a load yields (bool/u8 -> I32 etc.) */
const char *kir_type_name(kir_type t);     /* "f32", "i64", "bool", ... */
/* NULL, or why k is incomplete: "out of memory" (builders then return NULL) or a misuse
 * such as appending to a non-container; kir_render_c reports it (KF_E_NOMEM / KF_E_INVALID). */
const char *kir_failure(const kir_kernel *k);

/* Expressions (allocated in k's arena). Binary ops promote: any float -> the wider float,
 * else the wider int; comparisons yield BOOL. */
kir_expr *kir_int(kir_kernel *k, int64_t v);            /* I64 */
kir_expr *kir_flt(kir_kernel *k, double v, kir_type t); /* F32 or F64 */
kir_expr *kir_var(kir_kernel *k, int var);
kir_expr *kir_load(kir_kernel *k, int buf, kir_expr *idx);
kir_expr *kir_un(kir_kernel *k, kir_unop op, kir_expr *a);
kir_expr *kir_bin(kir_kernel *k, kir_binop op, kir_expr *a, kir_expr *b);
kir_expr *kir_select(kir_kernel *k, kir_expr *cond, kir_expr *a, kir_expr *b);
kir_expr *kir_cast(kir_kernel *k, kir_type t, kir_expr *a);
/* a * b + c with one rounding (C fmaf / fma), in the widest operand type, which must be a
 * float type (NULL otherwise). For multiply-accumulate loops (convolution, matmul), where it
 * is what vendor libraries do and is at least as accurate as a separate multiply and add. */
kir_expr *kir_fma(kir_kernel *k, kir_expr *a, kir_expr *b, kir_expr *c);
/* Shorthands */
kir_expr *kir_add(kir_kernel *k, kir_expr *a, kir_expr *b);
kir_expr *kir_mul(kir_kernel *k, kir_expr *a, kir_expr *b);

/* Statements. Containers (BLOCK, FOR, IF) are filled with kir_append / kir_append_else. */
kir_stmt *kir_block(kir_kernel *k);
kir_stmt *kir_for(kir_kernel *k, int var, kir_expr *lo, kir_expr *hi, int64_t step, kir_loop_kind loop);
kir_stmt *kir_store(kir_kernel *k, int buf, kir_expr *idx, kir_expr *val);
kir_stmt *kir_decl(kir_kernel *k, int var, kir_expr *init);
kir_stmt *kir_assign(kir_kernel *k, int var, kir_expr *val);
kir_stmt *kir_if(kir_kernel *k, kir_expr *cond);
kir_stmt *kir_barrier(kir_kernel *k);
void kir_append(kir_kernel *k, kir_stmt *parent, kir_stmt *child);
void kir_append_else(kir_kernel *k, kir_stmt *parent_if, kir_stmt *child);

/* Deep copies within the same kernel (for schedule transforms). */
kir_expr *kir_expr_clone(kir_kernel *k, const kir_expr *e);
kir_stmt *kir_stmt_clone(kir_kernel *k, const kir_stmt *s);
/* Substitute every use of var with e (in place, clones e per use). */
void kir_subst_var(kir_kernel *k, kir_stmt *s, int var, const kir_expr *e);

/* Renders kernels as one C11 translation unit: includes <math.h>, <stdint.h>, <omp.h> guard,
 * then for each kernel `void NAME(T0 *restrict b0, const T1 *restrict b1, ...)` with buffer
 * names sanitised to C identifiers. Float math stays float32 for F32 (expf, not exp). */
int kir_render_c(kir_kernel *const *kernels, int n, kf_str *out, kf_err *err);
/* Launch geometry kir_render_cuda chose for one kernel (x dimension only; y = z = 1). */
typedef struct kir_launch {
    int64_t grid[3], block[3], shared_bytes;
    int grid_sync;  /* 1: the kernel has grid-wide barriers (launched cooperatively) */
} kir_launch;

/* Renders kernels as one CUDA C++ translation unit for NVRTC (no host headers): a prelude of
 * __device__ helpers, then for each kernel `extern "C" __global__ void
 * __launch_bounds__(B) NAME(T0 *__restrict__ b0, const T1 *__restrict__ b1, ...)`. Parallel
 * loops become grid-stride loops over all threads; float32 stays float32 (expf, no fast
 * math). launch (may be NULL) gets n entries, the geometry for each kernel's launch step.
 * The mapping is described at the top of kir_render_cuda.c. */
int kir_render_cuda(kir_kernel *const *kernels, int n, kf_str *out, kir_launch *launch, kf_err *err);
/* The plan params for a KIR kernel: one KF_KP_PTR per buffer, in order (names = buffer names). */
kf_kparam *kir_plan_params(const kir_kernel *k, int *n); /* malloc'd array (free it); names
                                                          * point into k, copy before k is freed */

/* Debug dump, one statement a line. */
void kir_dump(const kir_kernel *k, kf_str *out);

#endif
