/* kf_oracle_ipc.c: the oracle requests of the device data path (case with "ipc", params_ipc,
 * release): tensors that stay in the oracle's GPU memory, described by CUDA IPC memory handles
 * (python/kforge_oracle_ipc.py). The C side only parses the descriptors; the harness's worker
 * maps the handles. */
#include "oracle/kf_oracle_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int kf_hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int kf_ipc_parse_tensor(const cJSON *it, kf_ipc_tensor *t, int i, kf_err *err) {
    memset(t, 0, sizeof *t);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
    const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "dtype"));
    const char *hex = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "handle"));
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *nb = cJSON_GetObjectItemCaseSensitive(it, "nbytes");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "offset");
    if (!name || strlen(name) >= sizeof t->name || !dt || kf_dtype_parse(dt, &t->desc.dtype) ||
        !hex || strlen(hex) != 2 * sizeof t->handle || !cJSON_IsArray(sh) ||
        cJSON_GetArraySize(sh) > KF_MAX_DIMS || !cJSON_IsNumber(nb) || nb->valuedouble < 0 ||
        !cJSON_IsNumber(off) || off->valuedouble < 0)
        return kf_fail(err, KF_E_FORMAT, "oracle ipc reply: tensor %d is malformed", i);
    snprintf(t->name, sizeof t->name, "%s", name);
    for (size_t k = 0; k < sizeof t->handle; k++) {
        int hi = kf_hex_nibble(hex[2 * k]), lo = kf_hex_nibble(hex[2 * k + 1]);
        if (hi < 0 || lo < 0) return kf_fail(err, KF_E_FORMAT, "oracle ipc reply: bad handle of %s", name);
        t->handle[k] = (unsigned char)(hi << 4 | lo);
    }
    int k = 0;
    for (const cJSON *s = sh->child; s; s = s->next, k++) {
        if (!cJSON_IsNumber(s) || s->valuedouble < 0)
            return kf_fail(err, KF_E_FORMAT, "oracle ipc reply: %s has a bad shape", name);
        t->desc.shape[k] = (int64_t)s->valuedouble;
    }
    t->desc.ndim = k;
    kf_tdesc_set_contiguous(&t->desc);
    t->nbytes = (size_t)nb->valuedouble;
    t->offset = (unsigned long long)off->valuedouble;
    if (t->nbytes != kf_tdesc_nbytes(&t->desc))
        return kf_fail(err, KF_E_FORMAT, "oracle ipc reply: %s has %zu bytes for its shape", name,
                       t->nbytes);
    return 0;
}

/* Sends req (consumed); parses an ok reply into g. */
static int kf_ipc_request(kf_oracle *o, cJSON *req, kf_ipc_group *g, kf_err *err) {
    memset(g, 0, sizeof *g);
    if (!req) return kf_fail(err, KF_E_NOMEM, "out of memory");
    void *vr = NULL;
    int rc = kf_oracle_request(o, req, &vr, err);
    cJSON_Delete(req);
    cJSON *r = vr;
    if (rc) {
        cJSON_Delete(r);
        if (rc == KF_E_ORACLE && err && !strncmp(err->msg, "f64_unavailable:", 16))
            err->code = rc = KF_E_UNAVAILABLE;
        else if (rc == KF_E_ORACLE && err && !strncmp(err->msg, "ipc_unavailable:", 16))
            err->code = rc = KF_E_UNSUPPORTED;
        return rc;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "tensors");
    if (!cJSON_IsNumber(id) || !cJSON_IsArray(ts)) {
        cJSON_Delete(r);
        return kf_fail(err, KF_E_FORMAT, "oracle ipc reply without id or tensors");
    }
    g->id = (long long)id->valuedouble;
    int n = cJSON_GetArraySize(ts);
    g->t = calloc(n ? (size_t)n : 1, sizeof *g->t);
    if (!g->t) {
        cJSON_Delete(r);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    int i = 0;
    for (const cJSON *it = ts->child; it && !rc; it = it->next, i++) rc = kf_ipc_parse_tensor(it, &g->t[i], i, err);
    g->n = i;
    cJSON_Delete(r);
    if (rc) {
        kf_err e;
        kf_oracle_release(o, g->id, &e);
        kf_ipc_group_free(g);
    }
    return rc;
}

int kf_oracle_case_ipc(kf_oracle *o, unsigned long long seed, const char *dist,
                       const char *reference, kf_ipc_group *g, kf_err *err) {
    cJSON *req = cJSON_CreateObject();
    char sd[32];
    snprintf(sd, sizeof sd, "%llu", seed);
    if (req && (!cJSON_AddStringToObject(req, "cmd", "case") || !cJSON_AddRawToObject(req, "seed", sd) ||
                !cJSON_AddStringToObject(req, "dist", dist ? dist : "default") ||
                !cJSON_AddStringToObject(req, "reference", reference ? reference : "f32") ||
                !cJSON_AddTrueToObject(req, "ipc"))) {
        cJSON_Delete(req);
        req = NULL;
    }
    return kf_ipc_request(o, req, g, err);
}

int kf_oracle_params_ipc(kf_oracle *o, kf_ipc_group *g, kf_err *err) {
    cJSON *req = cJSON_CreateObject();
    if (req && !cJSON_AddStringToObject(req, "cmd", "params_ipc")) {
        cJSON_Delete(req);
        req = NULL;
    }
    return kf_ipc_request(o, req, g, err);
}

int kf_oracle_release(kf_oracle *o, long long id, kf_err *err) {
    if (id <= 0) return 0;
    cJSON *req = cJSON_CreateObject();
    cJSON *ids = req ? cJSON_AddArrayToObject(req, "ids") : NULL;
    if (!req || !cJSON_AddStringToObject(req, "cmd", "release") || !ids ||
        !cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id))) {
        cJSON_Delete(req);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    void *r = NULL;
    int rc = kf_oracle_request(o, req, &r, err);
    cJSON_Delete(req);
    cJSON_Delete(r);
    return rc;
}

const kf_ipc_tensor *kf_ipc_find(const kf_ipc_group *g, const char *name) {
    for (int i = 0; g && i < g->n; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

void kf_ipc_group_free(kf_ipc_group *g) {
    if (!g) return;
    free(g->t);
    memset(g, 0, sizeof *g);
}

const char *kf_oracle_device(const kf_oracle *o) { return o && o->device ? o->device : "cpu"; }
