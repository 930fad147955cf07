/* fuse.h: fusion planning and fused lowering for the search agent.
 *
 * The planner groups a graph's live nodes into kernels:
 *  - views cost nothing: row-major views alias their input's storage, and views that only
 *    re-index (permute, transpose, expand, slice, select, ...) are inlined into the loads of
 *    their consumers;
 *  - elementwise nodes of equal element count that feed each other share one loop (a group may
 *    store several values, e.g. both results of an LSTM cell);
 *  - an elementwise chain that feeds only a reduction-like op (sum, mean, softmax, norms, pools)
 *    is inlined into that op's loads (a prologue);
 *  - an elementwise chain that consumes a matmul/conv/reduction result of the same element
 *    count is applied before that result's store (an epilogue); with a library GEMM the
 *    epilogue is one kernel run in place after the gemm step.
 *
 * Lowering turns a plan plus one schedule per group (kf_gsched) into a kf_program, reusing the
 * naive lowering's op builders (lower.h) through load_hook / store_hook. */
#ifndef KF_FUSE_H
#define KF_FUSE_H

#include <stdint.h>
#include "agents/kf_agent.h"

typedef enum {
    KF_FN_DEAD,    /* not needed for any output, or writes nothing */
    KF_FN_ALIAS,   /* row-major view: shares its input's storage */
    KF_FN_GATHER,  /* re-indexing view: inlined into its consumers' loads */
    KF_FN_EW,      /* elementwise */
    KF_FN_GEMM,    /* matrix product (mm, bmm, addmm, linear, matmul, baddbmm, ...) */
    KF_FN_CONV,    /* convolution */
    KF_FN_OP       /* any other op with a kernel builder (reductions, norms, pools, ...) */
} kf_fnode_kind;

typedef struct kf_fgroup {
    int anchor;            /* the GEMM/CONV/OP node, or -1 for an elementwise-only group */
    int *nodes; int n_nodes;       /* member nodes in topological order (anchor included) */
    int *stores; int n_stores;     /* values computed here that are stored (used elsewhere) */
    int64_t numel;         /* elements of the group's loop (anchor output / elementwise shape) */
    double flops, bytes;   /* rough work estimate, to rank groups for tuning */
} kf_fgroup;

typedef struct kf_fplan {
    int n_nodes, n_values;
    kf_fnode_kind *kind;       /* per node */
    int *group;                /* per node: its group, -1 for views and dead nodes */
    unsigned char *prologue;   /* per node: inlined into its group's anchor loads */
    unsigned char *stored;     /* per value: has its own storage written by some group */
    int *alias_of;             /* per value: storage root through row-major views (itself if none) */
    kf_fgroup *groups; int n_groups;   /* topological order */
    int lib_conv;              /* the target runs conv steps (cuda with cuDNN): CONV groups
                                * admit KF_IMPL_LIB, and it is their default (0 from
                                * kf_fuse_plan; the caller sets it) */
    int gpu;                   /* the target is a GPU (0 from kf_fuse_plan; the search sets it) */
    int defer_bias;            /* a library step's bias may be left to the kernels that read its
                                * result (fuse_defer.c; 0 from kf_fuse_plan; the search sets it
                                * on GPU targets, where the pass it saves costs most) */
} kf_fplan;

typedef struct kf_fuse_opts {
    int prologues;      /* inline elementwise chains into reduction-like ops (default 1) */
    int epilogues;      /* fuse elementwise chains after gemm/conv/reductions (default 1) */
    int ew_chains;      /* fuse elementwise chains with each other (default 1) */
    int max_inline;     /* expression nodes a prologue may inline (default 64) */
} kf_fuse_opts;

void kf_fuse_opts_default(kf_fuse_opts *o);
/* Plans g; KF_E_UNSUPPORTED naming the first op with no lowering. */
int kf_fuse_plan(const kf_graph *g, const kf_fuse_opts *o, kf_fplan *plan, kf_err *err);
void kf_fuse_plan_free(kf_fplan *plan);
/* Group of the node producing value v (-1 for inputs, params, views). */
int kf_fuse_value_group(const kf_graph *g, const kf_fplan *plan, int v);
/* One line per group ("g0: addmm+relu+mul [gemm] stores v5"), for logs and tests. */
char *kf_fuse_plan_describe(const kf_graph *g, const kf_fplan *plan);

