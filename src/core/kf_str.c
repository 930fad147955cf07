/* kf_str.c: growable strings plus small file helpers (read whole file, atomic write, mkdir -p). */
#include "core/kf_str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void kf_str_init(kf_str *s) {
    s->data = NULL;
    s->len = 0;
    s->cap = 0;
}

void kf_str_free(kf_str *s) {
    free(s->data);
    kf_str_init(s);
}

void kf_str_clear(kf_str *s) {
    s->len = 0;
    if (s->data) s->data[0] = '\0';
}

static void kf_str_reserve(kf_str *s, size_t extra) {
    size_t need = s->len + extra + 1;
    if (need <= s->cap) return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(s->data, cap);
    if (!p) abort(); /* out of memory while building a string: nothing sensible to return */
    s->data = p;
    s->cap = cap;
}

void kf_str_appendn(kf_str *s, const char *text, size_t n) {
    kf_str_reserve(s, n);
    if (n) memcpy(s->data + s->len, text, n);
    s->len += n;
    s->data[s->len] = '\0';
}

void kf_str_append(kf_str *s, const char *text) {
    if (!text) text = "";
    kf_str_appendn(s, text, strlen(text));
}

void kf_str_appendf(kf_str *s, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        kf_str_reserve(s, 0);
        return;
    }
    kf_str_reserve(s, (size_t)n);
    vsnprintf(s->data + s->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    s->len += (size_t)n;
}

char *kf_str_take(kf_str *s) {
    char *p = s->data;
    if (!p) {
        p = malloc(1);
        if (!p) abort();
        p[0] = '\0';
    }
    kf_str_init(s);
    return p;
}

const char *kf_str_cstr(const kf_str *s) { return s->data ? s->data : ""; }

char *kf_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n + 1);
    return p;
}

char *kf_asprintf(const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return NULL;
    }
    char *p = malloc((size_t)n + 1);
    if (p) vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

int kf_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    kf_str s;
    kf_str_init(&s);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kf_str_appendn(&s, buf, n);
    int rc = ferror(f) ? -(errno ? errno : EIO) : 0;
    fclose(f);
    if (rc) {
        kf_str_free(&s);
        return rc;
    }
    if (len) *len = s.len;
    *data = kf_str_take(&s);
    return 0;
}

/* Creates a unique temp file next to path (same folder, so rename is atomic), mode 0644.
 * Returns its malloc'd name with *fd open for writing, or NULL with *fd = -errno. */
char *kf_open_temp_beside(const char *path, int *fd) {
    char *tmp = kf_asprintf("%s.tmp.------", path);
    if (!tmp) {
        *fd = -ENOMEM;
        return NULL;
    }
    memset(tmp + strlen(tmp) - 6, 'X', 6); /* the mkostemp template */
    *fd = mkostemp(tmp, O_CLOEXEC);
    if (*fd < 0) {
        *fd = -errno;
        free(tmp);
        return NULL;
    }
    if (fchmod(*fd, 0644) != 0) { /* mkstemp makes 0600; results are meant to be shared */
        int e = -errno;
        close(*fd);
        unlink(tmp);
        free(tmp);
        *fd = e;
        return NULL;
    }
    return tmp;
}

int kf_write_file(const char *path, const void *data, size_t len) {
    int fd = -1;
    char *tmp = kf_open_temp_beside(path, &fd);
    if (!tmp) return fd;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            close(fd);
            unlink(tmp);
            free(tmp);
            return e;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = -errno;
        unlink(tmp);
        free(tmp);
        return e;
    }
    if (rename(tmp, path) != 0) {
        int e = -errno;
        unlink(tmp);
        free(tmp);
        return e;
    }
    free(tmp);
    return 0;
}

int kf_mkdirs(const char *path) {
    if (!path || !*path) return -EINVAL;
    char *p = kf_strdup(path);
    if (!p) return -ENOMEM;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = -errno;
            free(p);
            return e;
        }
        *c = '/';
    }
    int rc = 0;
    if (mkdir(p, 0755) != 0) {
        if (errno == EEXIST) {
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) rc = -ENOTDIR;
        } else {
            rc = -errno;
        }
    }
    free(p);
    return rc;
}
