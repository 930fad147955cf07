/* kf_safetensors.c: validated reading (mmap or caller buffer) and atomic writing of
 * safetensors files. Every structural rule of the format is checked before any tensor is
 * handed out, so later code can trust offsets and sizes. */
#include "ir/kf_safetensors.h"

#include "core/kf_str.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KF_ST_MAX_HEADER (100u * 1000u * 1000u)

static int kf_st_dtype(const char *s, kf_dtype *out) {
    for (int i = 0; i < KF_DTYPE_COUNT; i++) {
        if (strcmp(s, kf_dtype_safetensors((kf_dtype)i)) == 0) {
            *out = (kf_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int kf_st_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static void kf_st_free_tensors(kf_st_tensor *t, int n) {
    for (int i = 0; i < n; i++) free(t[i].name);
    free(t);
}

/* Orders tensors by where their data starts (empty tensors before others at that spot). */
static int kf_st_cmp(const void *a, const void *b) {
    const kf_st_tensor *x = a, *y = b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    if (px != py) return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Parses one tensor entry into t; data/nbytes are set from the offsets relative to base. */
static int kf_st_entry(const cJSON *e, const unsigned char *base, uint64_t buf_len,
                       kf_st_tensor *t, kf_err *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': entry is not a JSON object", name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': missing string field 'dtype'", name);
    if (kf_st_dtype(jd->valuestring, &t->desc.dtype) != 0)
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': unknown dtype '%s'", name, jd->valuestring);
    if (!cJSON_IsArray(js))
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': missing array field 'shape'", name);
    int nd = cJSON_GetArraySize(js);
    if (nd > KF_MAX_DIMS)
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': %d dimensions (at most %d)", name, nd,
                       KF_MAX_DIMS);
    t->desc.ndim = nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t v;
        if (kf_st_uint(cJSON_GetArrayItem(js, i), &v) != 0)
            return kf_fail(err, KF_E_FORMAT,
                           "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        t->desc.shape[i] = (int64_t)v;
        if (v && numel > UINT64_MAX / v) overflow = 1;
        numel *= v;
    }
    kf_tdesc_set_contiguous(&t->desc);
    size_t esz = kf_dtype_size(t->desc.dtype);
    if (overflow || numel > UINT64_MAX / esz)
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': shape is too large", name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': 'data_offsets' must be [begin, end]", name);
    uint64_t b, en;
    if (kf_st_uint(cJSON_GetArrayItem(jo, 0), &b) || kf_st_uint(cJSON_GetArrayItem(jo, 1), &en))
        return kf_fail(err, KF_E_FORMAT,
                       "tensor '%s': data_offsets must be non-negative integers", name);
    if (b > en)
        return kf_fail(err, KF_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu] end before begin",
                       name, (unsigned long long)b, (unsigned long long)en);
    if (en > buf_len)
        return kf_fail(err, KF_E_FORMAT,
                       "tensor '%s': data_offsets [%llu, %llu] past the end of the %llu-byte "
                       "data buffer", name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)buf_len);
    if (en - b != numel * esz) {
        char sh[256];
        return kf_fail(err, KF_E_FORMAT,
                       "tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s needs %llu",
                       name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(en - b), kf_tdesc_format(&t->desc, sh, sizeof sh),
                       (unsigned long long)(numel * esz));
    }
    t->name = kf_strdup(name);
    if (!t->name) return kf_fail(err, KF_E_NOMEM, "out of memory");
    t->data = base + b;
    t->nbytes = (size_t)(en - b);
    return 0;
}

static int kf_st_parse_into(const unsigned char *p, size_t len, kf_safetensors *st, kf_err *err) {
    if (len < 8)
        return kf_fail(err, KF_E_FORMAT, "truncated: %zu bytes, need at least 8 for the header "
                       "length", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > KF_ST_MAX_HEADER)
        return kf_fail(err, KF_E_FORMAT, "header length %llu exceeds the %u-byte limit",
                       (unsigned long long)hlen, KF_ST_MAX_HEADER);
    if (hlen > len - 8)
        return kf_fail(err, KF_E_FORMAT, "header length %llu runs past the end of the file "
                       "(%zu bytes)", (unsigned long long)hlen, len);
    if (hlen < 2)
        return kf_fail(err, KF_E_FORMAT, "header length %llu is too short for a JSON object",
                       (unsigned long long)hlen);
    const char *h = (const char *)p + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = (end && end >= h) ? (size_t)(end - h) : 0;
        return kf_fail(err, KF_E_FORMAT, "header is not valid JSON (error near byte %zu)", at);
    }
    for (const char *q = end; q && q < h + hlen; q++) {
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
            cJSON_Delete(root);
            return kf_fail(err, KF_E_FORMAT, "header has trailing bytes after the JSON object");
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kf_fail(err, KF_E_FORMAT, "header is JSON but not an object");
    }
    const unsigned char *base = p + 8 + hlen;
    uint64_t buf_len = len - 8 - hlen;
    int n = 0;
    for (cJSON *e = root->child; e; e = e->next) n++;
    kf_st_tensor *ts = calloc(n ? (size_t)n : 1, sizeof *ts);
    if (!ts) {
        cJSON_Delete(root);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    int nt = 0, rc = 0;
    for (cJSON *e = root->child; e && rc == 0; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) rc = kf_fail(err, KF_E_FORMAT, "'__metadata__' is not an object");
            continue;
        }
        for (int i = 0; i < nt; i++)
            if (strcmp(ts[i].name, e->string) == 0)
                rc = kf_fail(err, KF_E_FORMAT, "tensor '%s' appears twice in the header", e->string);
        if (rc == 0) rc = kf_st_entry(e, base, buf_len, &ts[nt], err);
        if (rc == 0) nt++;
    }
    cJSON_Delete(root);
    if (rc == 0) {
        qsort(ts, (size_t)nt, sizeof *ts, kf_st_cmp);
        const unsigned char *pos = base;
        for (int i = 0; i < nt && rc == 0; i++) {
            const unsigned char *b = ts[i].data;
            if (b < pos)
                rc = kf_fail(err, KF_E_FORMAT, "tensor '%s' (bytes %zu..%zu) overlaps tensor '%s'",
                             ts[i].name, (size_t)(b - base), (size_t)(b - base) + ts[i].nbytes,
                             ts[i - 1].name);
            else if (b > pos)
                rc = kf_fail(err, KF_E_FORMAT, "hole in the data buffer: bytes %zu..%zu belong to "
                             "no tensor", (size_t)(pos - base), (size_t)(b - base));
            pos = b + ts[i].nbytes;
        }
        if (rc == 0 && (uint64_t)(pos - base) != buf_len)
            rc = kf_fail(err, KF_E_FORMAT, "hole in the data buffer: bytes %zu..%llu belong to "
                         "no tensor", (size_t)(pos - base), (unsigned long long)buf_len);
    }
    if (rc != 0) {
        kf_st_free_tensors(ts, nt);
        return rc;
    }
    st->tensors = ts;
    st->n_tensors = nt;
    return 0;
}