/* How one group is implemented. */
typedef enum {
    KF_IMPL_AUTO,     /* the default for the group's kind */
    KF_IMPL_KIR,      /* generated loops (the op builder, or the elementwise loop) */
    KF_IMPL_LIB,      /* GEMM: vendor gemm step + fused epilogue kernel; CONV (where
                       * plan->lib_conv): conv step + fused epilogue kernel */
    KF_IMPL_IM2COL,   /* CONV: im2col kernel + gemm step + fused epilogue kernel */
    KF_IMPL_DIRECT,   /* CONV: vectorised direct convolution; OP: row-folding column reduction,
                       * three-pass softmax, padded pooling or [N, C] batch norm */
    KF_IMPL_TILED     /* CONV on GPUs (kf_fplan.gpu): shared-memory tiled direct convolution,
                       * a CUDA template (fuse_convtile.c); block 16/32/48: output channels per
                       * block (0: automatic), tile 4 or 8: output rows per block. GEMM on
                       * GPUs: the product and the row softmax reading it in one CUDA
                       * template (fuse_gemmrow.c) */
} kf_impl;

typedef struct kf_gsched {
    kf_impl impl;
    int parallel;      /* 1: parallel outer loop (default), 0: serial (tiny work) */
    int vec;           /* 0: none; 1: omp simd on innermost loops where legal; 2: also
                        * vectorisable float32 exp/tanh/sigmoid/erf/log in them (default 2);
                        * 3 (internal): only the math, for kernels vectorised by hand */
    int chunk;         /* elementwise loop: elements per inner vector loop (0: whole rows) */
    int tile;          /* KIR loop nests: tile size of the two outer loops (0: none); direct
                        * conv: output positions per SIMD lane (0: 2, or 4 for blocks of
                        * at most 2 channels) */
    int unroll;        /* unroll factor of the innermost serial loop (0: none) */
    int block;         /* direct conv / matmul: output channels (columns) per register block */
    /* gpu = 1: the schedule is for a GPU target (set from the search's target, not part of
     * the key string). The fields above then mean: parallel is ignored (always threaded);
     * block = threads per block (0: 256); tile = how rows of reductions map onto threads
     * (0: automatic, 1: a thread per row, 2: a warp per row, 3: the block per row, see
     * kir_sched_gpu); vec = 1 allows 16-byte loads/stores in elementwise loops; chunk,
     * unroll: unused. No CPU transforms (OpenMP chunking, SIMD, vector math) are applied. */
    int gpu;
} kf_gsched;

void kf_gsched_default(kf_gsched *s);
/* The default schedule for group gi (impl chosen by shapes and dtypes). */
void kf_gsched_auto(const kf_graph *g, const kf_fplan *plan, int gi, kf_gsched *s);
/* 1 if impl can implement group gi (dtypes, shapes, op attributes). */
int kf_fuse_impl_ok(const kf_graph *g, const kf_fplan *plan, int gi, kf_impl impl);

/* Lowers g with plan and one schedule per group (NULL: defaults) into a program for target
 * ("cpu"). out is initialised here; freed on failure. */
int kf_fuse_lower(const kf_graph *g, const kf_fplan *plan, const kf_gsched *scheds,
                  const char *target, const char *agent, kf_program *out, kf_err *err);

/* ---- shared by the fuse*.c files ---- */
#include "kir/kir.h"

/* A re-indexing view captured from its op builder: output slot s is
 * out_s[i] = src[idx_s(i)], idx_s an expression (in kernel k) over variable var[s] only. */
