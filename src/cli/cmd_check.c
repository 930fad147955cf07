/* cmd_check.c: `kforge check PROBLEM.py PROGRAM_DIR`: verify one kernel program against the
 * PyTorch oracle with the full verification protocol, time it against eager (and
 * torch.compile where available) in the same run, and print the result. Exit 0 if verified,
 * 1 for any other candidate status, 2 for usage or setup errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/kf_cli.h"
#include "harness/kf_harness.h"
#include "ir/kf_program.h"
#include "oracle/kf_oracle.h"

static void print_result(const kf_result *r) {
    printf("status: %s\n", kf_status_name(r->status));
    if (r->message && *r->message) printf("message: %s\n", r->message);
    if (r->status == KF_ST_MISMATCH && r->index >= 0)
        printf("worst: trial %d output %d element %lld: got %.9g expected %.9g\n", r->trial,
               r->output, r->index, r->got, r->expected);
    if (r->degenerate) printf("note: degenerate problem (reference does not depend on inputs)\n");
    if (r->ms > 0) {
        printf("kforge:  %.4f ms (min %.4f, max %.4f)\n", r->ms, r->min_ms, r->max_ms);
        if (r->eager_ms > 0)
            printf("eager:   %.4f ms   speedup %.3fx\n", r->eager_ms, r->eager_ms / r->ms);
        if (r->compile_ms > 0)
            printf("compile: %.4f ms   speedup %.3fx\n", r->compile_ms, r->compile_ms / r->ms);
        else if (r->compile_ms < 0)
            printf("compile: unavailable in this torch\n");
    }
}

int kf_cmd_check(int argc, char **argv) {
    const char *problem = NULL, *progdir = NULL, *target_name = "cpu";
    int do_time = 1, with_compile = 1;
    kf_harness_opts ho;
    kf_cli_harness_defaults(&ho);
    char cache[1024];
    ho.build.cache_dir = kf_cli_default_cache(cache, sizeof cache);
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = kf_cli_harness_opt(argc, argv, &i, &ho);
        if (r < 0) return 2;
        if (r > 0) continue;
        if ((v = kf_cli_value(argc, argv, &i, "--target"))) target_name = v;
        else if (!strcmp(argv[i], "--no-time")) do_time = 0;
        else if (!strcmp(argv[i], "--no-compile")) with_compile = 0;
        else if (argv[i][0] == '-') { fprintf(stderr, "kforge check: unknown option %s\n", argv[i]); return 2; }
        else if (!problem) problem = argv[i];
        else if (!progdir) progdir = argv[i];
        else { fprintf(stderr, "kforge check: unexpected argument %s\n", argv[i]); return 2; }
    }
    if (!problem || !progdir) {
        fprintf(stderr, "usage: kforge check PROBLEM.py PROGRAM_DIR [--target cpu] [--no-time]\n");
        return 2;
    }
    const kf_target_ops *target = kf_target_find(target_name);
    if (!target) { fprintf(stderr, "kforge check: unknown target '%s'\n", target_name); return 2; }
    ho.target = target;
    kf_err err = {0};
    if (target->available(&err)) {
        fprintf(stderr, "kforge check: target %s unavailable: %s\n", target_name, err.msg);
        return 2;
    }
    if (ho.build.threads <= 0) ho.build.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    ho.flush_bytes = kf_target_flush_bytes(target, ho.flush_bytes);

    kf_program prog;
    memset(&prog, 0, sizeof prog);
    if (kf_program_load(progdir, &prog, &err)) {
        printf("status: %s\nmessage: %s\n", kf_status_name(KF_ST_INVALID), err.msg);
        return 1;
    }
    char *work = kf_cli_mkworkdir();
    if (!work) { fprintf(stderr, "kforge check: cannot create a temporary folder\n"); return 2; }
    ho.workdir = work;
    kf_cli_install_signals();

    int rc = 2;
    kf_oracle *o = NULL;
    kf_oracle_opts oo = {0};
    oo.workdir = work; oo.threads = ho.build.threads; oo.device = "cpu";
    kf_graph g; memset(&g, 0, sizeof g);
    char *params_file = NULL;
    kf_oracle_info info;
    kf_result res; memset(&res, 0, sizeof res);
    if (kf_oracle_start(&oo, &o, &err) || kf_oracle_load(o, problem, 1, &info, &err) ||
        kf_oracle_graph(o, &g, &params_file, &err)) {
        fprintf(stderr, "kforge check: %s: %s\n", problem, err.msg);
        goto done;
    }
    printf("problem: %s\nprogram: %s (target %s)\ntorch %s, %s, %d threads, %s\n", problem, progdir,
           target_name, info.torch_version, info.blas, info.threads, info.device);
    if (kf_harness_verify(o, &g, params_file, &prog, &ho, &res, &err)) {
        fprintf(stderr, "kforge check: harness error: %s\n", err.msg);
        goto done;
    }
    if (res.status == KF_ST_VERIFIED && do_time &&
        kf_harness_time(o, &g, params_file, &prog, &ho, 1, with_compile, &res, &err)) {
        fprintf(stderr, "kforge check: timing failed: %s\n", err.msg);
        goto done;
    }
    print_result(&res);
    rc = res.status == KF_ST_VERIFIED ? 0 : 1;
done:
    kf_result_free(&res);
    free(params_file);
    kf_graph_free(&g);
    if (o) kf_oracle_stop(o);
    kf_program_free(&prog);
    kf_cli_rmtree(work);
    free(work);
    return rc;
}
