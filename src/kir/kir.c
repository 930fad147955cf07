/* kir.c: the kernel IR's arena (a list of chunks, freed at once with the kernel), kernels,
 * their buffer parameters and variables, and the plan params of a KIR kernel. */
#include "kir/kir.h"
#include "kir/kir_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIR_CHUNK_MIN (16 * 1024)
#define KIR_ALIGN 16

typedef struct kir_chunk {
    struct kir_chunk *next;
    size_t size, used;
    _Alignas(KIR_ALIGN) unsigned char data[];
} kir_chunk;

struct kir_arena {
    kir_chunk *head;
    const char *failure; /* why the kernel is incomplete (a static string), or NULL */
};

void *kir_alloc(kir_kernel *k, size_t n) {
    if (!k || !k->arena) return NULL;
    kir_arena *a = k->arena;
    n = (n + KIR_ALIGN - 1) & ~(size_t)(KIR_ALIGN - 1);
    if (!a->head || a->head->size - a->head->used < n) {
        size_t size = n > KIR_CHUNK_MIN ? n : KIR_CHUNK_MIN;
        kir_chunk *c = malloc(sizeof *c + size);
        if (!c) {
            if (!a->failure) a->failure = KIR_OOM;
            return NULL;
        }
        c->next = a->head;
        c->size = size;
        c->used = 0;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *kir_strdup(kir_kernel *k, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = kir_alloc(k, n);
    if (d) memcpy(d, s, n);
    return d;
}

void *kir_grow(kir_kernel *k, void *arr, int n, int *cap, size_t elem) {
    if (n < *cap) return arr;
    int ncap = *cap ? *cap * 2 : 4;
    void *d = kir_alloc(k, (size_t)ncap * elem);
    if (!d) return NULL;
    if (arr && n) memcpy(d, arr, (size_t)n * elem);
    *cap = ncap;
    return d;
}

void kir_mark_failed(kir_kernel *k, const char *why) {
    if (k && k->arena && !k->arena->failure) k->arena->failure = why;
}

const char *kir_failure(const kir_kernel *k) {
    if (!k || !k->arena) return "no kernel";
    return k->arena->failure;
}

kir_kernel *kir_kernel_new(const char *name) {
    kir_kernel *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->arena = calloc(1, sizeof *k->arena);
    if (!k->arena) {
        free(k);
        return NULL;
    }
    k->name = kir_strdup(k, name);
    k->body = kir_block(k);
    if (!k->name || !k->body) {
        kir_kernel_free(k);
        return NULL;
    }
    return k;
}

void kir_kernel_free(kir_kernel *k) {
    if (!k) return;
    if (k->arena) {
        kir_chunk *c = k->arena->head;
        while (c) {
            kir_chunk *next = c->next;
            free(c);
            c = next;
        }
        free(k->arena);
    }
    free(k);
}

static int kir_name_taken(const kir_kernel *k, const char *name) {
    for (int i = 0; i < k->n_bufs; i++)
        if (strcmp(k->bufs[i].name, name) == 0) return 1;
    for (int i = 0; i < k->n_vars; i++)
        if (strcmp(k->vars[i].name, name) == 0) return 1;
    return 0;
}

int kir_add_buf(kir_kernel *k, const char *name, kf_dtype dtype, int writes) {
    if (!k) return -1;
    kir_bufdecl *b = kir_grow(k, k->bufs, k->n_bufs, &k->cap_bufs, sizeof *k->bufs);
    char *s = kir_strdup(k, name);
    if (!b || !s) {
        kir_mark_failed(k, KIR_OOM);
        return -1;
    }
    k->bufs = b;
    k->bufs[k->n_bufs] = (kir_bufdecl){s, dtype, writes ? 1 : 0};
    return k->n_bufs++;
}

int kir_add_var(kir_kernel *k, const char *hint, kir_type type) {
    if (!k) return -1;
    if (!hint || !*hint) hint = "v";
    char buf[128];
    snprintf(buf, sizeof buf, "%s", hint);
    for (int i = 1; kir_name_taken(k, buf); i++) snprintf(buf, sizeof buf, "%.100s%d", hint, i);
    kir_vardecl *v = kir_grow(k, k->vars, k->n_vars, &k->cap_vars, sizeof *k->vars);
    char *s = kir_strdup(k, buf);
    if (!v || !s) {
        kir_mark_failed(k, KIR_OOM);
        return -1;
    }
    k->vars = v;
    k->vars[k->n_vars] = (kir_vardecl){s, type};
    return k->n_vars++;
}

kir_type kir_type_of_dtype(kf_dtype dt) {
    switch (dt) {
    case KF_F32: case KF_F16: case KF_BF16: return KIR_T_F32;
    case KF_F64: return KIR_T_F64;
    case KF_I64: return KIR_T_I64;
    default: return KIR_T_I32;
    }
}

const char *kir_type_name(kir_type t) {
    switch (t) {
    case KIR_T_BOOL: return "bool";
    case KIR_T_I32: return "i32";
    case KIR_T_I64: return "i64";
    case KIR_T_F32: return "f32";
    case KIR_T_F64: return "f64";
    }
    return "?";
}

kf_kparam *kir_plan_params(const kir_kernel *k, int *n) {
    if (n) *n = 0;
    if (!k) return NULL;
    kf_kparam *p = calloc(k->n_bufs ? (size_t)k->n_bufs : 1, sizeof *p);
    if (!p) return NULL;
    for (int i = 0; i < k->n_bufs; i++) p[i] = (kf_kparam){k->bufs[i].name, KF_KP_PTR};
    if (n) *n = k->n_bufs;
    return p;
}
