/* kf_safetensors.h: read (memory-mapped, validated) and write safetensors files.
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name":{"dtype":"F32","shape":[..],"data_offsets":[begin,end]}, "__metadata__":{..}},
 * then the byte buffer. Validation: header length in range (<= 100 MB and inside the file),
 * JSON object, known dtypes, offsets in range, end-begin == numel*size, no overlaps, and the
 * buffer fully covered (no holes). */
#ifndef KF_SAFETENSORS_H
#define KF_SAFETENSORS_H

#include "core/kf_dtype.h"
#include "core/kf_err.h"

typedef struct kf_st_tensor {
    char *name;
    kf_tdesc desc;      /* contiguous strides */
    const void *data;   /* points into the mapping (read) or caller memory (write) */
    size_t nbytes;
} kf_st_tensor;

typedef struct kf_safetensors {
    void *map;
    size_t map_len;
    kf_st_tensor *tensors; /* in file order of data_offsets */
    int n_tensors;
} kf_safetensors;

int kf_st_open(const char *path, kf_safetensors *st, kf_err *err);
/* Same validation on a buffer the caller owns (not copied; must outlive st). */
int kf_st_parse(const void *buf, size_t len, kf_safetensors *st, kf_err *err);
const kf_st_tensor *kf_st_find(const kf_safetensors *st, const char *name);
void kf_st_close(kf_safetensors *st);
/* Write tensors (desc + data + nbytes + name) to path, atomically. */
int kf_st_write(const char *path, const kf_st_tensor *tensors, int n, kf_err *err);

#endif
