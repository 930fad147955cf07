/* kf_err.h: error values returned by every kforge function.
 * Functions return 0 on success or a negative kf_code; when they fail they fill a kf_err
 * with a one-line human message. Nothing deep inside prints: the CLI decides what to show. */
#ifndef KF_ERR_H
#define KF_ERR_H

#include <stddef.h>

typedef enum {
    KF_OK = 0,
    KF_E_IO = -1,          /* file or pipe could not be read/written */
    KF_E_FORMAT = -2,      /* malformed input (JSON, safetensors, plan) */
    KF_E_INVALID = -3,     /* well-formed but inconsistent (bad reference, bad size) */
    KF_E_UNSUPPORTED = -4, /* an op or feature kforge cannot handle (message names it) */
    KF_E_COMPILE = -5,     /* a kernel source did not compile (message has the log) */
    KF_E_NOMEM = -6,
    KF_E_ORACLE = -7,      /* the PyTorch oracle failed or reported an error */
    KF_E_UNAVAILABLE = -8, /* a target, toolchain or device is not present */
    KF_E_TIMEOUT = -9,
    KF_E_INTERNAL = -10
} kf_code;

typedef struct kf_err {
    int code;       /* a kf_code */
    char msg[1024]; /* one line, no trailing newline */
} kf_err;

/* Set err (if not NULL) and return code, so callers can write `return kf_fail(err, ...)`. */
int kf_fail(kf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "context: old message". Returns err->code. */
int kf_err_prefix(kf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kf_err_clear(kf_err *err);
const char *kf_code_name(int code);

#endif