#define KF_FGATHER_SLOTS 16
typedef struct kf_fgather {
    kir_kernel *k;
    int src;                          /* the source value */
    int n_slots;
    int var[KF_FGATHER_SLOTS];
    kir_expr *idx[KF_FGATHER_SLOTS];  /* NULL for a slot that is not written */
} kf_fgather;
/* 1 and *gt filled if node's builder is a pure gather (one loop per output slot storing a load
 * of one source value at an index computed from the loop variable alone); 0 if not; < 0 on
 * failure (out of memory). */
int kf_fuse_gather_capture(const kf_graph *g, int node, kf_fgather *gt, kf_err *err);
void kf_fuse_gather_free(kf_fgather *gt);
/* Classify one live node (kind of kf_fplan). */
kf_fnode_kind kf_fuse_classify(const kf_graph *g, int node);
/* Ops whose builders load each input element O(1) times and accept an inlined prologue, and
 * ops whose slot-0 store accepts an epilogue. */
int kf_fuse_takes_prologue(const kf_graph *g, int node);
int kf_fuse_takes_epilogue(const kf_graph *g, int node);
/* 1 if the op's builder reads its input more than once (a prologue would be recomputed). */
int kf_fuse_multipass(const kf_graph *g, int node);
/* Value read by argument i of a node (through lists), for use scans: calls fn(v, ctx). */
void kf_fuse_each_input(const kf_node *n, void (*fn)(int v, void *ctx), void *ctx);

/* Element expressions (fuse_expr.c): the element of a graph value at a flat index, computed
 * through views and the elementwise nodes marked inline, loading everything else. */
typedef struct kf_fexpr kf_fexpr;
struct kf_fexpr {
    kir_kernel *k;
    const kf_graph *g;
    const kf_fnode_kind *kind;     /* per node */
    const unsigned char *inl;      /* per node: elementwise node computed inline */
    int *local;                    /* per value: variable holding its element here, or -1 */
    kf_fgather *gathers;           /* per node, captured on first use (k == NULL: not yet) */
    unsigned char *gather_done;    /* per node */
    /* Load of a stored value (input, param or computed) at idx; NULL on failure. */
    kir_expr *(*load)(kf_fexpr *x, int value, kir_expr *idx);
    void *user;
    kf_err *err;
    int rc;                        /* first failure */
    /* Row-wise loops (two_d = 1): the group's flat index is variable root_var = row_base +
     * col, row_base (variable row_var) a multiple of W, col (variable col_var) in [0, W):
     * broadcast operands of nodes whose last dim is W are indexed as bcast(row_base) (+ col
     * when the operand's last dim is W too), so their loads stay affine in col. */
    int two_d, root_var, row_var, col_var;
    int64_t W;
};
kir_expr *kf_fexpr_elem(kf_fexpr *x, int v, kir_expr *idx);
/* Elementwise node's output element at idx (flat index into its output). Operands that are not
 * variables or constants are bound to locals in parent when parent != NULL. The result is
 * converted to the element type a load of the output's dtype yields. */
kir_expr *kf_fexpr_ew(kf_fexpr *x, int node, kir_expr *idx, kir_stmt *parent);
/* The captured gather of node (NULL if it is not one). */
kf_fgather *kf_fexpr_gather(kf_fexpr *x, int node);
/* Source value of an alias node's output. */
int kf_fuse_alias_src(const kf_node *n);
/* Nodes in an expression tree and the transcendental calls among them. */
int kf_fexpr_size(const kir_expr *e, int *calls);

/* A value whose readers finish it (fuse_defer.c). bias >= 0: stored without beta * bias
 * (broadcast as desc), loads add it. norm_x >= 0: a batch norm's output, never stored; loads
 * compute (x - mean[c]) * rstd[c] * weight[c] + bias[c], c indexed as desc broadcasts. */
typedef struct kf_fdefer {
    int bias;           /* the bias value, or -1 */
    double beta;
    kf_tdesc desc;
    int norm_x, norm_w, norm_b;     /* values; norm_x -1: not a norm */
    int norm_mean_pb, norm_rstd_pb; /* program buffers: float32 mean and rstd per channel */
} kf_fdefer;

