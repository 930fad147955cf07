/* kf_program.h: the kernel program, what every agent produces for one problem and one target:
 * kernel sources plus a launch plan (buffers and steps). Its text form is a folder with
 * plan.json beside the kernel source files; docs/program-format.md is the spec.
 *
 * plan.json:
 * {"format":"kforge-program/1", "target":"cpu", "agent":"naive",
 *  "sources":["kernels.c"],
 *  "kernels":[{"name":"k0","params":[{"name":"x","kind":"ptr"},{"name":"n","kind":"i64"}]}],
 *  "buffers":[{"name":"x","role":"input","index":0,"dtype":"f32","shape":[8,64]},
 *             {"name":"w","role":"param","param":"p0","dtype":"f32","shape":[64,64]},
 *             {"name":"y","role":"output","index":0,"dtype":"f32","shape":[8,64]},
 *             {"name":"t","role":"scratch","dtype":"f32","shape":[512]}],
 *  "steps":[{"op":"launch","kernel":"k0","args":["x",{"i64":512}],
 *            "grid":[4,1,1],"block":[128,1,1],"shared_bytes":0},
 *           {"op":"gemm","a":"x","b":"w","c":"y","m":8,"n":64,"k":64,
 *            "trans_a":false,"trans_b":true,"lda":64,"ldb":64,"ldc":64,
 *            "alpha":1.0,"beta":0.0,"batch":1,"stride_a":0,"stride_b":0,"stride_c":0},
 *           {"op":"copy","src":"x","dst":"t","bytes":2048,"src_offset":0,"dst_offset":0},
 *           {"op":"fill","dst":"t","value":0.0},
 *           {"op":"conv","x":"x","w":"w4","y":"y4","n":8,"c_in":3,"c_out":16,"in":[32,32],
 *            "kernel":[3,3],"stride":[1,1],"padding":[1,1],"dilation":[1,1],"groups":1}]}
 * grid/block/shared_bytes are for GPU targets; the cpu target calls the function once.
 * Buffers may not alias; views are expressed by passing the same buffer. */
#ifndef KF_PROGRAM_H
#define KF_PROGRAM_H

#include "core/kf_dtype.h"
#include "core/kf_err.h"
#include "ir/kf_graph.h"

typedef enum { KF_BUF_INPUT, KF_BUF_PARAM, KF_BUF_OUTPUT, KF_BUF_SCRATCH } kf_buf_role;

typedef struct kf_pbuf {
    char *name;
    kf_buf_role role;
    int index;        /* input / output position; -1 otherwise */
    char *param;      /* graph param value name for KF_BUF_PARAM */
    kf_tdesc desc;    /* dtype + shape, contiguous */
    size_t nbytes;    /* numel * dtype size */
} kf_pbuf;

typedef enum { KF_KP_PTR, KF_KP_I32, KF_KP_I64, KF_KP_F32 } kf_kparam_kind;

typedef struct kf_kparam { char *name; kf_kparam_kind kind; } kf_kparam;

typedef struct kf_pkernel {
    char *name;
    kf_kparam *params; int n_params;
} kf_pkernel;

typedef struct kf_karg {
    kf_kparam_kind kind;
    int buf;          /* buffer index for KF_KP_PTR */
    int64_t i;        /* i32 / i64 */
    double f;         /* f32 */
} kf_karg;

typedef enum { KF_STEP_LAUNCH, KF_STEP_GEMM, KF_STEP_COPY, KF_STEP_FILL, KF_STEP_CONV } kf_step_kind;

/* A conv step: f32 convolution of x [n, c_in, in...] with w into y [n, c_out, out...] (NCHW,
 * 1 to 3 spatial dims, each tensor contiguous from its element offset), plus bias [c_out]
 * when bias >= 0. Forward: w is [c_out, c_in/groups, kernel...]; transposed (the gradient of
 * a forward convolution with respect to its input, torch's conv_transpose): w is
 * [c_in, c_out/groups, kernel...]. out[] follows from the rest (kf_conv_step_out). */
