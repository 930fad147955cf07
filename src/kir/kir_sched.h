/* kir_sched.h: schedule transforms on KIR kernels. They change how a kernel's loops run
 * (split, tile, interchange, unroll, vectorise, parallelise), never what it computes, so
 * a schedule found once renders to every target.
 *
 * Loops are addressed by their statement (kir_stmt of kind KIR_S_FOR); kir_sched_loops lists
 * them in pre-order. Transforms that need independent iterations (interchange, tile) say so;
 * vectorisation checks legality itself. Every transform returns 0 on success, KF_E_INVALID
 * when the loop does not have the required form (the kernel is then unchanged), KF_E_NOMEM
 * when the kernel's arena is exhausted. */
#ifndef KIR_SCHED_H
#define KIR_SCHED_H

#include "kir/kir.h"

/* A copy of e (from any kernel) in k with every read of variable var replaced by a copy of
 * with (with == NULL: plain copy). NULL when out of memory. */
kir_expr *kir_sched_expr_subst(kir_kernel *k, const kir_expr *e, int var, const kir_expr *with);

/* Integer value of e with variable var = val (constants, that variable, + - * / % min max,
 * comparisons, select, integer casts); 0 on success, KF_E_INVALID if e is anything else. */
int kir_sched_eval_int(const kir_expr *e, int var, int64_t val, int64_t *out);

/* Loops in pre-order (outer before inner); returns the count (at most max stored). */
int kir_sched_loops(kir_stmt *root, kir_stmt **out, int max);
/* The parent statement of s under root, or NULL. */
kir_stmt *kir_sched_parent(kir_stmt *root, const kir_stmt *s);
/* Constant trip count of a loop, or -1. */
int64_t kir_sched_trip(const kir_stmt *loop);
/* 1 if s contains no loop. */
int kir_sched_innermost(const kir_stmt *loop);

/* Strip-mine: `for v in [lo,hi)` becomes `for vo in [0, ceil(n/f)) { for v in
 * [lo + vo*f, min(lo + vo*f + f, hi)) body }`; the outer loop keeps the loop kind, the inner is
 * serial. Needs step 1 and constant bounds. *outer gets the outer loop (the same statement,
 * now over vo), *inner the inner one. */
int kir_sched_split(kir_kernel *k, kir_stmt *loop, int64_t factor, kir_stmt **outer, kir_stmt **inner);
/* Swap a loop with its only child loop (bounds of the child must not use the parent's
 * variable); loop kinds stay with their positions. Iterations must be independent. */
int kir_sched_interchange(kir_kernel *k, kir_stmt *outer);
/* Tile two perfectly nested loops by f0 x f1: io, jo, ii, ji. Iterations must be
 * independent. */
int kir_sched_tile(kir_kernel *k, kir_stmt *outer, int64_t f0, int64_t f1);
/* A loop over r in [0, n) whose body divides r by a constant C (r / C, r % C) with C | n
 * becomes rh in [0, n / C) { rl in [0, C) { body } } with r / C -> rh, r % C -> rl and
 * r -> rh * C + rl, so the inner loop's indices are affine (vectorisable). 1 if done, 0 if
 * the loop has no such pattern, negative on failure. */
int kir_sched_unflatten(kir_kernel *k, kir_stmt *loop);
/* Unroll hint (0 = full). */
int kir_sched_unroll(kir_kernel *k, kir_stmt *loop, int factor);

/* 1 if the loop may run as SIMD lanes: innermost, step 1, every store's index reads the loop
 * variable, no buffer both stored and loaded at a different index, outer variables only
 * summed into. */
int kir_sched_vector_legal(const kir_kernel *k, const kir_stmt *loop);
int kir_sched_vectorize(kir_kernel *k, kir_stmt *loop);
/* Vectorise every legal innermost serial loop; an innermost parallel loop of at least
 * 2 * chunk iterations is split into parallel chunks of `chunk` with a vector inner loop.
 * Returns the number of loops vectorised (>= 0) or a negative error. */
int kir_sched_auto_vector(kir_kernel *k, int64_t chunk);
/* Rewrites float32 exp, expm1, sigmoid, tanh, erf, log and log1p inside vector loops into
 * arithmetic the C compiler can vectorise (kir_sched_math.c says how, and how accurate).
 * const_buf: a float32 buffer of k holding kir_sched_math_consts' table at run time (keeps
 * the compiler from specialising on constants, which blocks vectorisation), or -1. Returns
 * how many calls were rewritten, or a negative error. */
int kir_sched_vector_math(kir_kernel *k, int const_buf);
/* The constant table (up to max values into out); returns its length. */
int kir_sched_math_consts(double *out, int max);
/* 1 if k has such calls inside vector loops. */
int kir_sched_has_vector_math(const kir_kernel *k);
/* Turn every parallel loop serial (for tiny kernels where threads cost more than they save). */
int kir_sched_serialize(kir_kernel *k);
/* Parallelise the outermost loop when its iterations are independent (no outer variable
 * assigned, every store index reads its variable); 1 if done, 0 if not legal. */
int kir_sched_parallelize(kir_kernel *k, kir_stmt *loop);

/* The GPU mapping (kir_sched_gpu.c says what it marks): threads per block (0: automatic,
 * 256, or 1024 for kernels with long cooperative rows (16384 elements or more) unless they
 * have split nests (few rows of at least KIR_GPU_SPLIT_WORK elements, each run by several
 * blocks: coop = KIR_COOP_SPLIT, only with rows 0 or 3); else a
 * multiple of 32 up to 1024), rows: how a parallel nest whose body has loops the threads can
 * share runs (0: automatic, a warp for rows of at most 1024 elements and the whole block for
 * longer ones, one thread per row for tiny rows; 1: one thread per row; 2: a warp per row;
 * 3: the block per row); vec4: allow 16-byte accesses in elementwise loops. Returns the
 * number of nests made cooperative, or KF_E_INVALID. The C renderer ignores all of it. */
int kir_sched_gpu(kir_kernel *k, int threads, int rows, int vec4);
/* 1 if the threads of a group may split loop's iterations (see kir_sched_gpu.c). */
int kir_sched_gpu_coop_legal(const kir_kernel *k, const kir_stmt *loop);
/* The reduction op (KIR_ADD, KIR_MAX, KIR_MIN) of the assignment `var = val`, or -1. */
int kir_sched_gpu_reduction(const kir_expr *val, int var);

#endif
