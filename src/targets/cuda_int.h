/* cuda_int.h: pieces of the cuda target shared by its files. kforge never includes CUDA's own
 * headers: the few driver, NVRTC and cuBLAS types and entry points it uses are declared here
 * and resolved with dlopen/dlsym at run time (cuda_api.c), so kforge builds and runs where
 * CUDA is absent and the target then says why it is unavailable.
 *
 * Files: cuda_api.c (loading the libraries), cuda_probe.c (short-lived child processes: the
 * parent never initialises CUDA, since a CUDA context does not survive fork), cuda_build.c
 * (NVRTC compile and cache, parent side), cuda_runtime.c (open/bind/upload/download/close,
 * worker side), cuda_run.c (run, time, CUDA graph), cuda_gemm.c (gemm steps: cuBLASLt
 * algorithms measured at bind, cuBLAS as fallback), cuda_dnn.c (conv steps), cuda_target.c (the ops table),
 * cuda_ipc.c + cuda_compare.c (the device data path: IPC memory of the oracle, checks).
 * Internal to src/targets. */
#ifndef KF_CUDA_INT_H
#define KF_CUDA_INT_H

#include <stddef.h>
#include <stdint.h>
#include "core/kf_err.h"
#include "core/kf_str.h"
#include "ir/kf_program.h"
#include "targets/kf_target.h"

/* ---- the driver API, as far as kforge uses it ---- */
typedef int CUresult;          /* 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef uint64_t CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

#define KF_CU_ATTR_MAX_THREADS_PER_BLOCK 1
#define KF_CU_ATTR_MULTIPROCESSOR_COUNT 16
#define KF_CU_ATTR_L2_CACHE_SIZE 38
#define KF_CU_ATTR_CC_MAJOR 75
#define KF_CU_ATTR_CC_MINOR 76
#define KF_CU_ATTR_COOPERATIVE_LAUNCH 95
#define KF_CU_ATTR_MAX_SHARED_OPTIN 97
#define KF_CU_FUNC_ATTR_MAX_DYNAMIC_SHARED 8
#define KF_CU_STREAM_NON_BLOCKING 1
#define KF_CU_CAPTURE_MODE_THREAD_LOCAL 1
#define KF_CU_ERROR_NOT_FOUND 500
#define KF_CU_ERROR_OUT_OF_MEMORY 2

typedef struct kf_cu_api {
    void *lib;
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*ModuleLoadData)(CUmodule *, const void *);
    CUresult (*ModuleUnload)(CUmodule);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*ModuleGetGlobal)(CUdeviceptr *, size_t *, CUmodule, const char *);
    CUresult (*FuncSetAttribute)(CUfunction, int, int);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
    CUresult (*MemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
    CUresult (*MemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
    CUresult (*MemsetD32Async)(CUdeviceptr, unsigned int, size_t, CUstream);
    CUresult (*StreamCreate)(CUstream *, unsigned);
    CUresult (*StreamDestroy)(CUstream);
    CUresult (*StreamSynchronize)(CUstream);
    CUresult (*EventCreate)(CUevent *, unsigned);
    CUresult (*EventRecord)(CUevent, CUstream);
    CUresult (*EventSynchronize)(CUevent);
    CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
    CUresult (*EventDestroy)(CUevent);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void **, void **);
    CUresult (*LaunchCooperativeKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                        unsigned, unsigned, CUstream, void **);
    CUresult (*OccupancyMaxActiveBlocksPerMultiprocessor)(int *, CUfunction, int, size_t);
    CUresult (*StreamBeginCapture)(CUstream, int);
    CUresult (*StreamEndCapture)(CUstream, CUgraph *);
    CUresult (*GraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
    CUresult (*GraphLaunch)(CUgraphExec, CUstream);
    CUresult (*GraphExecDestroy)(CUgraphExec);
    CUresult (*GraphDestroy)(CUgraph);
    CUresult (*GetErrorName)(CUresult, const char **);
    CUresult (*GetErrorString)(CUresult, const char **);
} kf_cu_api;

/* ---- NVRTC ---- */
typedef struct _nvrtcProgram *nvrtcProgram;
typedef struct kf_nvrtc_api {
    void *lib;
    int (*Version)(int *, int *);
    int (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                         const char *const *);
    int (*CompileProgram)(nvrtcProgram, int, const char *const *);
    int (*GetProgramLogSize)(nvrtcProgram, size_t *);
    int (*GetProgramLog)(nvrtcProgram, char *);
    int (*GetCUBINSize)(nvrtcProgram, size_t *);
    int (*GetCUBIN)(nvrtcProgram, char *);
    int (*DestroyProgram)(nvrtcProgram *);
    const char *(*GetErrorString)(int);
} kf_nvrtc_api;

