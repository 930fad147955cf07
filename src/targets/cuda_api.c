/* cuda_api.c: loading the CUDA driver (libcuda), NVRTC, cuBLAS, cuBLASLt and cuDNN with dlopen and resolving
 * the entry points kforge uses (versioned names such as cuMemAlloc_v2 where the driver API
 * renamed them), plus the driver's error names for messages. Nothing here initialises CUDA. */
#include "targets/cuda_int.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlopen the first name that loads; env (if set) is tried alone. why gets the last error. */
static void *kf_cu_dlopen(const char *env, const char *const *names, char *why, size_t n) {
    const char *e = env ? getenv(env) : NULL;
    if (e && *e) {
        void *h = dlopen(e, RTLD_NOW | RTLD_LOCAL);
        if (!h) snprintf(why, n, "%s=%s: %s", env, e, dlerror());
        return h;
    }
    snprintf(why, n, "not found");
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (i == 0) snprintf(why, n, "%s", dlerror());
    }
    return NULL;
}

/* Resolves the first of the '|'-separated names that exists into *fn. */
static int kf_cu_sym(void *lib, const char *names, void *fn, char *missing, size_t n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *save = NULL, *s = strtok_r(buf, "|", &save); s; s = strtok_r(NULL, "|", &save)) {
        void *f = dlsym(lib, s);
        if (f) {
            memcpy(fn, &f, sizeof f); /* object pointer -> function pointer, as POSIX allows */
            return 1;
        }
    }
    if (!missing[0]) snprintf(missing, n, "%s", names);
    return 0;
}

#define SYM(lib, field, names) kf_cu_sym(lib, names, &(field), missing, sizeof missing)

static const char *const kf_cu_driver_names[] = {"libcuda.so.1", "libcuda.so", NULL};
static const char *const kf_nvrtc_names[] = {
    "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
    "/usr/local/cuda/lib64/libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so.13",
    "/usr/local/cuda/lib64/libnvrtc.so.12", NULL,
};
static const char *const kf_cublas_names[] = {
    "libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
    "/usr/local/cuda/lib64/libcublas.so", "/usr/local/cuda/lib64/libcublas.so.13",
    "/usr/local/cuda/lib64/libcublas.so.12", NULL,
};

