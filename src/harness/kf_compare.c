/* kf_compare.c: element-wise comparison of a candidate's output with the PyTorch reference
 * (tolerances, NaN and infinity positions, integer exactness) and multi-index formatting. */
#include "harness/kf_session.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

double kf_default_tol(kf_dtype dt) {
    switch (dt) {
    case KF_F32: case KF_F64: return 1e-4;
    case KF_F16: case KF_BF16: return 1e-2;
    default: return 0;
    }
}

static double kf_half_to_double(uint16_t h) {
    int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    double v;
    if (exp == 0) v = ldexp((double)man, -24);
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexp((double)(man | 0x400), exp - 25);
    return sign ? -v : v;
}

double kf_elem_get(const void *data, kf_dtype dt, long long i) {
    const unsigned char *p = (const unsigned char *)data + (size_t)i * kf_dtype_size(dt);
    switch (dt) {
    case KF_F32: { float v; memcpy(&v, p, 4); return v; }
    case KF_F64: { double v; memcpy(&v, p, 8); return v; }
    case KF_F16: { uint16_t v; memcpy(&v, p, 2); return kf_half_to_double(v); }
    case KF_BF16: {
        uint16_t v; memcpy(&v, p, 2);
        uint32_t bits = (uint32_t)v << 16; float f; memcpy(&f, &bits, 4); return f;
    }
    case KF_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case KF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case KF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case KF_I8: { int8_t v; memcpy(&v, p, 1); return v; }
    case KF_U8: return p[0];
    case KF_BOOL: return p[0] ? 1.0 : 0.0;
    default: return NAN;
    }
}

static int kf_elem_equal_exact(const unsigned char *a, const unsigned char *b, kf_dtype dt,
                               long long i) {
    size_t sz = kf_dtype_size(dt);
    if (dt == KF_BOOL) return (a[i] != 0) == (b[i] != 0);
    return memcmp(a + (size_t)i * sz, b + (size_t)i * sz, sz) == 0;
}

int kf_compare(const void *got, const void *ref, kf_dtype dt, long long numel, double atol,
               double rtol, kf_mismatch *m) {
    memset(m, 0, sizeof *m);
    m->index = -1;
    m->worst_index = -1;
    int is_float = kf_dtype_is_float(dt);
    for (long long i = 0; i < numel; i++) {
        double g = kf_elem_get(got, dt, i), r = kf_elem_get(ref, dt, i);
        int ok;
        double tol = 0;
        if (!is_float) {
            ok = kf_elem_equal_exact(got, ref, dt, i);
        } else if (isnan(r)) {
            ok = isnan(g);
        } else if (isinf(r)) {
            ok = g == r;
        } else {
            tol = atol + rtol * fabs(r);
            ok = isfinite(g) && fabs(g - r) <= tol;
        }
        if (!ok) {
            if (m->index < 0) {
                m->index = i;
                m->got = g;
                m->expected = r;
                m->tol = tol;
            }
            double ratio = is_float && isfinite(r) && isfinite(g) && tol > 0 ? fabs(g - r) / tol
                                                                              : INFINITY;
            if (m->worst_index < 0 || ratio > m->worst_ratio) {
                m->worst_index = i;
                m->worst_got = g;
                m->worst_expected = r;
                m->worst_tol = tol;
                m->worst_ratio = ratio;
            }
            m->count++;
        }
    }
    return m->count ? 1 : 0;
}

const char *kf_format_multi_index(const kf_tdesc *d, long long flat, char *buf, size_t n) {
    long long idx[KF_MAX_DIMS];
    int nd = d->ndim < 0 ? 0 : (d->ndim > KF_MAX_DIMS ? KF_MAX_DIMS : d->ndim);
    long long rest = flat;
    for (int k = nd - 1; k >= 0; k--) {
        long long ext = d->shape[k] > 0 ? d->shape[k] : 1;
        idx[k] = rest % ext;
        rest /= ext;
    }
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n > off ? n - off : 0, "[");
    for (int k = 0; k < nd; k++)
        off += (size_t)snprintf(buf + off, n > off ? n - off : 0, "%s%lld", k ? ", " : "", idx[k]);
    snprintf(buf + off, n > off ? n - off : 0, "]");
    return buf;
}
