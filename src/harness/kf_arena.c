/* kf_arena.c: the shared host arena holding every program buffer between guard bytes: layout,
 * filling (guards, inputs, params, poison) and the after-run integrity check; the matching of
 * buffers with their source tensors and the integrity messages are shared with the device
 * data path (kf_verify_dev.c), which checks the same things on the device. */
#include "harness/kf_arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define KF_ARENA_ALIGN 64

static size_t kf_align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

static const char *kf_role_name(kf_buf_role r) {
    switch (r) {
    case KF_BUF_INPUT: return "input";
    case KF_BUF_PARAM: return "param";
    case KF_BUF_OUTPUT: return "output";
    default: return "scratch";
    }
}

int kf_arena_create(kf_arena *a, const kf_program *p, kf_err *err) {
    memset(a, 0, sizeof *a);
    a->p = p;
    size_t len = 0;
    for (int i = 0; i < p->n_bufs; i++)
        len = kf_align_up(len + KF_GUARD_BYTES + p->bufs[i].nbytes + KF_GUARD_BYTES, KF_ARENA_ALIGN);
    if (len == 0) len = KF_ARENA_ALIGN;
    len = kf_align_up(len, 4096);
    a->slots = calloc(p->n_bufs ? (size_t)p->n_bufs : 1, sizeof *a->slots);
    a->written = calloc(p->n_bufs ? (size_t)p->n_bufs : 1, sizeof *a->written);
    if (!a->slots || !a->written) {
        kf_arena_destroy(a);
        return kf_fail(err, KF_E_NOMEM, "arena: out of memory for %d slots", p->n_bufs);
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        kf_arena_destroy(a);
        return kf_fail(err, KF_E_NOMEM, "arena: cannot map %zu bytes", len);
    }
    a->map = m;
    a->map_len = len;
    size_t cur = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        a->slots[i].base = a->map + cur;
        a->slots[i].data = a->map + cur + KF_GUARD_BYTES;
        a->slots[i].nbytes = p->bufs[i].nbytes;
        /* guards only: data pages stay untouched (and unbacked) until a fill writes them */
        memset(a->slots[i].base, KF_GUARD_BYTE, KF_GUARD_BYTES);
        memset(a->slots[i].data + a->slots[i].nbytes, KF_GUARD_BYTE, KF_GUARD_BYTES);
        cur = kf_align_up(cur + KF_GUARD_BYTES + p->bufs[i].nbytes + KF_GUARD_BYTES, KF_ARENA_ALIGN);
    }
    return 0;
}

void kf_arena_destroy(kf_arena *a) {
    if (a->map) munmap(a->map, a->map_len);
    free(a->slots);
    free(a->written);
    memset(a, 0, sizeof *a);
}

size_t kf_arena_bytes(const kf_arena *a) { return a->map_len; }

int kf_arena_match(const kf_program *p, int i, const kf_st_tensor *t, const char *what,
                   kf_err *err) {
    const kf_pbuf *b = &p->bufs[i];
    if (!t)
        return kf_fail(err, KF_E_INVALID, "%s buffer '%s': no tensor %s was provided",
                       kf_role_name(b->role), b->name, what);
    if (t->nbytes != b->nbytes)
        return kf_fail(err, KF_E_INVALID,
                       "%s buffer '%s' holds %zu bytes but %s has %zu bytes",
                       kf_role_name(b->role), b->name, b->nbytes, what, t->nbytes);
    if (t->desc.dtype != b->desc.dtype)
        return kf_fail(err, KF_E_INVALID, "%s buffer '%s' is %s but %s is %s",
                       kf_role_name(b->role), b->name, kf_dtype_name(b->desc.dtype), what,
                       kf_dtype_name(t->desc.dtype));
    return 0;
}

int kf_arena_source(const kf_program *p, int i, const kf_safetensors *case_st,
                    const kf_safetensors *params_st, const kf_st_tensor **out, kf_err *err) {
    const kf_pbuf *b = &p->bufs[i];
    char name[256];
    const kf_st_tensor *t = NULL;
    *out = NULL;
    if (b->role == KF_BUF_INPUT) {
        snprintf(name, sizeof name, "in.%d", b->index);
        t = case_st ? kf_st_find(case_st, name) : NULL;
    } else if (b->role == KF_BUF_PARAM) {
        snprintf(name, sizeof name, "param '%s'", b->param ? b->param : "");
        t = (params_st && b->param) ? kf_st_find(params_st, b->param) : NULL;
    } else {
        return 0;
    }
    int rc = kf_arena_match(p, i, t, name, err);
    if (!rc) *out = t;
    return rc;
}