/* ---- cuBLAS ---- */
typedef struct cublasContext *cublasHandle_t;
#define KF_CUBLAS_OP_N 0
#define KF_CUBLAS_OP_T 1
#define KF_CUBLAS_DEFAULT_MATH 0
#define KF_CUBLAS_PEDANTIC_MATH 2
#define KF_CUBLAS_TF32_TENSOR_OP_MATH 3
typedef struct kf_cublas_api {
    void *lib;
    int (*Create)(cublasHandle_t *);
    int (*Destroy)(cublasHandle_t);
    int (*SetStream)(cublasHandle_t, CUstream);
    int (*SetMathMode)(cublasHandle_t, int);
    int (*SgemmStridedBatched)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int,
                               long long, const float *, int, long long, const float *, float *, int,
                               long long, int);
} kf_cublas_api;

/* ---- cuBLASLt (cublasLt.h of CUDA 12/13) ---- */
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct kf_lt_desc_st *kf_lt_desc;       /* cublasLtMatmulDesc_t */
typedef struct kf_lt_layout_st *kf_lt_layout;   /* cublasLtMatrixLayout_t */
typedef struct kf_lt_pref_st *kf_lt_pref;       /* cublasLtMatmulPreference_t */
typedef struct kf_lt_algo { uint64_t data[8]; } kf_lt_algo;  /* cublasLtMatmulAlgo_t */
typedef struct kf_lt_heur {                     /* cublasLtMatmulHeuristicResult_t */
    kf_lt_algo algo;
    size_t workspace;
    int state;
    float waves;
    int reserved[4];
} kf_lt_heur;
#define KF_CUDA_R_32F 0
#define KF_CUBLAS_COMPUTE_32F 68
#define KF_CUBLAS_COMPUTE_32F_FAST_TF32 77
#define KF_LT_DESC_TRANSA 3
#define KF_LT_DESC_TRANSB 4
#define KF_LT_LAYOUT_BATCH_COUNT 5
#define KF_LT_LAYOUT_STRIDED_BATCH_OFFSET 6
#define KF_LT_PREF_MAX_WORKSPACE_BYTES 1
#define KF_LT_PREF_MIN_ALIGNMENT_A 5
#define KF_LT_PREF_MIN_ALIGNMENT_B 6
#define KF_LT_PREF_MIN_ALIGNMENT_C 7
#define KF_LT_PREF_MIN_ALIGNMENT_D 8
#define KF_LT_REDUCTION_INPLACE 1
#define KF_LT_CONFIG_REDUCTION_SCHEME 3
#define KF_LT_CAP_NUMERICAL_IMPL_FLAGS 15
#define KF_LT_IMPL_FMA 0x01ull
#define KF_LT_IMPL_OP_TYPE_MASK 0xffull
#define KF_LT_IMPL_ACC_32F (0x02ull << 8)
#define KF_LT_IMPL_ACC_MASK (0xffull << 8)
#define KF_LT_IMPL_INPUT_32F (0x08ull << 16)
#define KF_LT_IMPL_INPUT_MASK (0xffull << 16)
typedef struct kf_cublaslt_api {
    void *lib;
    int (*Create)(cublasLtHandle_t *);
    int (*Destroy)(cublasLtHandle_t);
    int (*DescCreate)(kf_lt_desc *, int compute, int scale);
    int (*DescDestroy)(kf_lt_desc);
    int (*DescSetAttribute)(kf_lt_desc, int, const void *, size_t);
    int (*LayoutCreate)(kf_lt_layout *, int type, uint64_t rows, uint64_t cols, int64_t ld);
    int (*LayoutDestroy)(kf_lt_layout);
    int (*LayoutSetAttribute)(kf_lt_layout, int, const void *, size_t);
    int (*PrefCreate)(kf_lt_pref *);
    int (*PrefDestroy)(kf_lt_pref);
    int (*PrefSetAttribute)(kf_lt_pref, int, const void *, size_t);
    int (*GetHeuristic)(cublasLtHandle_t, kf_lt_desc, kf_lt_layout, kf_lt_layout, kf_lt_layout, kf_lt_layout,
                        kf_lt_pref, int, kf_lt_heur *, int *);
    int (*CapGetAttribute)(const kf_lt_algo *, int, void *, size_t, size_t *);
    int (*ConfigGetAttribute)(const kf_lt_algo *, int, void *, size_t, size_t *);
    int (*Matmul)(cublasLtHandle_t, kf_lt_desc, const void *, const void *, kf_lt_layout, const void *, kf_lt_layout,
                  const void *, const void *, kf_lt_layout, void *, kf_lt_layout, const kf_lt_algo *, void *, size_t,
                  CUstream);
} kf_cublaslt_api;

