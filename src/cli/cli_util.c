/* cli_util.c: option parsing helpers, the private work folder and the default cache path. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/kf_cli.h"

volatile sig_atomic_t kf_cli_interrupted = 0;

const char *kf_cli_value(int argc, char **argv, int *i, const char *name) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != 0) return NULL;
    if (*i + 1 >= argc) return NULL;
    (*i)++;
    return argv[*i];
}

int kf_cli_int(const char *s, int *out) {
    if (!s || !*s) return -1;
    char *end; errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

int kf_cli_double(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end; errno = 0;
    double v = strtod(s, &end);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

char *kf_cli_mkworkdir(void) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    char *path = NULL;
    if (asprintf(&path, "%s/kforge-XXXXXX", tmp) < 0) return NULL;
    if (!mkdtemp(path)) { free(path); return NULL; }
    return path;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(p);
    return 0;
}

void kf_cli_rmtree(const char *path) {
    if (path && *path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *kf_cli_default_cache(char *buf, int n) {
    const char *env = getenv("KFORGE_CACHE");
    if (env && *env) { snprintf(buf, n, "%s", env); return buf; }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) { snprintf(buf, n, "%s/kforge", xdg); return buf; }
    const char *home = getenv("HOME");
    snprintf(buf, n, "%s/.cache/kforge", home && *home ? home : "/tmp");
    return buf;
}