typedef struct kf_conv_step {
    int x, w, y, bias;                          /* buffers; bias -1: none */
    int64_t x_offset, w_offset, y_offset, bias_offset; /* in elements */
    int nsd;                                    /* spatial dims, 1..3 */
    int transposed;
    int64_t n, c_in, c_out, groups;
    int64_t in[3], kernel[3], stride[3], padding[3], dilation[3], output_padding[3];
} kf_conv_step;
/* Output size of spatial dim j: forward (in + 2p - d(k-1) - 1) / s + 1 (floor; < 1 when the
 * kernel does not fit), transposed (in-1)s - 2p + d(k-1) + output_padding + 1. */
int64_t kf_conv_step_out(const kf_conv_step *c, int j);

typedef struct kf_step {
    kf_step_kind kind;
    /* launch */
    int kernel; kf_karg *args; int n_args;
    int64_t grid[3], block[3], shared_bytes;
    /* gemm: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], row-major, f32 */
    int a, b, c;
    int64_t m, n, k, lda, ldb, ldc, batch, stride_a, stride_b, stride_c; /* strides in elements */
    int trans_a, trans_b;
    double alpha, beta;
    /* copy / fill */
    int src, dst;
    int64_t src_offset, dst_offset, bytes; /* bytes; copy */
    double value;                          /* fill (every element of dst, in dst's dtype) */
    kf_conv_step conv;                     /* conv */
} kf_step;

typedef struct kf_source { char *file; char *text; } kf_source;

typedef struct kf_program {
    char *target;     /* "cpu", "cuda", "opencl", "metal" */
    char *agent;      /* who made it, for the record */
    kf_source *sources; int n_sources;
    kf_pkernel *kernels; int n_kernels;
    kf_pbuf *bufs; int n_bufs;
    kf_step *steps; int n_steps;
} kf_program;

int kf_program_load(const char *dir, kf_program *p, kf_err *err);          /* plan.json + sources */
/* dir may be NULL: sources named by file then keep text NULL (inline {"file","text"} sources
 * keep their text). Neither load nor from_json validates; call kf_program_validate. */
int kf_program_from_json(const char *plan_json, const char *dir, kf_program *p, kf_err *err);
int kf_program_save(const kf_program *p, const char *dir, kf_err *err);    /* creates dir */
char *kf_program_to_json(const kf_program *p);                             /* plan.json text */
/* Checks names unique, references resolve, arg counts and kinds match each kernel's params,
 * gemm/copy/conv extents inside their buffers, and, when g is given, that inputs/outputs/params
 * cover the graph's with the same dtypes and element counts. */
int kf_program_validate(const kf_program *p, const kf_graph *g, kf_err *err);
/* The conv step s (step number si) alone: sizes, extents, dtypes, y writable (targets call it
 * before running a plan). */
int kf_program_check_conv(const kf_program *p, const kf_step *s, int si, kf_err *err);
int kf_program_find_buf(const kf_program *p, const char *name);
int kf_program_find_kernel(const kf_program *p, const char *name);
void kf_program_free(kf_program *p);

/* Building programs in memory (agents). Return the new index. Strings are copied. */
int kf_program_add_buf(kf_program *p, const char *name, kf_buf_role role, int index,
                       const char *param, const kf_tdesc *desc);
int kf_program_add_kernel(kf_program *p, const char *name, const kf_kparam *params, int n);
int kf_program_add_source(kf_program *p, const char *file, const char *text);
/* zeroed, grid/block = 1; a gemm step also gets alpha = 1 and batch = 1; a conv step gets no
 * bias (-1), groups 1, and stride and dilation 1 in every dim. */
kf_step *kf_program_add_step(kf_program *p, kf_step_kind kind);
void kf_step_set_args(kf_step *s, const kf_karg *args, int n);

/* Names as plan.json writes them: "input"/"param"/"output"/"scratch", "launch"/"gemm"/"copy"/
 * "fill"/"conv", "ptr"/"i32"/"i64"/"f32"; "?" for a value out of range. */
const char *kf_buf_role_name(kf_buf_role r);
const char *kf_step_kind_name(kf_step_kind k);
const char *kf_kparam_kind_name(kf_kparam_kind k);
/* 1 if file is a safe source path: relative, not empty, no ".." component, no "//". */
int kf_program_source_name_ok(const char *file);

#endif
