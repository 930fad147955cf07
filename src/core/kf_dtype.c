/* kf_dtype.c: element type names, sizes and parsing; tensor descriptor helpers. */
#include "core/kf_dtype.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name, *st, *ctype;
    size_t size;
    int is_float;
} kf_dtype_info;

static const kf_dtype_info kf_dtypes[KF_DTYPE_COUNT] = {
    [KF_F32] = {"f32", "F32", "float", 4, 1},
    [KF_F64] = {"f64", "F64", "double", 8, 1},
    [KF_F16] = {"f16", "F16", "uint16_t", 2, 1},
    [KF_BF16] = {"bf16", "BF16", "uint16_t", 2, 1},
    [KF_I64] = {"i64", "I64", "int64_t", 8, 0},
    [KF_I32] = {"i32", "I32", "int32_t", 4, 0},
    [KF_I16] = {"i16", "I16", "int16_t", 2, 0},
    [KF_I8] = {"i8", "I8", "int8_t", 1, 0},
    [KF_U8] = {"u8", "U8", "uint8_t", 1, 0},
    [KF_BOOL] = {"bool", "BOOL", "uint8_t", 1, 0},
};

static int kf_dtype_ok(kf_dtype dt) { return (int)dt >= 0 && dt < KF_DTYPE_COUNT; }

size_t kf_dtype_size(kf_dtype dt) { return kf_dtype_ok(dt) ? kf_dtypes[dt].size : 0; }
const char *kf_dtype_name(kf_dtype dt) { return kf_dtype_ok(dt) ? kf_dtypes[dt].name : "?"; }
const char *kf_dtype_safetensors(kf_dtype dt) { return kf_dtype_ok(dt) ? kf_dtypes[dt].st : "?"; }
const char *kf_dtype_ctype(kf_dtype dt) { return kf_dtype_ok(dt) ? kf_dtypes[dt].ctype : "void"; }
int kf_dtype_is_float(kf_dtype dt) { return kf_dtype_ok(dt) && kf_dtypes[dt].is_float; }

/* Torch and C aliases, matched case-insensitively after an optional "torch." prefix. */
static const struct {
    const char *alias;
    kf_dtype dt;
} kf_dtype_aliases[] = {
    {"float32", KF_F32}, {"float", KF_F32},      {"float64", KF_F64}, {"double", KF_F64},
    {"float16", KF_F16}, {"half", KF_F16},       {"bfloat16", KF_BF16}, {"int64", KF_I64},
    {"long", KF_I64},    {"int32", KF_I32},      {"int", KF_I32},     {"int16", KF_I16},
    {"short", KF_I16},   {"int8", KF_I8},        {"uint8", KF_U8},    {"byte", KF_U8},
    {"bool", KF_BOOL},   {"boolean", KF_BOOL},
};

int kf_dtype_parse(const char *s, kf_dtype *out) {
    if (!s) return -1;
    if (strncmp(s, "torch.", 6) == 0) s += 6;
    for (int i = 0; i < KF_DTYPE_COUNT; i++) {
        if (strcasecmp(s, kf_dtypes[i].name) == 0) {
            *out = (kf_dtype)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof kf_dtype_aliases / sizeof kf_dtype_aliases[0]; i++) {
        if (strcasecmp(s, kf_dtype_aliases[i].alias) == 0) {
            *out = kf_dtype_aliases[i].dt;
            return 0;
        }
    }
    return -1;
}

int64_t kf_tdesc_numel(const kf_tdesc *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t kf_tdesc_nbytes(const kf_tdesc *t) {
    return (size_t)kf_tdesc_numel(t) * kf_dtype_size(t->dtype);
}

void kf_tdesc_set_contiguous(kf_tdesc *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->strides[i] = s;
        s *= t->shape[i] > 0 ? t->shape[i] : 1;
    }
}

int kf_tdesc_is_contiguous(const kf_tdesc *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

int kf_tdesc_same_shape(const kf_tdesc *a, const kf_tdesc *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *kf_tdesc_format(const kf_tdesc *t, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    size_t used = 0;
    int w = snprintf(buf, n, "%s[", kf_dtype_name(t->dtype));
    if (w > 0) used = (size_t)w;
    for (int i = 0; i < t->ndim && used < n; i++) {
        w = snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (w > 0) used += (size_t)w;
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}
