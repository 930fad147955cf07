/* lower.h: internal interface of the naive lowering (src/agents/lower_*.c), shared with the
 * agents that reuse it (search).
 *
 * The lowering turns each ATen node of a kf_graph into one KIR kernel. A node is handled by
 * one entry of a const op table (kf_lop), found by the op's base name with any trailing
 * in-place '_' removed ("aten.add_.Tensor" -> "add"):
 *  - ALIAS ops (views that move no data) give their output the storage of their input;
 *  - NONE ops (empty) give their output storage but write nothing;
 *  - EW ops are elementwise: an emitter returns the output element expression given the
 *    element expressions of the op's operands (numpy broadcasting is done by the caller);
 *  - KERNEL ops have a builder that appends statements to the kernel's body.
 *
 * Every value the lowering produces is stored contiguous (row-major in its logical shape), so
 * a view that keeps the row-major order of the elements (view, reshape, squeeze, flatten, ...)
 * is free, and every other view is a copy kernel.
 *
 * Builders never touch the node's buffers directly: they go through kf_lw_load / kf_lw_store,
 * which resolve graph values to kernel buffers through the kf_lw callbacks. A fusing agent
 * supplies its own callbacks (to read a producer's expression instead of a buffer, or to
 * apply an epilogue before a store) and reuses every builder unchanged. */
#ifndef KF_LOWER_H
#define KF_LOWER_H

#include <stdint.h>
#include "agents/kf_agent.h"
#include "kir/kir.h"

typedef struct kf_lw kf_lw;

/* One kernel being built for one node. */
struct kf_lw {
    kir_kernel *k;
    const kf_graph *g;
    const kf_node *n;
    char op[96];                    /* base op name, in-place '_' removed ("add") */
    /* Kernel buffer holding graph value v (added to k on first use); -1 on failure. */
    int (*value_buf)(kf_lw *w, int value, int writes);
    /* Optional: the element of value v at flat index idx instead of a load (fusion). */
    kir_expr *(*load_hook)(kf_lw *w, int value, kir_expr *idx);
    /* Optional: the statement storing val at flat index idx of output slot (fusion). */
    kir_stmt *(*store_hook)(kf_lw *w, int slot, kir_expr *idx, kir_expr *val);
    /* Optional: live[v] == 0 marks graph value v as unused (its stores are skipped). */
    const unsigned char *live;
    /* 1: norms over long reductions (2^18 elements or more) take mean and variance in one
     * pass over the input (sums of x - x[first] and of its square, in double) instead of two;
     * for GPUs, where the second pass is a second read of the whole input from memory. */
    int one_pass_stats;
    /* 1: batch norm also stores its float32 mean and rstd per channel into kernel buffers
     * stats_kbuf[0] and [1] (a deferred norm: its readers normalise, fuse_defer.c). */
    int stats_out, stats_kbuf[2];
    void *user;
};

/* Elementwise emitter: the output element given the operand elements, already converted to
 * the node's compute type (see kf_lw_ew_info); an operand that is absent or None is NULL.
 * Emitters clone operands (kir_expr_clone) for every use. NULL result: unsupported attrs. */
typedef kir_expr *(*kf_ew_fn)(kir_kernel *k, const kf_node *n, kir_expr **inputs);
/* Kernel builder: appends the node's loops to w->k->body. */
typedef int (*kf_build_fn)(kf_lw *w, kf_err *err);
/* For KERNEL ops that may move no data: 1 if this node's output can alias its input. */
typedef int (*kf_alias_fn)(const kf_graph *g, const kf_node *n);

typedef enum { KF_LOP_ALIAS, KF_LOP_NONE, KF_LOP_EW, KF_LOP_KERNEL } kf_lop_kind;

/* How an elementwise op picks the type its operands are converted to. */
typedef enum {
    KF_EWT_OUT,       /* the output's type (arithmetic: int stays int, float stays float) */
    KF_EWT_PROMOTE,   /* the operands' promoted type (comparisons: output is bool) */
    KF_EWT_OWN        /* each operand keeps its own type (casts, isnan, logical ops) */
} kf_ew_typing;

