/* kf_err.c: filling and prefixing kf_err values, and names for kf_code values. */
#include "core/kf_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void kf_err_strip_newlines(char *s) {
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') *s = ' ';
}

int kf_fail(kf_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    kf_err_strip_newlines(err->msg);
    return code;
}

int kf_err_prefix(kf_err *err, const char *fmt, ...) {
    if (!err) return KF_E_INTERNAL;
    char prefix[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Built piecewise: the result is deliberately cut at the buffer size. */
    size_t cap = sizeof err->msg - 1, n = 0;
    for (const char *p = prefix; *p && n < cap; p++) err->msg[n++] = *p;
    if (old[0]) {
        for (const char *p = ": "; *p && n < cap; p++) err->msg[n++] = *p;
        for (const char *p = old; *p && n < cap; p++) err->msg[n++] = *p;
    }
    err->msg[n] = '\0';
    kf_err_strip_newlines(err->msg);
    return err->code;
}

void kf_err_clear(kf_err *err) {
    if (!err) return;
    err->code = KF_OK;
    err->msg[0] = '\0';
}

const char *kf_code_name(int code) {
    switch (code) {
    case KF_OK: return "ok";
    case KF_E_IO: return "io";
    case KF_E_FORMAT: return "format";
    case KF_E_INVALID: return "invalid";
    case KF_E_UNSUPPORTED: return "unsupported";
    case KF_E_COMPILE: return "compile";
    case KF_E_NOMEM: return "nomem";
    case KF_E_ORACLE: return "oracle";
    case KF_E_UNAVAILABLE: return "unavailable";
    case KF_E_TIMEOUT: return "timeout";
    case KF_E_INTERNAL: return "internal";
    default: return "unknown";
    }
}
