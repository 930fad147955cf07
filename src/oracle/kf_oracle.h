/* kf_oracle.h: the C side of the PyTorch oracle (python/kforge_oracle.py), a child process
 * driven over JSON lines on its stdin/stdout. One request line in, one reply line out.
 * Every reply has "ok": true, or "ok": false with "error" (a short kind: "load", "no_model",
 * "raised", "bad_request", "torch_missing", ...) and "message" (one line).
 *
 * Requests:
 *  {"cmd":"hello"} -> {"ok":true,"torch":"1.13.1","python":"3.11.2","blas":"openblas",
 *                       "threads":2,"devices":["cpu"],"compile":false}
 *  {"cmd":"load","path":P,"seed":S,"device":"cpu","threads":N,"workdir":D}
 *      -> {"ok":true,"inputs":[{"dtype":"f32","shape":[..]}..],
 *          "outputs":[{"dtype":"f32","shape":[..]}..], "n_params":K,
 *          "torch":..,"blas":..,"threads":N,"device":"cpu","compile":bool}
 *      Instantiates Model(*get_init_inputs()) under torch.manual_seed(S), in the mode it was
 *      constructed in (training), forward under torch.no_grad().
 *  {"cmd":"graph"} -> {"ok":true,"graph":{...kf_graph JSON...},"params_file":PATH}
 *      params_file: safetensors holding every graph param value by its value name (copied
 *      from the reference model's own state).
 *  {"cmd":"case","seed":S,"dist":"default"|"normal"|"uniform"|"heavy","file":PATH}
 *      -> {"ok":true,"file":PATH}: safetensors with "in.0".."in.K" (float tensors redrawn from
 *      dist unless "default"; non-float inputs as get_inputs() made them under seed S) and
 *      "out.0".."out.M" (reference outputs in strict precision, from those inputs).
 *      Optional "reference":"f32"|"f64" (default f32). With "f64" the inputs are the same draw,
 *      bit for bit, as the f32 case of that seed and dist, and "out.M" are computed by a float64
 *      copy of the model (copy.deepcopy(model).double(), made once per load) on those inputs
 *      upcast to float64 (integer inputs as they are), strict precision, then rounded to each
 *      output's own dtype. A model that cannot run in float64 -> {"ok":false,
 *      "error":"f64_unavailable",..}.
 *  {"cmd":"time","mode":"eager"|"compile","seed":S,"runs":N,"warmup":W,"flush_bytes":B}
 *      -> {"ok":true,"times_ms":[..N..]} or {"ok":false,"error":"unavailable",..} for compile
 *      where this torch has no torch.compile. Each timed run is preceded by a write of a
 *      flush_bytes buffer; device events on GPU, a monotonic clock on CPU.
 *      Optional "precision":"strict"|"default" (default strict: TF32 off).
 *  {"cmd":"case",...,"ipc":true} (no "file"; cuda problems) -> {"ok":true,"id":G,"tensors":
 *      [{"name":"in.0","dtype":"f32","shape":[..],"nbytes":N,"handle":HEX128,"offset":O}..]}:
 *      the same tensors as the file would hold, kept alive on the GPU in group G until
 *      released; handle is the CUDA IPC memory handle of the driver allocation holding the
 *      tensor, offset its byte offset there. "error":"ipc_unavailable" where not possible.
 *  {"cmd":"params_ipc"} -> the same reply for the params of the last graph capture, named by
 *      value name as in the params file.
 *  {"cmd":"release","ids":[G..]} -> {"ok":true,"released":K}: the groups' tensors are dropped.
 *  {"cmd":"quit"} -> {"ok":true}, then exits.
 * Also: "graph" takes an optional "decompose":"default"|"none" (see kforge_oracle_capture.py);
 * more error kinds: "not_loaded", "bad_problem", "device", "capture", "compile", "io",
 * "internal". Timeouts kill the child (KF_E_TIMEOUT); a dead child gives KF_E_ORACLE
 * "oracle exited (...): <last stderr lines>"; the oracle must then be started again. */
#ifndef KF_ORACLE_H
#define KF_ORACLE_H

#include "core/kf_err.h"
#include "core/kf_dtype.h"
#include "ir/kf_graph.h"

typedef struct kf_oracle kf_oracle;

typedef struct kf_oracle_opts {
    const char *python;    /* interpreter; default $KFORGE_PYTHON or "/usr/bin/python3" or "python3" */
    const char *script;    /* default: <dir of kforge binary>/../python/kforge_oracle.py, or $KFORGE_ORACLE */
    const char *workdir;   /* private temp folder for tensors (created, mode 0700) */
    int threads;           /* torch.set_num_threads; 0 = all cores */
    const char *device;    /* "cpu" or "cuda" */
    double timeout_s;      /* per request; default 600 */
} kf_oracle_opts;