/* The fused lowering's state (fuse_lower.c), shared with fuse_gemm.c and fuse_conv.c. */
typedef struct kf_fl {
    const kf_graph *g;
    const kf_fplan *plan;
    kf_program *p;
    int *val_buf;                 /* per storage-root value: program buffer, or -1 */
    kf_fgather *gathers;          /* per node */
    unsigned char *gather_done;   /* per node */
    kir_kernel **kernels; int n_kernels, cap_kernels;
    char **raw;                   /* per kernel: its CUDA source when it is a template (the
                                   * kernel is then NULL), else NULL */
    /* the kernel being built */
    kir_kernel *k;
    int *kbuf;                    /* program buffer -> kernel buffer, or -1 */
    int *kbuf_pbuf;               /* kernel buffer -> program buffer */
    int *local;                   /* per value: variable, or -1 */
    unsigned char *live;          /* per value, for the op builders */
    int gi;                       /* group being lowered */
    int self_read;                /* the builder read one of its anchor's outputs */
    int n_scratch;
    int zero_pbuf;                /* one float of 0.0 for the vector math, or -1 */
    int gpu;                      /* the target is a GPU: kernels get kir_sched_gpu only */
    kf_fdefer *defer;             /* per value, or NULL while nothing is deferred */
    unsigned char *inl;           /* per node: computed inline by its readers (the plan's
                                   * prologues, plus deferred epilogues, fuse_defer.c) */
    kf_err *err;
} kf_fl;

/* Starts a kernel (named k<N>) and ends it: schedule, then a launch step with every kernel
 * buffer as an argument. */
int kf_fl_kernel_begin(kf_fl *c, kf_err *err);
int kf_fl_kernel_end(kf_fl *c, const kf_gsched *s, kf_err *err);
/* A kernel given as CUDA source (a template: extern "C", one pointer parameter per buffer in
 * bufs[], in order) and its launch step with the given geometry. */
int kf_fl_kernel_raw(kf_fl *c, const char *name, const char *text, const int *bufs, int n, const int64_t grid[3],
                     const int64_t block[3], kf_err *err);
/* Kernel buffer of program buffer pb in the current kernel (added on first use). */
int kf_fl_kbuf(kf_fl *c, int pb, int writes);
/* Program buffer holding value v (through row-major views), or -1. */
int kf_fl_value_pbuf(const kf_fl *c, int v);
/* [C, 1 x spatial] of dtype: per-channel vectors broadcast over an [N, C, spatial...] tensor. */
void kf_fl_chan_desc(kf_tdesc *d, kf_dtype dt, int64_t C, int spatial);
/* A new scratch buffer of numel elements of dtype. */
int kf_fl_scratch(kf_fl *c, kf_dtype dt, int64_t numel);
/* An element-expression context over the current kernel (loads stored values). */
void kf_fl_fexpr(kf_fl *c, kf_fexpr *x);
/* Program buffer with the contiguous row-major elements of v: its own storage, or a new
 * scratch buffer filled by a gather kernel. */
int kf_fl_materialise(kf_fl *c, int v, const kf_gsched *s, kf_err *err);
/* The elementwise loop of group gi (its non-anchor, non-prologue nodes) over numel elements.
 * seed_buf >= 0: the anchor's first output is read from program buffer seed_buf (a gemm
 * result), plus beta * bias (bias value >= 0, broadcast to the output as bias_desc says, NULL:
 * its own shape) first; it is stored back when stored. */
int kf_fl_ew_loop(kf_fl *c, int gi, int seed_buf, int bias, const kf_tdesc *bias_desc, double beta,
                  const kf_gsched *s, kf_err *err);
/* In the kernel being built, at flat output index idx of group gi's anchor whose value is in
 * variable anchor_var: stores the anchor value when stored and computes the group's
 * elementwise epilogue there (appending to parent). */
int kf_fl_epilogue_at(kf_fl *c, kf_fexpr *x, int gi, kir_stmt *parent, int anchor_var, kir_expr *idx);
/* Transposed convolution as gemm + col2im (fuse_convt.c): the IM2COL implementation of
 * transposed CONV groups. */
