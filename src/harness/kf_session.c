/* kf_session.c: the common start of verifying and timing a program: resolve the options,
 * validate, build (in the parent), map the arena and the params, start the worker; and the
 * matching teardown. */
#include "harness/kf_session.h"
#include "core/kf_str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KF_GIB (1024LL * 1024LL * 1024LL)

void kf_result_set(kf_result *r, kf_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0) m = NULL;
    va_end(ap);
    free(r->message);
    r->message = m;
    r->status = st;
}

void kf_result_from_outcome(kf_result *r, const kf_outcome *oc) {
    kf_result_set(r, oc->status, "%s", oc->message ? oc->message : kf_status_name(oc->status));
    r->signal = oc->signal;
}

static double kf_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int kf_session_workdir(kf_session *s, kf_err *err) {
    if (s->opt.workdir && s->opt.workdir[0]) {
        if (kf_mkdirs(s->opt.workdir) != 0)
            return kf_fail(err, KF_E_IO, "harness: cannot create workdir %s", s->opt.workdir);
        s->workdir = kf_strdup(s->opt.workdir);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    char pattern[7]; /* mkdtemp's six placeholder characters */
    memset(pattern, 'X', 6);
    pattern[6] = '\0';
    char *tmpl = kf_asprintf("%s/kforge-harness-%s", tmp && tmp[0] ? tmp : "/tmp", pattern);
    if (!tmpl || !mkdtemp(tmpl)) {
        free(tmpl);
        return kf_fail(err, KF_E_IO, "harness: cannot create a private temporary folder");
    }
    s->workdir = tmpl;
    s->own_workdir = 1;
    return 0;
}

char *kf_session_case_path(kf_session *s) {
    return kf_asprintf("%s/hcase-%d-%d.safetensors", s->workdir, (int)getpid(), s->case_counter++);
}

static void kf_session_resolve(kf_session *s, const kf_harness_opts *opt) {
    s->opt = *opt;
    if (s->opt.trials < 1) s->opt.trials = 5;
    if (s->opt.timed_runs < 1) s->opt.timed_runs = 20;
    if (s->opt.rounds < 1) s->opt.rounds = 1;
    if (s->opt.warmup < 0) s->opt.warmup = 0;
    if (s->opt.run_timeout_s <= 0) s->opt.run_timeout_s = 30;
    if (s->opt.flush_bytes <= 0) s->opt.flush_bytes = kf_harness_default_flush_bytes();
    if (s->opt.build.threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        s->opt.build.threads = cpus > 0 ? (int)cpus : 1;
    }
}

int kf_session_open(kf_session *s, const kf_graph *g, const char *params_file,
                    const kf_program *p, const kf_harness_opts *opt, kf_result *r, int *ready,
                    kf_err *err) {
    memset(s, 0, sizeof *s);
    s->worker.sock = s->worker.out_fd = -1;
    s->p = p;
    *ready = 0;
    kf_session_resolve(s, opt);
    const kf_target_ops *t = s->opt.target;
    if (!t) {
        kf_fail(err, KF_E_INTERNAL, "harness: no target given");
        kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
        return err->code;
    }
    kf_err e;
    kf_err_clear(&e);
    if (kf_program_validate(p, g, &e) != 0) {
        kf_result_set(r, KF_ST_INVALID, "invalid program: %s", e.msg);
        return 0;
    }
    if (p->target && strcmp(p->target, t->name) != 0) {
        kf_result_set(r, KF_ST_INVALID, "invalid program: it is for target '%s', not '%s'",
                      p->target, t->name);
        return 0;
    }
    if (t->available && t->available(&e) != 0) {
        kf_fail(err, e.code ? e.code : KF_E_UNAVAILABLE, "target %s is not available here: %s",
                t->name, e.msg);
        kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
        return err->code;
    }
    double t0 = kf_wall_s();
    int rc = t->build(p, &s->opt.build, &s->build, &e);
    r->build_s = kf_wall_s() - t0;
    if (rc != 0) {
        if (rc == KF_E_COMPILE || rc == KF_E_TIMEOUT) {
            const char *log = s->build.log && s->build.log[0] ? s->build.log : e.msg;
            kf_result_set(r, KF_ST_COMPILE_ERROR, "compile error%s:\n%s",
                          rc == KF_E_TIMEOUT ? " (the compiler timed out)" : "", log);
        } else if (rc == KF_E_UNSUPPORTED) {
            kf_result_set(r, KF_ST_UNSUPPORTED, "unsupported: %s", e.msg);
        } else if (rc == KF_E_INVALID || rc == KF_E_FORMAT) {
            kf_result_set(r, KF_ST_INVALID, "invalid program: %s", e.msg);
        } else {
            kf_build_free(&s->build);
            kf_fail(err, rc, "building the program failed: %s", e.msg);
            kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
            return rc;
        }
        kf_build_free(&s->build);
        return 0;
    }
    s->built = 1;
    rc = kf_session_workdir(s, err);
    if (!rc && params_file && params_file[0]) {
        rc = kf_st_open(params_file, &s->params, err);
        if (!rc) s->params_open = 1;
        else kf_err_prefix(err, "harness: params file %s", params_file);
    }
    if (!rc) rc = kf_arena_create(&s->arena, p, err);
    if (rc) {
        kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
        return rc;
    }
    if (s->opt.mem_limit <= 0) s->opt.mem_limit = 4 * KF_GIB + (long long)kf_arena_bytes(&s->arena);
    s->hidden = kf_harness_hidden_base(s->opt.seed);
    kf_worker_limits lim = {s->opt.run_timeout_s, s->opt.mem_limit, s->opt.flush_bytes,
                            s->opt.build.threads};
    kf_outcome oc = {KF_ST_VERIFIED, 0, NULL};
    rc = kf_worker_start(&s->worker, t, p, &s->build, &s->opt.build, &s->arena, &lim, &oc, err);
    if (rc) {
        kf_outcome_clear(&oc);
        kf_result_set(r, KF_ST_ERROR, "%s", err->msg);
        return rc;
    }
    if (oc.status != KF_ST_VERIFIED) {
        kf_result_from_outcome(r, &oc);
        kf_outcome_clear(&oc);
        return 0;
    }
    s->worker_up = 1;
    *ready = 1;
    return 0;
}

void kf_session_close(kf_session *s) {
    kf_worker_stop(&s->worker);
    s->worker_up = 0;
    if (s->params_g.id) kf_session_dev_release(s, s->oracle, &s->params_g);
    kf_ipc_group_free(&s->params_g);
    s->dev = 0;
    if (s->arena.map || s->arena.slots) kf_arena_destroy(&s->arena);
    if (s->params_open) kf_st_close(&s->params);
    s->params_open = 0;
    if (s->built) kf_build_free(&s->build);
    s->built = 0;
    if (s->own_workdir && s->workdir) rmdir(s->workdir);
    free(s->workdir);
    s->workdir = NULL;
}