typedef struct kf_oracle_info {
    char torch_version[64];
    char blas[64];
    char device[32];
    int threads;
    int compile_available;
    int n_inputs, n_outputs, n_params;
    kf_tdesc inputs[64];
    kf_tdesc outputs[64];
} kf_oracle_info;

typedef struct kf_timing {
    double *ms; int n;                  /* every timed run */
    double median_ms, min_ms, max_ms;
} kf_timing;

int kf_oracle_start(const kf_oracle_opts *opts, kf_oracle **out, kf_err *err);
void kf_oracle_stop(kf_oracle *o);  /* sends quit, waits briefly, then kills */
int kf_oracle_alive(kf_oracle *o);
/* Raw request: req and *resp are cJSON*; *resp is freed by the caller (cJSON_Delete). A reply
 * with "ok":false becomes KF_E_ORACLE with "<error>: <message>". */
int kf_oracle_request(kf_oracle *o, const void *req, void **resp, kf_err *err);
int kf_oracle_hello(kf_oracle *o, kf_oracle_info *info, kf_err *err);
int kf_oracle_load(kf_oracle *o, const char *problem_path, unsigned long long seed,
                   kf_oracle_info *info, kf_err *err);
int kf_oracle_graph(kf_oracle *o, kf_graph *g, char **params_file, kf_err *err);
int kf_oracle_case(kf_oracle *o, unsigned long long seed, const char *dist, const char *file,
                   kf_err *err);
/* The case verb with its "reference" field: "f32" (what kf_oracle_case asks for) or "f64" (the
 * same inputs, outputs of the float64 model rounded to the outputs' dtypes; see above). The
 * harness asks for f64 only after a candidate failed against f32 on that trial. Returns
 * KF_E_UNAVAILABLE ("f64_unavailable: <why>") where the model cannot run in float64,
 * KF_E_ORACLE for other failures. */
int kf_oracle_case_ref(kf_oracle *o, unsigned long long seed, const char *dist,
                       const char *reference, const char *file, kf_err *err);
/* Times in strict precision (TF32 off). Returns KF_E_UNAVAILABLE for mode "compile" where this
 * torch has no torch.compile, KF_E_ORACLE for other failures ("<kind>: <message>"). */
int kf_oracle_time(kf_oracle *o, const char *mode, unsigned long long seed, int runs, int warmup,
                   long long flush_bytes, kf_timing *t, kf_err *err);
/* The same with precision "strict" (TF32 off) or "default" (torch's own TF32 defaults, as the
 * oracle found them at start), the request's optional "precision" field. */
int kf_oracle_time_precision(kf_oracle *o, const char *mode, const char *precision,
                             unsigned long long seed, int runs, int warmup,
                             long long flush_bytes, kf_timing *t, kf_err *err);
/* ---- the device data path (kf_oracle_ipc.c) ---- */
typedef struct kf_ipc_tensor {
    char name[64];
    kf_tdesc desc;
    size_t nbytes;
    unsigned char handle[64];    /* CUipcMemHandle of the allocation holding the tensor */
    unsigned long long offset;   /* byte offset of the tensor in that allocation */
} kf_ipc_tensor;

typedef struct kf_ipc_group {
    long long id;                /* 0 when empty */
    int n;
    kf_ipc_tensor *t;
} kf_ipc_group;

/* The case verb with "ipc": true: the tensors stay in the oracle's GPU memory until
 * kf_oracle_release(g->id). KF_E_UNSUPPORTED ("ipc_unavailable: <why>") where the oracle cannot
 * export them; KF_E_UNAVAILABLE for f64_unavailable as kf_oracle_case_ref. */
int kf_oracle_case_ipc(kf_oracle *o, unsigned long long seed, const char *dist,
                       const char *reference, kf_ipc_group *g, kf_err *err);
/* The params of the last graph capture, by value name. */
int kf_oracle_params_ipc(kf_oracle *o, kf_ipc_group *g, kf_err *err);
/* Drops the oracle's references to a group (id 0: nothing to do). */
int kf_oracle_release(kf_oracle *o, long long id, kf_err *err);
const kf_ipc_tensor *kf_ipc_find(const kf_ipc_group *g, const char *name);
void kf_ipc_group_free(kf_ipc_group *g);   /* the C side only; see kf_oracle_release */
/* The device the oracle was started for ("cpu" or "cuda"). */
const char *kf_oracle_device(const kf_oracle *o);

void kf_timing_free(kf_timing *t);
void kf_timing_summarize(kf_timing *t); /* fills median/min/max from ms[] */

#endif