/* One gemm step's state (cuda_gemm.c), chosen at bind: the cuBLASLt algorithm measured
 * fastest, or the plain cuBLAS call when that was fastest or Lt is not there. */
typedef struct kf_cu_gemm {
    kf_lt_desc desc;
    kf_lt_layout la, lb, lc;  /* Lt's A, B, C=D in column-major terms (our B, A, C) */
    kf_lt_algo algo;
    size_t ws;                /* workspace the chosen algorithm needs */
    float alpha, beta;
    int use_lt;               /* 1: cublasLtMatmul with algo; 0: cublasSgemmStridedBatched */
    int ready;                /* chosen */
    int same_as;              /* the earlier step of the same shape whose choice it took, or -1 */
    double ms;                /* the chosen one's measured time at bind */
} kf_cu_gemm;

/* ---- cuDNN (legacy API, cudnn_ops.h / cudnn_cnn.h of cuDNN 9) ---- */
typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
#define KF_CUDNN_DATA_FLOAT 0
#define KF_CUDNN_TENSOR_NCHW 0
#define KF_CUDNN_CROSS_CORRELATION 1
#define KF_CUDNN_DEFAULT_MATH 0
#define KF_CUDNN_TENSOR_OP_MATH 1
#define KF_CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION 2
#define KF_CUDNN_FMA_MATH 3
/* cudnnConvolutionFwdAlgoPerf_t and cudnnConvolutionBwdDataAlgoPerf_t (same layout) */
typedef struct kf_cudnn_perf {
    int algo, status;
    float time;
    size_t memory;
    int determinism, math_type;
    int reserved[3];
} kf_cudnn_perf;
typedef struct kf_cudnn_api {
    void *lib;
    int (*Create)(cudnnHandle_t *);
    int (*Destroy)(cudnnHandle_t);
    int (*SetStream)(cudnnHandle_t, CUstream);
    const char *(*GetErrorString)(int);
    int (*CreateTensorDescriptor)(cudnnTensorDescriptor_t *);
    int (*SetTensorNdDescriptor)(cudnnTensorDescriptor_t, int, int, const int *, const int *);
    int (*DestroyTensorDescriptor)(cudnnTensorDescriptor_t);
    int (*CreateFilterDescriptor)(cudnnFilterDescriptor_t *);
    int (*SetFilterNdDescriptor)(cudnnFilterDescriptor_t, int, int, int, const int *);
    int (*DestroyFilterDescriptor)(cudnnFilterDescriptor_t);
    int (*CreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t *);
    int (*SetConvolutionNdDescriptor)(cudnnConvolutionDescriptor_t, int, const int *, const int *, const int *,
                                      int, int);
    int (*SetConvolutionGroupCount)(cudnnConvolutionDescriptor_t, int);
    int (*SetConvolutionMathType)(cudnnConvolutionDescriptor_t, int);
    int (*DestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t);
    int (*GetFwdAlgo)(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t,
                      cudnnTensorDescriptor_t, int, int *, kf_cudnn_perf *);
    int (*FindFwdAlgoEx)(cudnnHandle_t, cudnnTensorDescriptor_t, const void *, cudnnFilterDescriptor_t, const void *,
                         cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *, int, int *, kf_cudnn_perf *,
                         void *, size_t);
    int (*GetFwdWorkspaceSize)(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                               cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, size_t *);
    int (*ConvolutionForward)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *,
                              cudnnFilterDescriptor_t, const void *, cudnnConvolutionDescriptor_t, int, void *, size_t,
                              const void *, cudnnTensorDescriptor_t, void *);
    int (*GetBwdDataAlgo)(cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,
                          cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, int *, kf_cudnn_perf *);
    int (*FindBwdDataAlgoEx)(cudnnHandle_t, cudnnFilterDescriptor_t, const void *, cudnnTensorDescriptor_t,
                             const void *, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *, int, int *,
                             kf_cudnn_perf *, void *, size_t);
    int (*GetBwdDataWorkspaceSize)(cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,
                                   cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, size_t *);
    int (*ConvolutionBackwardData)(cudnnHandle_t, const void *, cudnnFilterDescriptor_t, const void *,
                                   cudnnTensorDescriptor_t, const void *, cudnnConvolutionDescriptor_t, int, void *,
                                   size_t, const void *, cudnnTensorDescriptor_t, void *);
    int (*AddTensor)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *, const void *,
                     cudnnTensorDescriptor_t, void *);
} kf_cudnn_api;