typedef struct kf_lop {
    const char *name;               /* base name ("addmm") */
    kf_lop_kind kind;
    kf_ew_fn ew;                    /* EW */
    const char *operands[4];        /* EW: operand arg names, tensors or numbers */
    kf_ew_typing typing;            /* EW */
    unsigned own;                   /* EW: bit i set: operand i keeps its own type */
    kf_build_fn build;              /* KERNEL */
    kf_alias_fn alias;              /* KERNEL, optional */
} kf_lop;

/* The op tables of each lowering file, and the lookup over all of them. */
extern const kf_lop kf_lops_elementwise[];
extern const kf_lop kf_lops_matmul[];
extern const kf_lop kf_lops_conv[];
extern const kf_lop kf_lops_pool[];
extern const kf_lop kf_lops_reduce[];
extern const kf_lop kf_lops_dim[];
extern const kf_lop kf_lops_norm[];
extern const kf_lop kf_lops_view[];
extern const kf_lop kf_lops_loss[];
extern const kf_lop kf_lops_misc[];
extern const kf_lop kf_lops_index[];
extern const kf_lop kf_lops_resize[];
/* NULL when no table has op (a full "aten.x.y" name or a base name). */
const kf_lop *kf_lop_find(const char *op);
/* Base name with the in-place '_' removed: "aten.relu_.default" -> "relu". */
const char *kf_lop_base(const char *op, char *buf, size_t n);
/* 1 if node n moves no data (its output may share its input's storage). */
int kf_lop_is_alias(const kf_graph *g, const kf_node *n, const kf_lop *l);
/* The KF_E_UNSUPPORTED error for n: "unsupported op: aten.x.y" plus an optional reason. */
int kf_lw_unsupported(kf_err *err, const kf_node *n, const char *why);

/* ---- arguments (lower_args.c) ---- */
/* The arg named name, else the unnamed arg at position pos (pos < 0: none). */
const kf_arg *kf_lw_arg(const kf_node *n, const char *name, int pos);
int kf_lw_arg_tensor(const kf_node *n, const char *name, int pos);   /* value or -1 */
int kf_lw_arg_is_none(const kf_node *n, const char *name, int pos);  /* absent or None */
int64_t kf_lw_arg_int(const kf_node *n, const char *name, int pos, int64_t dflt);
double kf_lw_arg_num(const kf_node *n, const char *name, int pos, double dflt);
/* Int list into out (max entries); a single int is a list of one. Returns the count, or -1
 * when absent or None. */
int kf_lw_arg_ints(const kf_node *n, const char *name, int pos, int64_t *out, int max);
/* dim wrapped into [0, ndim) (ndim 0 counts as 1). */
int kf_lw_wrap_dim(int64_t dim, int ndim);

/* ---- values and kernel helpers (lower_util.c) ---- */
const kf_tdesc *kf_lw_desc(const kf_lw *w, int value);
int64_t kf_lw_numel(const kf_lw *w, int value);
int kf_lw_out(const kf_lw *w, int slot);                 /* output value of slot, or -1 */
kir_type kf_lw_type(const kf_lw *w, int value);          /* element type of a value */
kir_expr *kf_lw_load(kf_lw *w, int value, kir_expr *idx);
/* 1 if output slot exists and its value is used (not dropped, not dead). */
int kf_lw_out_live(const kf_lw *w, int slot);
/* Store val (converted to the slot's dtype) at flat index idx of output slot: NULL when the
 * slot is not live (callers skip it). */
kir_stmt *kf_lw_store(kf_lw *w, int slot, kir_expr *idx, kir_expr *val);
/* Append a store to parent when the slot is live. */
void kf_lw_put(kf_lw *w, kir_stmt *parent, int slot, kir_expr *idx, kir_expr *val);
kir_expr *kf_lw_i(kf_lw *w, int64_t v);
kir_expr *kf_lw_dup(kf_lw *w, const kir_expr *e);
/* A float (or int) constant of the same type as like. */
kir_expr *kf_lw_const(kir_kernel *k, double v, const kir_expr *like);
kir_expr *kf_lw_cvt(kir_kernel *k, kir_type t, kir_expr *e);  /* cast, bool-correct */
/* New variable declared in parent with init; returns the var id. */
int kf_lw_local(kf_lw *w, kir_stmt *parent, const char *hint, kir_type t, kir_expr *init);
kir_expr *kf_lw_v(kf_lw *w, int var);
/* A loop for (v = 0; v < n; v++) appended to parent (NULL: the kernel body); *var gets v. */
kir_stmt *kf_lw_loop(kf_lw *w, kir_stmt *parent, const char *hint, int64_t n, kir_loop_kind kind,
                     int *var);
