/* cmd_bench.c: `kforge bench PATH...`: argument parsing for the main job (src/bench). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench/kf_bench.h"
#include "cli/kf_cli.h"
#include "core/kf_str.h"

int kf_cmd_bench(int argc, char **argv) {
    kf_bench_opts o;
    kf_bench_opts_default(&o);
    kf_cli_harness_defaults(&o.harness);
    char cache[1024];
    o.harness.build.cache_dir = kf_cli_default_cache(cache, sizeof cache);
    const char **paths = calloc(argc, sizeof(char *));
    int n_paths = 0, quiet = 0;
    kf_str cmdline; kf_str_init(&cmdline);
    kf_str_append(&cmdline, "kforge");
    for (int i = 0; i < argc; i++) kf_str_appendf(&cmdline, " %s", argv[i]);
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = kf_cli_harness_opt(argc, argv, &i, &o.harness);
        if (r < 0) { free(paths); kf_str_free(&cmdline); return 2; }
        if (r > 0) continue;
        if ((v = kf_cli_value(argc, argv, &i, "--target"))) o.target = v;
        else if ((v = kf_cli_value(argc, argv, &i, "--agents"))) o.agents = v;
        else if ((v = kf_cli_value(argc, argv, &i, "--json"))) o.json_out = v;
        else if ((v = kf_cli_value(argc, argv, &i, "--db"))) o.db_path = v;
        else if ((v = kf_cli_value(argc, argv, &i, "--attempts"))) {
            if (kf_cli_int(v, &o.attempts) || o.attempts < 1 || o.attempts > 100) {
                fprintf(stderr, "kforge bench: --attempts takes 1..100\n");
                free(paths); kf_str_free(&cmdline); return 2;
            }
        }
        else if ((v = kf_cli_value(argc, argv, &i, "--llm-context"))) o.llm_context_target = v;
        else if (!strcmp(argv[i], "--llm-profile")) o.llm_profile = 1;
        else if ((v = kf_cli_value(argc, argv, &i, "--budget"))) {
            if (kf_cli_double(v, &o.budget_s) || o.budget_s <= 0) {
                fprintf(stderr, "kforge bench: --budget takes seconds > 0\n");
                free(paths); kf_str_free(&cmdline); return 2;
            }
        }
        else if (!strcmp(argv[i], "--resume")) o.resume = 1;
        else if (!strcmp(argv[i], "--no-compile")) o.with_compile = 0;
        else if (!strcmp(argv[i], "--time-defaults")) o.time_defaults = 1;
        else if (!strcmp(argv[i], "--no-time-defaults")) o.time_defaults = 0;
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "kforge bench: unknown option %s (see kforge help)\n", argv[i]);
            free(paths); kf_str_free(&cmdline); return 2;
        }
        else paths[n_paths++] = argv[i];
    }
    if (n_paths == 0) {
        fprintf(stderr, "usage: kforge bench PATH... [--target cpu] [--agents search] [--json OUT]\n");
        free(paths); kf_str_free(&cmdline); return 2;
    }
    o.command_line = cmdline.data;
    o.tty = isatty(fileno(stdout));
    o.verbose = !quiet;
    o.stop = &kf_cli_interrupted;
    kf_cli_install_signals();
    kf_err err = {0};
    int rc = kf_bench_run(paths, n_paths, &o, &err);
    if (rc) fprintf(stderr, "kforge bench: %s\n", err.msg);
    free(paths);
    kf_str_free(&cmdline);
    if (kf_cli_interrupted) return 130;
    return rc ? 2 : 0;
}