/* One conv step's cuDNN state (cuda_dnn.c), prepared at bind. */
typedef struct kf_cu_conv {
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int algo;
    size_t ws_bytes;
    int ready;
} kf_cu_conv;

/* cuda_api.c. Each loads its library (names tried in order: $KFORGE_LIBCUDA / $KFORGE_NVRTC /
 * $KFORGE_CUBLAS when set, then the plain and versioned sonames, then /usr/local/cuda's
 * lib64) and resolves every entry point; KF_E_UNAVAILABLE says which library or symbol is
 * missing. */
int kf_cu_load(kf_cu_api *a, kf_err *err);
void kf_cu_unload(kf_cu_api *a);
int kf_nvrtc_load(kf_nvrtc_api *a, kf_err *err);
void kf_nvrtc_unload(kf_nvrtc_api *a);
int kf_cublas_load(kf_cublas_api *a, kf_err *err);
void kf_cublas_unload(kf_cublas_api *a);
/* cuBLASLt: $KFORGE_CUBLASLT, else libcublasLt.so(.13/.12/.11), else /usr/local/cuda's. */
int kf_cublaslt_load(kf_cublaslt_api *a, kf_err *err);
void kf_cublaslt_unload(kf_cublaslt_api *a);
/* cuDNN: $KFORGE_CUDNN, else libcudnn.so.9 / libcudnn.so (cuda_dnn.c). */
int kf_cudnn_load(kf_cudnn_api *a, kf_err *err);
void kf_cudnn_unload(kf_cudnn_api *a);
/* "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)" into buf. */
const char *kf_cu_errstr(const kf_cu_api *a, CUresult r, char *buf, size_t n);
/* kf_fail with what failed and the driver's error; KF_E_NOMEM for out-of-memory, else code. */
int kf_cu_fail(const kf_cu_api *a, kf_err *err, int code, CUresult r, const char *what);