/* coords[j] of flat index e in a row-major shape (constant 0 for size-1 dims). */
void kf_lw_unravel(kf_lw *w, const kir_expr *flat, const int64_t *shape, int nd, kir_expr **coords);
/* Flat index of value `in` (shape broadcastable to out_shape) for flat output index e. */
kir_expr *kf_lw_bcast_index(kf_lw *w, const kir_expr *flat, const int64_t *out_shape, int out_nd,
                            const kf_tdesc *in);
/* sum(coords[j] * strides[j]) + offset; NULL coords count as 0. */
kir_expr *kf_lw_dot(kf_lw *w, kir_expr **coords, const int64_t *strides, int nd, int64_t offset);
void kf_lw_strides(const int64_t *shape, int nd, int64_t *strides);  /* row-major */
int kf_lw_check(kf_lw *w, kf_err *err);   /* KIR failure -> KF_E_NOMEM/KF_E_INTERNAL */

/* ---- elementwise (lower_elementwise.c) ---- */
typedef struct kf_ew_info {
    int n_operands;
    int tensor[4];          /* value of operand i, or -1 for a number */
    double number[4];       /* operand i when it is a number */
    int number_is_int[4];
    kir_type type[4];       /* type operand i is converted to */
    kir_type out;           /* type of output 0 */
} kf_ew_info;
int kf_lw_ew_info(const kf_graph *g, const kf_node *n, const kf_lop *l, kf_ew_info *info,
                  kf_err *err);
/* One parallel loop over the output computing the elementwise node through l->ew. */
int kf_lw_build_ew(kf_lw *w, const kf_lop *l, kf_err *err);

/* ---- reductions (lower_reduce.c): a reduction plan over a set of dims ---- */
typedef struct kf_red {
    int n_kept, n_red;                          /* merged dim groups */
    int64_t kept_shape[KF_MAX_DIMS], kept_stride[KF_MAX_DIMS];
    int64_t red_shape[KF_MAX_DIMS], red_stride[KF_MAX_DIMS];
    int64_t outer, count;                       /* output elements, elements reduced into each */
} kf_red;
/* Plan reducing dims red[d] != 0 of shape (nd dims). */
void kf_red_plan(kf_red *r, const int64_t *shape, int nd, const int *red);
/* Plan reducing the dims listed in the node's `dim` arg (absent/None/empty: all). */
int kf_red_plan_node(kf_red *r, const kf_lw *w, int in, const char *dim_arg, int pos);
kir_expr *kf_red_base(kf_lw *w, const kf_red *r, const kir_expr *o);  /* input offset of o */
kir_expr *kf_red_off(kf_lw *w, const kf_red *r, const kir_expr *i);   /* offset of element i */

/* ---- the whole-graph lowering (lower_core.c) ---- */
/* Accumulator type for a reduction over values of type t: F64 for floats. */
kir_type kf_lw_acc_type(kir_type t);

/* lower_render.c: 1 for the targets the lowerings render to (cpu, cuda). */
int kf_lower_is_target(const char *target);
/* Renders kernels into out's source for target and, for cuda, copies each kernel's launch
 * geometry into out's launch steps. */
/* kf_lower_render_raw: the same where raw[i] (when raw and raw[i] are not NULL) is kernel i's
 * CUDA source already (a template; kernels[i] is then NULL and its launch steps keep their
 * geometry), appended after the rendered ones. */
int kf_lower_render_raw(kir_kernel *const *kernels, char *const *raw, int n, const char *target, kf_program *out,
                        kf_err *err);
int kf_lower_render(kir_kernel *const *kernels, int n, const char *target, kf_program *out,
                    kf_err *err);

#endif