int kf_fl_convt_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_convt(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* The library lowerings (fuse_gemm.c, fuse_conv.c). */
int kf_fl_gemm_lib(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
int kf_fl_conv_im2col(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
int kf_fl_gemm_ok(const kf_graph *g, const kf_fplan *plan, int gi);
/* A float32 matrix product node as the gemm step sees it (fuse_gemm.c): 1 and *sp filled, or 0. */
typedef struct kf_gemm_spec {
    int a, b, bias;           /* values; bias -1 when absent */
    double alpha, beta;
    int b_weight;             /* b is linear's weight [N, K] (used transposed) */
    int b_vec;                /* b is a vector [K] */
    int64_t M, N, K, batch;   /* batch of the output */
    int64_t batch_a, batch_b; /* matrices in each operand (1 or batch) */
} kf_gemm_spec;
int kf_fl_gemm_spec(const kf_graph *g, const kf_node *n, kf_gemm_spec *sp);
/* Its operands as stored program buffers: A(m, k) at a[m * lda + k] (trans_a: a[k * lda + m]),
 * B(k, n) at b[k * ldb + n] (trans_b: b[n * ldb + k]), matrix i of the batch stride_a / stride_b
 * floats on (0: shared); a batched A against a shared B is folded into M rows (batch 1).
 * Operands that are neither stored nor a stored transpose are gathered first. */
typedef struct kf_gemm_ops {
    int a_pb, b_pb, trans_a, trans_b;
    int64_t lda, ldb, stride_a, stride_b, M, batch;
} kf_gemm_ops;
int kf_fl_gemm_operands(kf_fl *c, const kf_gemm_spec *sp, const kf_gsched *s, kf_gemm_ops *o, kf_err *err);
/* A matrix product fused with the row softmax that reads it (fuse_gemmrow.c): KF_IMPL_TILED
 * of GEMM groups on GPUs. kf_fl_gemmrow also lowers that softmax group: the caller skips it
 * and gives the product no buffer (kf_fuse_lower). */
int kf_fl_gemmrow_ok(const kf_graph *g, const kf_fplan *plan, int gi);
/* The softmax group that group gi lowers with it when TILED, or -1 (also for any group that
 * is no such product). */
int kf_fl_gemmrow_absorbs(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_gemmrow(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
int kf_fl_direct_ok(const kf_graph *g, const kf_fplan *plan, int gi);
/* Reductions over a non-innermost dim (fuse_reduce.c): the DIRECT implementation of OP groups. */
int kf_fl_reduce_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_reduce_cols(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* Last-dim softmax / log-softmax (fuse_softmax.c): also the DIRECT implementation of OP groups. */
int kf_fl_softmax_ok(const kf_graph *g, const kf_fplan *plan, int gi);
/* Node n as a float32 softmax (log_form 0) or log-softmax (1) over the last non-unit dim of
 * value *in: rows x R; 1 if so, else 0. */
int kf_fl_softmax_spec(const kf_graph *g, const kf_node *n, int *in, int *log_form, int64_t *rows, int64_t *R);
int kf_fl_softmax(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
int kf_fl_conv_direct(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* A float32 convolution's attributes (aten.convolution / _convolution / convNd). */
typedef struct kf_conv_attr {
    int x, w, bias, nsd, transposed;
    int64_t groups, N, Cin, Cout, cin_g, cout_g, I[3], O[3], Kd[3], stride[3], pad[3], dil[3], opad[3];
} kf_conv_attr;
/* 1 and *a filled when node is such a convolution with consistent shapes; 0 otherwise. */
int kf_fl_conv_attr(const kf_graph *g, const kf_node *n, kf_conv_attr *a);
/* The input a->x (N x Cin x I...) padded by a->pad with `fill` into a scratch buffer, the last
 * dim stored phase by phase when a->stride of it is > 1 (position p at (p % s) * PW + p / s);
 * IP gets the stored dims, *PW the phase length. skew (for kernels that read many channels at
 * the same position): channel planes are *CS floats apart, CS a multiple of 16 and an odd
 * multiple of 64 bytes (the input is copied even without padding when its own plane is a
 * multiple of 256 bytes); without skew CS is the plane size (CS may be NULL). The input's own
 * buffer when nothing changes. Returns the program buffer or a negative error. */
int kf_fl_pad_input(kf_fl *c, const kf_conv_attr *a, double fill, int skew, const kf_gsched *s, int64_t *IP,
                    int64_t *PW, int64_t *CS, kf_err *err);
/* Training-mode batch norm of a [N, C] input (fuse_bnorm.c): DIRECT for such groups. */
int kf_fl_bnorm_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_bnorm(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* Pooling (fuse_pool.c): the DIRECT implementation of max / average pool groups. */
int kf_fl_pool_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_pool(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
int kf_fl_conv_ok(const kf_graph *g, const kf_fplan *plan, int gi);
/* The shared-memory tiled convolution for GPU targets (fuse_convtile.c). */
int kf_fl_convtile_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_convtile(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* Its output channels per block for cout channels, want the schedule's block field. */
int kf_fl_convtile_cob(int64_t cout, int want);
/* Convolution as the target's conv step + epilogue kernel (fuse_convlib.c): the LIB
 * implementation of CONV groups where plan->lib_conv. */
int kf_fl_conv_lib_ok(const kf_graph *g, const kf_fplan *plan, int gi);
int kf_fl_conv_lib(kf_fl *c, int gi, const kf_gsched *s, kf_err *err);
/* Where the gemm result of group gi goes: the anchor's storage when stored, else a stored
 * elementwise result of the same dtype and size (overwritten in place by the epilogue), else
 * a new scratch buffer. */
int kf_fl_gemm_out(kf_fl *c, int gi);
/* Deferred bias (fuse_defer.c). kf_fl_defer_bias: where plan->defer_bias, records that value v (a
 * library step's result) is stored without beta * bias (broadcast as bias_desc, NULL: the
 * bias's own shape) and returns 1, when every reader of v loads it through element
 * expressions (v is no graph output and no gemm/conv step reads it); 0 when the caller must add
 * the bias itself; < 0 on failure. kf_fl_defer_add: e (a load of v at idx) plus the deferred
 * bias of v's storage, if any. */
int kf_fl_defer_bias(kf_fl *c, int v, int bias, const kf_tdesc *bias_desc, double beta, kf_err *err);
/* For the batch norm anchoring group gi (training mode, float32, nothing fused after it), where
 * plan->defer_bias and every reader of its output loads it through element expressions:
 * gives it two scratch buffers for its float32 mean and rstd per channel and records the
 * normalisation for the readers; 1 if so (the caller then builds the norm with its output not
 * live and kf_lw.stats_out set: only the statistics), 0 if the group is lowered as usual, < 0
 * on failure. */
int kf_fl_defer_norm(kf_fl *c, int gi, kf_err *err);
kir_expr *kf_fl_defer_add(kf_fl *c, kf_fexpr *x, int v, const kir_expr *idx, kir_expr *e);
/* For library gemm group gi with an elementwise epilogue, where plan->defer_bias: when the
 * group's stored results are each read by exactly one elementwise group (and by no gemm/conv
 * step, and are no graph outputs), the gemm's raw result (cb) is kept as the anchor's value,
 * its bias deferred, and the epilogue's nodes are computed inline by that reader instead of in
 * a kernel of their own; 1 if so, 0 if not, < 0 on failure. */
int kf_fl_defer_epilogue(kf_fl *c, int gi, int cb, int bias, double beta, kf_err *err);
/* The element of v at idx when v is a deferred norm's output (computed, never loaded), else NULL. */
kir_expr *kf_fl_defer_load(kf_fl *c, kf_fexpr *x, int v, const kir_expr *idx);
/* 1 if group gi has elementwise nodes after its anchor. */
int kf_fl_has_epilogue(const kf_fl *c, int gi);

#endif
