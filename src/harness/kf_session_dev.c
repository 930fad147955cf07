/* kf_session_dev.c: the device data path of a session (targets with kf_target_ops.dev, an
 * oracle on cuda). The oracle keeps a trial's inputs and references and the params in its GPU
 * memory and exports them as CUDA IPC handles; the worker maps them, stages its buffers from
 * them device-to-device, runs, and checks guards, inputs, params and outputs on the device
 * (kf_verify_dev.c). Here: deciding whether the path is on (else the host path, with the
 * reason on stderr under $KFORGE_DEBUG), the params, the groups' bookkeeping, and staging
 * the buffers once for timing. */
#include "harness/kf_session.h"

#include "core/kf_str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kf_dev_debug(void) {
    const char *d = getenv("KFORGE_DEBUG");
    return d && *d && strcmp(d, "0") != 0;
}

void kf_session_dev_off(kf_session *s, const char *why) {
    if (kf_dev_debug())
        fprintf(stderr, "kforge: harness: host data path (tensors through host memory): %s\n", why);
    if (s->dev && s->oracle && s->params_g.id) {
        kf_err e;
        kf_oracle_release(s->oracle, s->params_g.id, &e);
    }
    kf_ipc_group_free(&s->params_g);
    s->dev = 0;
}

void kf_session_dev_release(kf_session *s, kf_oracle *o, kf_ipc_group *g) {
    (void)s;
    if (g->id && o) {
        kf_err e;
        kf_oracle_release(o, g->id, &e);
    }
    kf_ipc_group_free(g);
}

int kf_ipc_as_st(const kf_ipc_group *g, kf_safetensors *st, kf_err *err) {
    memset(st, 0, sizeof *st);
    st->tensors = calloc(g->n ? (size_t)g->n : 1, sizeof *st->tensors);
    if (!st->tensors) return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    for (int i = 0; i < g->n; i++) {
        kf_st_tensor *t = &st->tensors[i];
        t->name = kf_strdup(g->t[i].name);
        if (!t->name) {
            st->n_tensors = i;
            kf_st_close(st);
            return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
        }
        t->desc = g->t[i].desc;
        t->nbytes = g->t[i].nbytes;
        t->data = NULL;
    }
    st->n_tensors = g->n;
    return 0;
}

int kf_dev_mems_add(kf_dev_mem **mems, int *n, const kf_ipc_group *g, int *base, kf_err *err) {
    *base = *n;
    if (!g->n) return 0;
    kf_dev_mem *m = realloc(*mems, (size_t)(*n + g->n) * sizeof *m);
    if (!m) return kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    *mems = m;
    for (int i = 0; i < g->n; i++) {
        kf_dev_mem *d = &m[*n + i];
        memcpy(d->handle, g->t[i].handle, KF_DEV_HANDLE_BYTES);
        d->offset = g->t[i].offset;
        d->nbytes = g->t[i].nbytes;
    }
    *n += g->n;
    return 0;
}

static int kf_program_has_params(const kf_program *p) {
    for (int i = 0; i < p->n_bufs; i++)
        if (p->bufs[i].role == KF_BUF_PARAM) return 1;
    return 0;
}

int kf_session_dev_start(kf_session *s, kf_oracle *o, kf_result *r, int *failed, kf_err *err) {
    s->dev = 0;
    s->oracle = o;
    const kf_target_ops *t = s->opt.target;
    const char *env = getenv("KFORGE_DEVICE_DATA");
    if (!t->dev) return 0; /* the host target: nothing to say */
    if (env && !strcmp(env, "0")) {
        kf_session_dev_off(s, "KFORGE_DEVICE_DATA=0");
        return 0;
    }
    if (strcmp(kf_oracle_device(o), "cuda") != 0) {
        char why[128];
        snprintf(why, sizeof why, "the oracle runs on %s, not cuda", kf_oracle_device(o));
        kf_session_dev_off(s, why);
        return 0;
    }
    kf_err e;
    kf_err_clear(&e);
    if (kf_program_has_params(s->p) && kf_oracle_params_ipc(o, &s->params_g, &e) != 0) {
        char why[1200];
        snprintf(why, sizeof why, "the oracle cannot export the params: %s", e.msg);
        kf_session_dev_off(s, why);
        return 0;
    }
    s->dev = 1;
    /* the worker maps the params and loads its checks: does the path work here? */
    kf_dev_mem *mems = NULL;
    int n = 0, base = 0, unavailable = 0;
    int rc = kf_dev_mems_add(&mems, &n, &s->params_g, &base, err);
    if (rc) {
        free(mems);
        return rc;
    }
    kf_dev_request q = {0, mems, n, NULL, 0, NULL, 0};
    kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
    char why[600];
    rc = kf_worker_dev(&s->worker, &q, NULL, &unavailable, why, sizeof why, &oc, err);
    free(mems);
    if (rc) {
        kf_outcome_clear(&oc);
        return rc;
    }
    if (oc.status != KF_ST_VERIFIED) {
        kf_result_from_outcome(r, &oc);
        kf_outcome_clear(&oc);
        *failed = 1;
        return 0;
    }
    if (unavailable) {
        char msg[700];
        snprintf(msg, sizeof msg, "the worker cannot use the oracle's GPU memory: %s", why);
        kf_session_dev_off(s, msg);
    } else if (kf_dev_debug()) {
        fprintf(stderr, "kforge: harness: device data path (CUDA IPC from the oracle, checks on "
                        "the device)\n");
    }
    return 0;
}

