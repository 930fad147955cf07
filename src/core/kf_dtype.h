/* kf_dtype.h: element types and tensor descriptors (dtype, shape, strides in elements). */
#ifndef KF_DTYPE_H
#define KF_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KF_F32 = 0, KF_F64, KF_F16, KF_BF16, KF_I64, KF_I32, KF_I16, KF_I8, KF_U8, KF_BOOL,
    KF_DTYPE_COUNT
} kf_dtype;

size_t kf_dtype_size(kf_dtype dt);
const char *kf_dtype_name(kf_dtype dt);        /* "f32", "i64", "bool", ... (graph JSON, plans) */
const char *kf_dtype_safetensors(kf_dtype dt); /* "F32", "I64", "BOOL", ... */
const char *kf_dtype_ctype(kf_dtype dt);       /* "float", "int64_t", "uint8_t" (bool), ... */
int kf_dtype_is_float(kf_dtype dt);
/* Accepts kforge names ("f32"), safetensors names ("F32") and torch names ("float32",
 * "torch.float32", "int64", "bool"). Returns 0, or -1 if unknown. */
int kf_dtype_parse(const char *s, kf_dtype *out);

#define KF_MAX_DIMS 8

typedef struct kf_tdesc {
    kf_dtype dtype;
    int ndim;                       /* 0 for a scalar */
    int64_t shape[KF_MAX_DIMS];
    int64_t strides[KF_MAX_DIMS];   /* in elements; contiguous unless stated */
} kf_tdesc;

int64_t kf_tdesc_numel(const kf_tdesc *t);
size_t kf_tdesc_nbytes(const kf_tdesc *t);       /* numel * element size */
void kf_tdesc_set_contiguous(kf_tdesc *t);       /* row-major strides from shape */
int kf_tdesc_is_contiguous(const kf_tdesc *t);
int kf_tdesc_same_shape(const kf_tdesc *a, const kf_tdesc *b);
/* "f32[4, 128]" into buf; returns buf. */
const char *kf_tdesc_format(const kf_tdesc *t, char *buf, size_t n);

#endif
