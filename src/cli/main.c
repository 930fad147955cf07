/* main.c: the kforge binary: dispatches sub-commands (check, bench, show, version, help). */
#include <stdio.h>
#include <string.h>
#include "cli/kf_cli.h"
#include "llm/kf_llm.h"

#define KF_VERSION "0.1.0"

static void usage(FILE *f) {
    fprintf(f,
        "kforge %s: generate, verify and time kernels for PyTorch modules\n\n"
        "usage:\n"
        "  kforge bench PATH... [--target cpu] [--agents search] [--attempts 5] [--json OUT.json]\n"
        "                       [--db FILE] [--resume] [--threads N] [--no-compile] [--quiet]\n"
        "                       [--time-defaults | --no-time-defaults]\n"
        "                       [--llm-context TARGET] [--llm-profile]\n"
        "      run every KernelBench-format problem under PATH (files or folders) through the\n"
        "      agents, verify and time the candidates, keep the fastest verified one\n"
        "  kforge check PROBLEM.py PROGRAM_DIR [--target cpu] [--threads N] [--no-time]\n"
        "      verify and time one kernel program (plan.json + sources) against PyTorch\n"
        "  kforge show DB PROBLEM\n"
        "      print the winning kernel sources and plan for a problem from a store\n"
        "  kforge version\n\n"
        "common options: --trials N (>=5) --runs N (>=20) --atol X --rtol X --timeout S\n"
        "                --mem-limit MiB --cache DIR\n"
        "environment: KFORGE_PYTHON (oracle interpreter), KFORGE_CC (C compiler),\n"
        "             KFORGE_CACHE (compiled-kernel cache)\n", KF_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    kf_err err = {0};
    if (kf_llm_global_init(&err)) {
        fprintf(stderr, "kforge: %s\n", err.msg);
        return 2;
    }
    if (!strcmp(cmd, "bench")) return kf_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return kf_cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "show")) return kf_cmd_show(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) { printf("kforge %s\n", KF_VERSION); return 0; }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "kforge: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