/* ---- cuda_probe.c ---- */
typedef struct kf_cu_device {
    int ordinal;               /* $KFORGE_CUDA_DEVICE, default 0 */
    int cc_major, cc_minor;
    int sms, l2_bytes, coop;
    int driver_version;
    char name[128];
} kf_cu_device;

/* Runs fn(ctx, fd) in a forked child (which never returns to the caller's code) that writes
 * its answer to fd; collects at most max bytes of it (NUL-terminated, caller frees) within
 * timeout_s, then reaps the child. KF_E_TIMEOUT if it ran over (it is killed), KF_E_IO if
 * it died by a signal (the message names it). */
int kf_cu_in_child(void (*fn)(void *ctx, int fd), void *ctx, double timeout_s, size_t max,
                   char **out, int *exit_code, kf_err *err);
/* In the calling process: load the driver, cuInit, pick the device, read its properties.
 * Only ever called in a child or in the worker. */
int kf_cu_query(kf_cu_api *a, kf_cu_device *d, CUdevice *dev, kf_err *err);
/* Parent side: kf_cu_query in a child; KF_E_UNAVAILABLE with the reason when no device. */
int kf_cu_probe(kf_cu_device *d, kf_err *err);
/* The device's L2 size in bytes through a probe child; 0 when unknown (kf_target_ops.cache_bytes). */
long long kf_cuda_cache_bytes(void);
int kf_cu_device_ordinal(void);
int kf_cuda_available(kf_err *err);

/* ---- cuda_build.c ---- */
int kf_cuda_build(const kf_program *p, const kf_build_opts *o, kf_build *b, kf_err *err);

/* ---- the worker side (cuda_runtime.c, cuda_run.c) ---- */
typedef union kf_cu_val { int32_t i32; int64_t i64; float f32; CUdeviceptr ptr; } kf_cu_val;

typedef struct kf_cu_launch {
    CUfunction fn;
    void **params;           /* one pointer per argument, into vals */
    kf_cu_val *vals;
    unsigned grid, block, shared;
    int coop;                /* cooperative launch (the kernel has grid barriers) */
} kf_cu_launch;

typedef struct kf_cu_rt {
    kf_cu_api cu;
    kf_cublas_api blas;
    cublasHandle_t blas_h;
    int have_blas;
    const kf_program *p;     /* borrowed */
    CUdevice dev;
    kf_cu_device info;
    CUcontext ctx;
    int ctx_retained;
    CUmodule mod;
    CUstream stream;
    kf_cu_launch *launch;    /* per step */
    CUdeviceptr *mem;        /* per buffer: the device mirror of the whole slot, guards included */
    const kf_slot *slots;    /* borrowed from bind */
    CUfunction fill_u64;     /* kf_fill_u64 helper kernel of every module */
    CUdeviceptr flush;       /* L2 flush buffer */
    size_t flush_bytes;
    CUdeviceptr tmp;         /* staging for copies within one buffer */
    size_t tmp_bytes;
    kf_cublaslt_api lt;      /* loaded with cuBLAS unless $KFORGE_CUDA_GEMM=blas */
    cublasLtHandle_t lt_h;
    int have_lt;
    kf_cu_gemm *gemm;        /* per step (gemm steps) */
    CUdeviceptr gemm_ws;     /* cuBLASLt workspace shared by the gemm steps */
    size_t gemm_ws_bytes;
    kf_cudnn_api dnn;        /* loaded when the plan has conv steps */
    cudnnHandle_t dnn_h;
    int have_dnn;
    kf_cu_conv *conv;        /* per step (conv steps) */
    CUdeviceptr ws;          /* cuDNN workspace shared by the conv steps */
    size_t ws_bytes;
    int allow_tf32;
    int use_graph;           /* time() captures the plan into a CUDA graph (2: must) */
    int profiled;            /* $KFORGE_CUDA_PROFILE: this binding's profile is written */
    int dead;                /* a sticky device error happened: every later call fails */
    char dead_msg[512];
    struct kf_cu_dev *devd;  /* the device data path's state (cuda_ipc.c), NULL until used */
    char *dev_cache;         /* where the device checks' CUBIN is cached */
} kf_cu_rt;

