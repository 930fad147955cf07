/* kf_build_util.c: what every target's build step shares: the folder of compiled artifacts
 * and the one-line head of a compiler log for error messages. */
#include "targets/kf_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kf_str.h"

char *kf_build_cache_dir(const kf_build_opts *o, const char *target) {
    if (o && o->cache_dir && *o->cache_dir) return kf_strdup(o->cache_dir);
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (x && *x) return kf_asprintf("%s/kforge/%s", x, target);
    if (home && *home) return kf_asprintf("%s/.cache/kforge/%s", home, target);
    return kf_asprintf("/tmp/kforge-cache-%ld/%s", (long)getuid(), target);
}

void kf_build_log_head(const char *log, char *buf, size_t n) {
    if (!n) return;
    buf[0] = '\0';
    if (!log) return;
    const char *start = strstr(log, "error");
    if (start) {
        while (start > log && start[-1] != '\n') start--;
    } else {
        start = log;
    }
    size_t used = 0;
    for (int lines = 0; *start && lines < 8 && used + 4 < n; lines++) {
        size_t len = strcspn(start, "\n");
        int w = snprintf(buf + used, n - used, "%s%.*s", lines ? " | " : "", (int)len, start);
        if (w < 0) break;
        used += (size_t)w;
        if (used >= n) break;
        start += len;
        if (*start == '\n') start++;
    }
}
