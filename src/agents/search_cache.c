/* search_cache.c: the search agent's persistent schedule cache, one line per problem
 * signature ("SIG<TAB>KEY<TAB>MS"), so a later run starts from the best schedule found for
 * the same graph, target and CPU. The signature hashes the graph's ops, attributes, dtypes
 * and shapes (not names), the target, the CPU model and the schedule-key version. Writes go
 * through a temporary file and a rename, so a reader never sees half a file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agents/search.h"
#include "core/kf_str.h"

#define KF_SEARCH_VERSION "search-v3"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t fnv_s(uint64_t h, const char *s) { return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1); }
static uint64_t fnv_i(uint64_t h, int64_t v) { return fnv(h, &v, sizeof v); }

static uint64_t hash_args(uint64_t h, const kf_arg *a, int n) {
    for (int i = 0; i < n; i++) {
        h = fnv_s(h, a[i].name);
        h = fnv_i(h, a[i].kind);
        switch (a[i].kind) {
        case KF_ARG_TENSOR: h = fnv_i(h, a[i].tensor); break;
        case KF_ARG_INT: case KF_ARG_BOOL: h = fnv_i(h, a[i].i); break;
        case KF_ARG_FLOAT: h = fnv(h, &a[i].f, sizeof a[i].f); break;
        case KF_ARG_STR: h = fnv_s(h, a[i].s); break;
        case KF_ARG_LIST: h = hash_args(h, a[i].items, a[i].n_items); break;
        default: break;
        }
    }
    return h;
}

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, n, "%s", c + 1);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    }
    fclose(f);
}

void kf_search_signature(const kf_graph *g, const char *target, char out[17]) {
    uint64_t h = 14695981039346656037ULL;
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    h = fnv_s(h, KF_SEARCH_VERSION);
    h = fnv_s(h, target);
    h = fnv_s(h, cpu);
    for (int v = 0; v < g->n_values; v++) {
        const kf_tdesc *d = &g->values[v].desc;
        h = fnv_i(h, d->dtype);
        h = fnv_i(h, d->ndim);
        for (int j = 0; j < d->ndim; j++) h = fnv_i(h, d->shape[j]);
        h = fnv_i(h, g->values[v].kind);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const kf_node *n = &g->nodes[i];
        h = fnv_s(h, n->op);
        h = hash_args(h, n->args, n->n_args);
        for (int j = 0; j < n->n_outs; j++) h = fnv_i(h, n->outs[j]);
    }
    for (int i = 0; i < g->n_inputs; i++) h = fnv_i(h, g->inputs[i]);
    for (int i = 0; i < g->n_params; i++) h = fnv_i(h, g->params[i]);
    for (int i = 0; i < g->n_outputs; i++) h = fnv_i(h, g->outputs[i]);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

char *kf_search_cache_path(const char *configured) {
    if (configured) return *configured ? kf_strdup(configured) : NULL;
    const char *env = getenv("KFORGE_CACHE");   /* kforge's cache folder */
    if (env && *env) return kf_asprintf("%s/schedules.tsv", env);
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    return kf_asprintf("%s/.cache/kforge/schedules.tsv", home);
}

/* Finds sig's line; returns a pointer to its start and its length. */
static const char *find_line(const char *text, const char *sig, size_t *len) {
    size_t sl = strlen(sig);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > sl && strncmp(p, sig, sl) == 0 && p[sl] == '\t') {
            *len = n;
            return p;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

int kf_search_cache_get(const char *path, const char *sig, char **key, double *ms) {
    *key = NULL;
    if (!path) return 0;
    char *text = NULL;
    size_t tl = 0;
    if (kf_read_file(path, &text, &tl)) return 0;
    size_t n = 0;
    const char *l = find_line(text, sig, &n);
    int found = 0;
    if (l) {
        const char *k = l + strlen(sig) + 1;
        const char *tab = memchr(k, '\t', n - (size_t)(k - l));
        if (tab && tab > k) {
            *key = kf_asprintf("%.*s", (int)(tab - k), k);
            *ms = strtod(tab + 1, NULL);
            found = *key != NULL;
        }
    }
    free(text);
    return found;
}

static int ensure_dir(const char *path) {
    char *dir = kf_strdup(path);
    if (!dir) return -ENOMEM;
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        rc = kf_mkdirs(dir);
    }
    free(dir);
    return rc;
}

int kf_search_cache_put(const char *path, const char *sig, const char *key, double ms, kf_err *err) {
    if (!path) return 0;
    if (strchr(key, '\t') || strchr(key, '\n')) return kf_fail(err, KF_E_INVALID, "schedule cache: bad key");
    char *text = NULL;
    size_t tl = 0;
    if (kf_read_file(path, &text, &tl)) text = NULL;
    kf_str out;
    kf_str_init(&out);
    size_t n = 0;
    const char *l = text ? find_line(text, sig, &n) : NULL;
    if (l) {
        const char *k = l + strlen(sig) + 1;
        const char *tab = memchr(k, '\t', n - (size_t)(k - l));
        double old = tab ? strtod(tab + 1, NULL) : 0;
        int same = tab && (size_t)(tab - k) == strlen(key) && strncmp(k, key, strlen(key)) == 0;
        if (old > 0 && ms >= old && !same) {
            free(text);
            kf_str_free(&out);
            return 0;
        }
        kf_str_appendn(&out, text, (size_t)(l - text));
        const char *rest = l + n;
        if (*rest == '\n') rest++;
        kf_str_append(&out, rest);
    } else if (text) {
        kf_str_append(&out, text);
    }
    if (out.len && kf_str_cstr(&out)[out.len - 1] != '\n') kf_str_append(&out, "\n");
    kf_str_appendf(&out, "%s\t%s\t%.6f\n", sig, key, ms);
    free(text);
    int rc = ensure_dir(path);
    if (!rc) rc = kf_write_file(path, kf_str_cstr(&out), out.len);
    kf_str_free(&out);
    if (rc) return kf_fail(err, KF_E_IO, "schedule cache %s: cannot write (%s)", path, strerror(-rc));
    return 0;
}