int kf_st_parse(const void *buf, size_t len, kf_safetensors *st, kf_err *err) {
    memset(st, 0, sizeof *st);
    if (!buf && len) return kf_fail(err, KF_E_INVALID, "NULL buffer");
    int rc = kf_st_parse_into(buf, len, st, err);
    if (rc != 0) kf_err_prefix(err, "safetensors");
    return rc;
}

int kf_st_open(const char *path, kf_safetensors *st, kf_err *err) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kf_fail(err, KF_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return kf_fail(err, KF_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kf_fail(err, KF_E_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    int rc = kf_st_parse_into(map ? map : (const void *)empty, len, st, err);
    if (rc != 0) {
        if (map) munmap(map, len);
        memset(st, 0, sizeof *st);
        return kf_err_prefix(err, "%s", path);
    }
    st->map = map;
    st->map_len = len;
    return 0;
}

const kf_st_tensor *kf_st_find(const kf_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

void kf_st_close(kf_safetensors *st) {
    if (!st) return;
    kf_st_free_tensors(st->tensors, st->n_tensors);
    if (st->map) munmap(st->map, st->map_len);
    memset(st, 0, sizeof *st);
}

static int kf_st_header(const kf_st_tensor *ts, int n, kf_str *out, kf_err *err) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return kf_fail(err, KF_E_NOMEM, "out of memory");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const kf_st_tensor *t = &ts[i];
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
            cJSON_Delete(root);
            return kf_fail(err, KF_E_INVALID, "tensor %d has an empty or reserved name", i);
        }
        if (cJSON_GetObjectItemCaseSensitive(root, t->name)) {
            cJSON_Delete(root);
            return kf_fail(err, KF_E_INVALID, "tensor '%s' given twice", t->name);
        }
        if ((int)t->desc.dtype < 0 || t->desc.dtype >= KF_DTYPE_COUNT || t->desc.ndim < 0 ||
            t->desc.ndim > KF_MAX_DIMS || kf_tdesc_nbytes(&t->desc) != t->nbytes ||
            (t->nbytes && !t->data)) {
            cJSON_Delete(root);
            return kf_fail(err, KF_E_INVALID, "tensor '%s': descriptor does not match its %zu "
                           "bytes of data", t->name, t->nbytes);
        }
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", kf_dtype_safetensors(t->desc.dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        char num[32];
        for (int d = 0; d < t->desc.ndim; d++) {
            snprintf(num, sizeof num, "%lld", (long long)t->desc.shape[d]);
            cJSON_AddItemToArray(sh, cJSON_CreateRaw(num));
        }
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        snprintf(num, sizeof num, "%llu", (unsigned long long)off);
        cJSON_AddItemToArray(of, cJSON_CreateRaw(num));
        off += t->nbytes;
        snprintf(num, sizeof num, "%llu", (unsigned long long)off);
        cJSON_AddItemToArray(of, cJSON_CreateRaw(num));
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return kf_fail(err, KF_E_NOMEM, "out of memory");
    kf_str_append(out, text);
    free(text);
    while (out->len % 8) kf_str_append(out, " ");
    return 0;
}

int kf_st_write(const char *path, const kf_st_tensor *tensors, int n, kf_err *err) {
    kf_str hdr;
    kf_str_init(&hdr);
    int rc = kf_st_header(tensors, n, &hdr, err);
    if (rc != 0) {
        kf_str_free(&hdr);
        return kf_err_prefix(err, "%s", path);
    }
    int fd = -1;
    char *tmp = kf_open_temp_beside(path, &fd);
    FILE *f = tmp ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int e = tmp ? errno : -fd;
        if (tmp) {
            close(fd);
            unlink(tmp);
        }
        kf_str_free(&hdr);
        free(tmp);
        return kf_fail(err, KF_E_IO, "%s: cannot create: %s", path, strerror(e));
    }
    unsigned char len8[8];
    uint64_t hl = hdr.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr.data, 1, hdr.len, f) == hdr.len;
    for (int i = 0; ok && i < n; i++)
        if (tensors[i].nbytes)
            ok = fwrite(tensors[i].data, 1, tensors[i].nbytes, f) == tensors[i].nbytes;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    kf_str_free(&hdr);
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return kf_fail(err, KF_E_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}