/* src[buf] for a request's mems: the case's inputs (case_base) and the params (params_base).
 * KF_E_INVALID (the arena's message) when a buffer has no fitting tensor. */
static int kf_dev_sources(const kf_session *s, const kf_safetensors *cst, const kf_safetensors *pst,
                          int case_base, int params_base, int *src, kf_err *err) {
    const kf_program *p = s->p;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_st_tensor *t;
        src[i] = -1;
        int rc = kf_arena_source(p, i, cst, pst, &t, err);
        if (rc) return rc;
        if (!t) continue;
        if (p->bufs[i].role == KF_BUF_INPUT) src[i] = case_base + (int)(t - cst->tensors);
        else src[i] = params_base + (int)(t - pst->tensors);
    }
    return 0;
}

int kf_dev_plan_sources(const kf_session *s, const kf_ipc_group *cg, kf_dev_mem **mems, int *n,
                        int *src, kf_safetensors *cst, int *bad, kf_err *err) {
    *bad = 0;
    kf_safetensors pst;
    int case_base = 0, params_base = 0;
    int rc = kf_ipc_as_st(cg, cst, err);
    if (rc) return rc;
    rc = kf_ipc_as_st(&s->params_g, &pst, err);
    if (rc) return rc;
    if (!rc) rc = kf_dev_mems_add(mems, n, cg, &case_base, err);
    if (!rc) rc = kf_dev_mems_add(mems, n, &s->params_g, &params_base, err);
    if (!rc) {
        kf_err e;
        kf_err_clear(&e);
        if (kf_dev_sources(s, cst, &pst, case_base, params_base, src, &e) != 0) {
            *bad = 1;
            if (err) *err = e;
        }
    }
    kf_st_close(&pst);
    return rc;
}

int kf_session_dev_stage(kf_session *s, kf_oracle *o, unsigned long long seed, kf_result *r,
                         int *failed, int *fallback, kf_err *err) {
    *fallback = 0;
    kf_ipc_group cg;
    kf_err e;
    kf_err_clear(&e);
    int rc = kf_oracle_case_ipc(o, seed, "default", "f32", &cg, &e);
    if (rc == KF_E_UNSUPPORTED) {
        kf_session_dev_off(s, e.msg);
        *fallback = 1;
        return 0;
    }
    if (rc) {
        if (err) *err = e;
        return kf_err_prefix(err, "harness: timing inputs");
    }
    kf_dev_mem *mems = NULL;
    int n = 0, bad = 0;
    int *src = calloc(s->p->n_bufs ? (size_t)s->p->n_bufs : 1, sizeof *src);
    kf_safetensors cst;
    memset(&cst, 0, sizeof cst);
    if (!src) rc = kf_fail(err, KF_E_NOMEM, "harness: out of memory");
    if (!rc) rc = kf_dev_plan_sources(s, &cg, &mems, &n, src, &cst, &bad, &e);
    if (!rc && bad) {
        kf_result_set(r, KF_ST_INVALID, "invalid program: %s", e.msg);
        *failed = 1;
    } else if (rc) {
        if (err) *err = e;
    } else {
        kf_dev_request q = {KF_DEV_STAGE, mems, n, src, s->p->n_bufs, NULL, 0};
        kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
        int unavailable = 0;
        char why[600];
        rc = kf_worker_dev(&s->worker, &q, NULL, &unavailable, why, sizeof why, &oc, err);
        if (!rc && oc.status != KF_ST_VERIFIED) {
            kf_result_from_outcome(r, &oc);
            *failed = 1;
        } else if (!rc && unavailable) {
            kf_session_dev_off(s, why);
            *fallback = 1;
        }
        kf_outcome_clear(&oc);
    }
    kf_st_close(&cst);
    free(mems);
    free(src);
    kf_session_dev_release(s, o, &cg);
    return rc;
}