static int kf_fill_from(kf_arena *a, int i, const kf_st_tensor *t, kf_err *err) {
    const kf_pbuf *b = &a->p->bufs[i];
    if (b->nbytes) memcpy(a->slots[i].data, t->data, b->nbytes);
    a->written[i] = t->data;
    return 0;
}

int kf_arena_fill(kf_arena *a, const kf_safetensors *case_st, const kf_safetensors *params_st,
                  kf_err *err) {
    const kf_program *p = a->p;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        kf_slot *s = &a->slots[i];
        memset(s->base, KF_GUARD_BYTE, KF_GUARD_BYTES);
        memset(s->data + s->nbytes, KF_GUARD_BYTE, KF_GUARD_BYTES);
        a->written[i] = NULL;
        if (b->role == KF_BUF_INPUT || b->role == KF_BUF_PARAM) {
            const kf_st_tensor *t;
            int rc = kf_arena_source(p, i, case_st, params_st, &t, err);
            if (rc) return rc;
            kf_fill_from(a, i, t, err);
        } else {
            memset(s->data, KF_POISON_BYTE, s->nbytes);
        }
    }
    return 0;
}

static long kf_first_bad(const unsigned char *m, size_t n, unsigned char want, size_t *count) {
    long first = -1;
    *count = 0;
    for (size_t k = 0; k < n; k++)
        if (m[k] != want) {
            if (first < 0) first = (long)k;
            (*count)++;
        }
    return first;
}

int kf_arena_check(const kf_arena *a, int *what, kf_err *err) {
    const kf_program *p = a->p;
    *what = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_slot *s = &a->slots[i];
        const char *name = p->bufs[i].name;
        (void)name;
        size_t cnt;
        long off = kf_first_bad(s->base, KF_GUARD_BYTES, KF_GUARD_BYTE, &cnt);
        if (off >= 0) {
            *what = 1;
            return kf_arena_guard_fail(p, i, 0, off, s->base[off], cnt, err);
        }
        const unsigned char *after = s->data + s->nbytes;
        off = kf_first_bad(after, KF_GUARD_BYTES, KF_GUARD_BYTE, &cnt);
        if (off >= 0) {
            *what = 1;
            return kf_arena_guard_fail(p, i, 1, off, after[off], cnt, err);
        }
    }
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        if (b->role != KF_BUF_INPUT && b->role != KF_BUF_PARAM) continue;
        if (!a->written[i] || !b->nbytes) continue;
        const unsigned char *now = a->slots[i].data, *was = a->written[i];
        if (memcmp(now, was, b->nbytes) == 0) continue;
        size_t first = 0, changed = 0;
        for (size_t k = 0; k < b->nbytes; k++)
            if (now[k] != was[k]) {
                if (!changed) first = k;
                changed++;
            }
        *what = 2;
        return kf_arena_changed_fail(p, i, first, changed, err);
    }
    return 0;
}

int kf_arena_guard_fail(const kf_program *p, int i, int after, long off, int found, size_t cnt,
                        kf_err *err) {
    const char *name = p->bufs[i].name;
    size_t nbytes = p->bufs[i].nbytes;
    if (!after) {
        long rel = off - (long)KF_GUARD_BYTES;
        return kf_fail(err, KF_E_INVALID,
                       "out-of-bounds write: guard bytes before buffer '%s' overwritten at "
                       "offset %ld (%ld bytes before its start; found 0x%02X, expected 0x%02X; "
                       "%zu guard bytes changed)",
                       name, rel, -rel, found, KF_GUARD_BYTE, cnt);
    }
    return kf_fail(err, KF_E_INVALID,
                   "out-of-bounds write: guard bytes after buffer '%s' overwritten at "
                   "offset %zu (%ld bytes past its end of %zu bytes; found 0x%02X, "
                   "expected 0x%02X; %zu guard bytes changed)",
                   name, nbytes + (size_t)off, off, nbytes, found, KF_GUARD_BYTE, cnt);
}

int kf_arena_changed_fail(const kf_program *p, int i, size_t first, size_t changed, kf_err *err) {
    const kf_pbuf *b = &p->bufs[i];
    return kf_fail(err, KF_E_INVALID,
                   "%s '%s' was modified (first changed byte at offset %zu, %zu bytes changed)",
                   kf_role_name(b->role), b->name, first, changed);
}
