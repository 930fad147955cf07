/* cli_opts.c: harness options shared by `check` and `bench`, and the Ctrl-C handler. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/kf_cli.h"
#include "harness/kf_harness.h"

static int bad(const char *opt, const char *v) {
    fprintf(stderr, "kforge: bad value for %s: '%s'\n", opt, v ? v : "(missing)");
    return -1;
}

int kf_cli_harness_opt(int argc, char **argv, int *i, kf_harness_opts *o) {
    const char *v;
    int iv; double dv;
    if ((v = kf_cli_value(argc, argv, i, "--trials"))) {
        if (kf_cli_int(v, &iv) || iv < 5) return bad("--trials (at least 5)", v);
        o->trials = iv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--runs"))) {
        if (kf_cli_int(v, &iv) || iv < 20) return bad("--runs (at least 20)", v);
        o->timed_runs = iv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--warmup"))) {
        if (kf_cli_int(v, &iv) || iv < 0) return bad("--warmup", v);
        o->warmup = iv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--rounds"))) {
        if (kf_cli_int(v, &iv) || iv < 1) return bad("--rounds", v);
        o->rounds = iv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--atol"))) {
        if (kf_cli_double(v, &dv) || dv < 0) return bad("--atol", v);
        o->atol = dv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--rtol"))) {
        if (kf_cli_double(v, &dv) || dv < 0) return bad("--rtol", v);
        o->rtol = dv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--timeout"))) {
        if (kf_cli_double(v, &dv) || dv <= 0) return bad("--timeout (seconds)", v);
        o->run_timeout_s = dv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--mem-limit"))) {
        if (kf_cli_int(v, &iv) || iv <= 0) return bad("--mem-limit (MiB)", v);
        o->mem_limit = (long long)iv << 20; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--threads"))) {
        if (kf_cli_int(v, &iv) || iv < 0) return bad("--threads", v);
        o->build.threads = iv; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--flush-mb"))) {
        if (kf_cli_int(v, &iv) || iv < 0) return bad("--flush-mb", v);
        o->flush_bytes = iv ? (long long)iv << 20 : kf_harness_default_flush_bytes();
        return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--cache"))) {
        o->build.cache_dir = v; return 1;
    }
    if ((v = kf_cli_value(argc, argv, i, "--seed"))) {
        char *end; unsigned long long s = strtoull(v, &end, 0);
        if (*end) return bad("--seed", v);
        o->seed = s; return 1;
    }
    if (!strncmp(argv[*i], "--trials", 8) || !strncmp(argv[*i], "--runs", 6) ||
        !strncmp(argv[*i], "--atol", 6) || !strncmp(argv[*i], "--rtol", 6) ||
        !strncmp(argv[*i], "--threads", 9) || !strncmp(argv[*i], "--timeout", 9))
        return bad(argv[*i], NULL);
    return 0;
}

void kf_cli_harness_defaults(kf_harness_opts *o) {
    kf_harness_opts_default(o, NULL);
    if (o->flush_bytes > KF_CLI_FLUSH_CAP) o->flush_bytes = KF_CLI_FLUSH_CAP;
}

static void on_signal(int sig) {
    if (kf_cli_interrupted) _exit(128 + sig);
    kf_cli_interrupted = 1;
}

void kf_cli_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
