/* kir_int.h: helpers shared by the kernel IR's own files (arena allocation, array growth).
 * Not part of the public contract: only the files in src/kir include it. */
#ifndef KIR_INT_H
#define KIR_INT_H

#include <stddef.h>
#include "kir/kir.h"

void *kir_alloc(kir_kernel *k, size_t n);   /* zeroed, 16-byte aligned; NULL marks k failed */
char *kir_strdup(kir_kernel *k, const char *s);
/* Returns arr, or a copy with twice the capacity when n == *cap (updates *cap); NULL on failure. */
void *kir_grow(kir_kernel *k, void *arr, int n, int *cap, size_t elem);
/* Records why k is incomplete (the first reason is kept). */
void kir_mark_failed(kir_kernel *k, const char *why);
#define KIR_OOM "out of memory"

const char *kir_unop_name(int op);   /* "exp", "neg", ... */
const char *kir_binop_name(int op);  /* "+", "max", "<", ... */
const char *kir_loop_name(kir_loop_kind l);

int kir_expr_uses(const kir_expr *e, int var);  /* reads of var in e */
int kir_stmt_uses(const kir_stmt *s, int var);  /* reads of var anywhere in s */
/* The variables a loop assigns among those flagged in outer[n_vars] (declared outside it).
 * Returns 1 if every such variable is only updated as v = v + e (e not reading v) and read
 * nowhere else in the loop (they are listed in sum_vars, n_sum of them: OpenMP reductions);
 * 0 if some variable is not (its id in *bad_var); -1 if out of memory. */
int kir_loop_outer_assigns(const kir_stmt *loop, int n_vars, const int *outer, int *sum_vars,
                           int *n_sum, int *bad_var);

#endif