int kf_cu_load(kf_cu_api *a, kf_err *err) {
    memset(a, 0, sizeof *a);
    char why[512], missing[128] = "";
    a->lib = kf_cu_dlopen("KFORGE_LIBCUDA", kf_cu_driver_names, why, sizeof why);
    if (!a->lib)
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: cannot load the CUDA driver library "
                       "libcuda.so.1 (%s); is an NVIDIA driver installed?", why);
    void *l = a->lib;
    SYM(l, a->Init, "cuInit");
    SYM(l, a->DriverGetVersion, "cuDriverGetVersion");
    SYM(l, a->DeviceGetCount, "cuDeviceGetCount");
    SYM(l, a->DeviceGet, "cuDeviceGet");
    SYM(l, a->DeviceGetName, "cuDeviceGetName");
    SYM(l, a->DeviceGetAttribute, "cuDeviceGetAttribute");
    SYM(l, a->DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    SYM(l, a->DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2|cuDevicePrimaryCtxRelease");
    SYM(l, a->CtxSetCurrent, "cuCtxSetCurrent");
    SYM(l, a->ModuleLoadData, "cuModuleLoadData");
    SYM(l, a->ModuleUnload, "cuModuleUnload");
    SYM(l, a->ModuleGetFunction, "cuModuleGetFunction");
    SYM(l, a->ModuleGetGlobal, "cuModuleGetGlobal_v2");
    SYM(l, a->FuncSetAttribute, "cuFuncSetAttribute");
    SYM(l, a->MemAlloc, "cuMemAlloc_v2");
    SYM(l, a->MemFree, "cuMemFree_v2");
    SYM(l, a->MemcpyHtoD, "cuMemcpyHtoD_v2");
    SYM(l, a->MemcpyDtoH, "cuMemcpyDtoH_v2");
    SYM(l, a->MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    SYM(l, a->MemsetD8Async, "cuMemsetD8Async");
    SYM(l, a->MemsetD16Async, "cuMemsetD16Async");
    SYM(l, a->MemsetD32Async, "cuMemsetD32Async");
    SYM(l, a->StreamCreate, "cuStreamCreate");
    SYM(l, a->StreamDestroy, "cuStreamDestroy_v2");
    SYM(l, a->StreamSynchronize, "cuStreamSynchronize");
    SYM(l, a->EventCreate, "cuEventCreate");
    SYM(l, a->EventRecord, "cuEventRecord");
    SYM(l, a->EventSynchronize, "cuEventSynchronize");
    SYM(l, a->EventElapsedTime, "cuEventElapsedTime_v2|cuEventElapsedTime");
    SYM(l, a->EventDestroy, "cuEventDestroy_v2");
    SYM(l, a->LaunchKernel, "cuLaunchKernel");
    SYM(l, a->LaunchCooperativeKernel, "cuLaunchCooperativeKernel");
    SYM(l, a->OccupancyMaxActiveBlocksPerMultiprocessor, "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    SYM(l, a->StreamBeginCapture, "cuStreamBeginCapture_v2");
    SYM(l, a->StreamEndCapture, "cuStreamEndCapture");
    SYM(l, a->GraphInstantiate, "cuGraphInstantiateWithFlags");
    SYM(l, a->GraphLaunch, "cuGraphLaunch");
    SYM(l, a->GraphExecDestroy, "cuGraphExecDestroy");
    SYM(l, a->GraphDestroy, "cuGraphDestroy");
    SYM(l, a->GetErrorName, "cuGetErrorName");
    SYM(l, a->GetErrorString, "cuGetErrorString");
    if (missing[0]) {
        kf_cu_unload(a);
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: the CUDA driver lacks %s (driver too old?)",
                       missing);
    }
    return 0;
}

void kf_cu_unload(kf_cu_api *a) {
    if (a->lib) dlclose(a->lib);
    memset(a, 0, sizeof *a);
}

int kf_nvrtc_load(kf_nvrtc_api *a, kf_err *err) {
    memset(a, 0, sizeof *a);
    char why[512], missing[128] = "";
    a->lib = kf_cu_dlopen("KFORGE_NVRTC", kf_nvrtc_names, why, sizeof why);
    if (!a->lib)
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: cannot load NVRTC, CUDA's run-time "
                       "compiler (libnvrtc.so: %s); add its folder to LD_LIBRARY_PATH or set KFORGE_NVRTC", why);
    void *l = a->lib;
    SYM(l, a->Version, "nvrtcVersion");
    SYM(l, a->CreateProgram, "nvrtcCreateProgram");
    SYM(l, a->CompileProgram, "nvrtcCompileProgram");
    SYM(l, a->GetProgramLogSize, "nvrtcGetProgramLogSize");
    SYM(l, a->GetProgramLog, "nvrtcGetProgramLog");
    SYM(l, a->GetCUBINSize, "nvrtcGetCUBINSize");
    SYM(l, a->GetCUBIN, "nvrtcGetCUBIN");
    SYM(l, a->DestroyProgram, "nvrtcDestroyProgram");
    SYM(l, a->GetErrorString, "nvrtcGetErrorString");
    if (missing[0]) {
        kf_nvrtc_unload(a);
        return kf_fail(err, KF_E_UNAVAILABLE, "cuda target unavailable: NVRTC lacks %s (older than CUDA 11.1?)",
                       missing);
    }
    return 0;
}

void kf_nvrtc_unload(kf_nvrtc_api *a) {
    if (a->lib) dlclose(a->lib);
    memset(a, 0, sizeof *a);
}

int kf_cublas_load(kf_cublas_api *a, kf_err *err) {
    memset(a, 0, sizeof *a);
    char why[512], missing[128] = "";
    a->lib = kf_cu_dlopen("KFORGE_CUBLAS", kf_cublas_names, why, sizeof why);
    if (!a->lib)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: gemm steps need cuBLAS, which cannot be loaded (libcublas.so: "
                       "%s); add its folder to LD_LIBRARY_PATH or set KFORGE_CUBLAS", why);
    void *l = a->lib;
    SYM(l, a->Create, "cublasCreate_v2");
    SYM(l, a->Destroy, "cublasDestroy_v2");
    SYM(l, a->SetStream, "cublasSetStream_v2");
    SYM(l, a->SetMathMode, "cublasSetMathMode");
    SYM(l, a->SgemmStridedBatched, "cublasSgemmStridedBatched");
    if (missing[0]) {
        kf_cublas_unload(a);
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cuBLAS lacks %s", missing);
    }
    return 0;
}

void kf_cublas_unload(kf_cublas_api *a) {
    if (a->lib) dlclose(a->lib);
    memset(a, 0, sizeof *a);
}

static const char *const kf_cublaslt_names[] = {
    "libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11",
    "/usr/local/cuda/lib64/libcublasLt.so", "/usr/local/cuda/lib64/libcublasLt.so.13",
    "/usr/local/cuda/lib64/libcublasLt.so.12", NULL,
};

int kf_cublaslt_load(kf_cublaslt_api *a, kf_err *err) {
    memset(a, 0, sizeof *a);
    char why[512], missing[128] = "";
    a->lib = kf_cu_dlopen("KFORGE_CUBLASLT", kf_cublaslt_names, why, sizeof why);
    if (!a->lib)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cannot load cuBLASLt (libcublasLt.so: %s); add its folder to "
                       "LD_LIBRARY_PATH or set KFORGE_CUBLASLT", why);
    void *l = a->lib;
    SYM(l, a->Create, "cublasLtCreate");
    SYM(l, a->Destroy, "cublasLtDestroy");
    SYM(l, a->DescCreate, "cublasLtMatmulDescCreate");
    SYM(l, a->DescDestroy, "cublasLtMatmulDescDestroy");
    SYM(l, a->DescSetAttribute, "cublasLtMatmulDescSetAttribute");
    SYM(l, a->LayoutCreate, "cublasLtMatrixLayoutCreate");
    SYM(l, a->LayoutDestroy, "cublasLtMatrixLayoutDestroy");
    SYM(l, a->LayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
    SYM(l, a->PrefCreate, "cublasLtMatmulPreferenceCreate");
    SYM(l, a->PrefDestroy, "cublasLtMatmulPreferenceDestroy");
    SYM(l, a->PrefSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
    SYM(l, a->GetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
    SYM(l, a->CapGetAttribute, "cublasLtMatmulAlgoCapGetAttribute");
    SYM(l, a->ConfigGetAttribute, "cublasLtMatmulAlgoConfigGetAttribute");
    SYM(l, a->Matmul, "cublasLtMatmul");
    if (missing[0]) {
        kf_cublaslt_unload(a);
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cuBLASLt lacks %s (older than CUDA 11?)", missing);
    }
    return 0;
}

void kf_cublaslt_unload(kf_cublaslt_api *a) {
    if (a->lib) dlclose(a->lib);
    memset(a, 0, sizeof *a);
}

static const char *const kf_cudnn_names[] = {"libcudnn.so.9", "libcudnn.so", NULL};

int kf_cudnn_load(kf_cudnn_api *a, kf_err *err) {
    memset(a, 0, sizeof *a);
    char why[512], missing[128] = "";
    a->lib = kf_cu_dlopen("KFORGE_CUDNN", kf_cudnn_names, why, sizeof why);
    if (!a->lib)
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: conv steps need cuDNN, which cannot be loaded (libcudnn.so.9: "
                       "%s); add its folder to LD_LIBRARY_PATH or set KFORGE_CUDNN", why);
    void *l = a->lib;
    SYM(l, a->Create, "cudnnCreate");
    SYM(l, a->Destroy, "cudnnDestroy");
    SYM(l, a->SetStream, "cudnnSetStream");
    SYM(l, a->GetErrorString, "cudnnGetErrorString");
    SYM(l, a->CreateTensorDescriptor, "cudnnCreateTensorDescriptor");
    SYM(l, a->SetTensorNdDescriptor, "cudnnSetTensorNdDescriptor");
    SYM(l, a->DestroyTensorDescriptor, "cudnnDestroyTensorDescriptor");
    SYM(l, a->CreateFilterDescriptor, "cudnnCreateFilterDescriptor");
    SYM(l, a->SetFilterNdDescriptor, "cudnnSetFilterNdDescriptor");
    SYM(l, a->DestroyFilterDescriptor, "cudnnDestroyFilterDescriptor");
    SYM(l, a->CreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor");
    SYM(l, a->SetConvolutionNdDescriptor, "cudnnSetConvolutionNdDescriptor");
    SYM(l, a->SetConvolutionGroupCount, "cudnnSetConvolutionGroupCount");
    SYM(l, a->SetConvolutionMathType, "cudnnSetConvolutionMathType");
    SYM(l, a->DestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor");
    SYM(l, a->GetFwdAlgo, "cudnnGetConvolutionForwardAlgorithm_v7");
    SYM(l, a->FindFwdAlgoEx, "cudnnFindConvolutionForwardAlgorithmEx");
    SYM(l, a->GetFwdWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize");
    SYM(l, a->ConvolutionForward, "cudnnConvolutionForward");
    SYM(l, a->GetBwdDataAlgo, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    SYM(l, a->FindBwdDataAlgoEx, "cudnnFindConvolutionBackwardDataAlgorithmEx");
    SYM(l, a->GetBwdDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize");
    SYM(l, a->ConvolutionBackwardData, "cudnnConvolutionBackwardData");
    SYM(l, a->AddTensor, "cudnnAddTensor");
    if (missing[0]) {
        kf_cudnn_unload(a);
        return kf_fail(err, KF_E_UNSUPPORTED, "cuda: cuDNN lacks %s (older than cuDNN 8?)", missing);
    }
    return 0;
}

void kf_cudnn_unload(kf_cudnn_api *a) {
    if (a->lib) dlclose(a->lib);
    memset(a, 0, sizeof *a);
}

int kf_cuda_cudnn_available(kf_err *err) {
    kf_err e2;
    kf_err_clear(&e2);
    kf_cudnn_api a;
    if (kf_cudnn_load(&a, err ? err : &e2) != 0) return 0;
    kf_cudnn_unload(&a);
    return 1;
}

const char *kf_cu_errstr(const kf_cu_api *a, CUresult r, char *buf, size_t n) {
    const char *name = NULL, *text = NULL;
    if (a && a->GetErrorName) a->GetErrorName(r, &name);
    if (a && a->GetErrorString) a->GetErrorString(r, &text);
    if (name && text) snprintf(buf, n, "%s (%s)", name, text);
    else snprintf(buf, n, "CUDA error %d", r);
    return buf;
}

int kf_cu_fail(const kf_cu_api *a, kf_err *err, int code, CUresult r, const char *what) {
    char buf[300];
    return kf_fail(err, r == KF_CU_ERROR_OUT_OF_MEMORY ? KF_E_NOMEM : code, "cuda: %s: %s", what,
                   kf_cu_errstr(a, r, buf, sizeof buf));
}