int kf_cuda_open(const kf_program *p, const kf_build *b, const kf_build_opts *o, void **rt, kf_err *err);
int kf_cuda_bind(void *rt, const kf_slot *slots, int n, kf_err *err);
int kf_cuda_upload(void *rt, int buf, kf_err *err);
int kf_cuda_download(void *rt, int buf, kf_err *err);
int kf_cuda_run(void *rt, kf_err *err);
/* One step of the plan onto the stream (cuda_run.c); kf_cuda_enqueue runs them all. */
int kf_cuda_enqueue_step(kf_cu_rt *rt, int si, kf_err *err);
/* Development profile (cuda_profile.c): times every step of the plan on its own (CUDA events
 * around each step, L2 flushed before each pass, median of several passes) and appends a
 * table to the file named by path, with the whole plan's timed runs ms[0..n) for scale. */
int kf_cuda_profile(kf_cu_rt *rt, const char *path, const double *ms, int n, kf_err *err);
int kf_cuda_time(void *rt, int n, void (*flush)(void *ctx), void *flush_ctx, double *ms, kf_err *err);
void kf_cuda_close(void *rt);
/* cuda_ipc.c / cuda_compare.c: the device data path (kf_devdata.h). */
extern const kf_dev_ops kf_cuda_dev_ops;
void kf_cuda_dev_setup(kf_cu_rt *rt, const kf_build *b, const kf_build_opts *o);
void kf_cuda_dev_free(kf_cu_rt *rt);
/* Enqueues the whole plan on the runtime's stream (no synchronisation). */
int kf_cuda_enqueue(kf_cu_rt *rt, kf_err *err);
/* cuda_gemm.c: gemm steps. open_gemm (at open, when the plan has gemm steps) loads cuBLAS
 * (the fallback and a candidate) and cuBLASLt; prepare_gemms (at bind) measures each distinct
 * gemm shape's candidates once and keeps the fastest; gemm enqueues one step with the choice
 * (never re-tuned by a run); free_gemm releases it all. */
int kf_cuda_open_gemm(kf_cu_rt *rt, kf_err *err);
int kf_cuda_prepare_gemms(kf_cu_rt *rt, kf_err *err);
int kf_cuda_gemm(kf_cu_rt *rt, int si, kf_err *err);
void kf_cuda_free_gemm(kf_cu_rt *rt);
/* cuda_dnn.c: conv steps. open_dnn (at open, when the plan has conv steps) loads cuDNN and
 * creates the handle on the plan's stream; prepare_convs (at bind, once buffers exist) sets up
 * each step's descriptors, picks its algorithm and allocates the shared workspace; conv
 * enqueues one step; free_dnn releases it all. */
int kf_cuda_open_dnn(kf_cu_rt *rt, kf_err *err);
int kf_cuda_prepare_convs(kf_cu_rt *rt, kf_err *err);
int kf_cuda_conv(kf_cu_rt *rt, int si, kf_err *err);
void kf_cuda_free_dnn(kf_cu_rt *rt);
/* Records a sticky failure: after an illegal address the context is unusable. */
int kf_cuda_check(kf_cu_rt *rt, CUresult r, const char *what, kf_err *err);

/* The helper kernel appended to every module (cuda_build.c). */
#define KF_CU_FILL_KERNEL "kf_fill_u64"

#endif
