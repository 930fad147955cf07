/* kf_str.h: a growable byte string, used for rendering sources, JSON and messages. */
#ifndef KF_STR_H
#define KF_STR_H

#include <stddef.h>

typedef struct kf_str {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
} kf_str;

void kf_str_init(kf_str *s);
void kf_str_free(kf_str *s);
void kf_str_clear(kf_str *s);
void kf_str_append(kf_str *s, const char *text);
void kf_str_appendn(kf_str *s, const char *text, size_t n);
void kf_str_appendf(kf_str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the buffer and leaves s empty; the caller frees it. Never NULL. */
char *kf_str_take(kf_str *s);
const char *kf_str_cstr(const kf_str *s); /* "" when empty */

char *kf_strdup(const char *s);                       /* NULL-safe strdup */
char *kf_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kf_read_file(const char *path, char **data, size_t *len); /* 0 or -errno; data NUL-terminated */
int kf_write_file(const char *path, const void *data, size_t len); /* 0 or -errno; atomic rename */
int kf_mkdirs(const char *path);                      /* mkdir -p; 0 or -errno */
/* A new unique file "<path>.tmp.<6 random characters>" (mode 0644) beside path, for write-then-rename: returns
 * its malloc'd name with *fd open for writing, or NULL with *fd = -errno. */
char *kf_open_temp_beside(const char *path, int *fd);

#endif
