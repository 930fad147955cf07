/* kf_target.c: the registry of targets by name, and freeing build results. GPU targets
 * (cuda, opencl, metal) add their entries here as they land. */
#include "targets/kf_target.h"

#include <stdlib.h>
#include <string.h>

const kf_target_ops *kf_target_find(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "cpu") == 0) return kf_target_cpu();
    if (strcmp(name, "cuda") == 0) return kf_target_cuda();
    return NULL;
}

long long kf_target_flush_bytes(const kf_target_ops *t, long long flush_bytes) {
    long long dev = t && t->cache_bytes ? t->cache_bytes() : 0;
    return dev > 0 && flush_bytes < 2 * dev ? 2 * dev : flush_bytes;
}

void kf_build_free(kf_build *b) {
    if (!b) return;
    free(b->artifact);
    free(b->log);
    b->artifact = NULL;
    b->log = NULL;
    b->cached = 0;
}
