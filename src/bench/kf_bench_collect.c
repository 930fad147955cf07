/* kf_bench_collect.c: finds problem files under the paths given to `kforge bench`. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "bench/kf_bench.h"
#include "core/kf_str.h"

typedef struct { char **v; int n, cap; } strvec;

static void push(strvec *s, char *p) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, sizeof(char *) * s->cap);
    }
    s->v[s->n++] = p;
}

static int skip_name(const char *name) {
    return name[0] == '.' || name[0] == '_';
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(const char *dir, strvec *out, int depth, kf_err *err) {
    if (depth > 16) return 0;
    DIR *d = opendir(dir);
    if (!d) return kf_fail(err, KF_E_IO, "cannot read folder %s: %s", dir, strerror(errno));
    strvec names = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (skip_name(e->d_name)) continue;
        push(&names, kf_strdup(e->d_name));
    }
    closedir(d);
    if (names.n) qsort(names.v, names.n, sizeof(char *), cmp_str);
    int rc = 0;
    for (int i = 0; i < names.n; i++) {
        char *p = kf_asprintf("%s/%s", dir, names.v[i]);
        struct stat st;
        if (!rc && stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode)) rc = walk(p, out, depth + 1, err);
            else if (S_ISREG(st.st_mode) && ends_with(names.v[i], ".py")) { push(out, p); p = NULL; }
        }
        free(p);
        free(names.v[i]);
    }
    free(names.v);
    return rc;
}

int kf_bench_collect(const char *const *paths, int n_paths, char ***files, kf_err *err) {
    strvec out = {0};
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st)) {
            for (int j = 0; j < out.n; j++) free(out.v[j]);
            free(out.v);
            return kf_fail(err, KF_E_IO, "%s: %s", paths[i], strerror(errno));
        }
        if (S_ISDIR(st.st_mode)) {
            size_t len = strlen(paths[i]);
            char *dir = kf_strdup(paths[i]);
            while (len > 1 && dir[len - 1] == '/') dir[--len] = 0;
            int rc = walk(dir, &out, 0, err);
            free(dir);
            if (rc) {
                for (int j = 0; j < out.n; j++) free(out.v[j]);
                free(out.v);
                return rc;
            }
        } else {
            push(&out, kf_strdup(paths[i]));
        }
    }
    *files = out.v;
    return out.n;
}
