/* tool_search_render.c: development tool. For each problem file given, captures its graph with
 * the oracle (on the CPU), builds the search agent's default point (or the key given with
 * -k) for the target (-t cpu|cuda, default cuda) and prints the fusion plan, the key and the
 * rendered kernel source; with -c it also builds the program with the target (NVRTC for cuda:
 * set KFORGE_CUDA_ARCH=sm_90 where there is no GPU); -l plans with the target's library conv step
 * (cuDNN on cuda) as if it were installed.
 *   build/tests/tool_search_render [-t cuda] [-c] [-q] [-l] [-k KEY] problems_gpu/level1/3_softmax.py ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agents/search.h"
#include "ir/kf_graph.h"
#include "oracle/kf_oracle.h"
#include "targets/kf_target.h"

int main(int argc, char **argv) {
    const char *target = "cuda", *key_arg = NULL;
    int compile = 0, quiet = 0, lib_conv = 0, opt;
    while ((opt = getopt(argc, argv, "t:ck:ql")) != -1) {
        if (opt == 't') target = optarg;
        else if (opt == 'c') compile = 1;
        else if (opt == 'k') key_arg = optarg;
        else if (opt == 'q') quiet = 1;
        else if (opt == 'l') lib_conv = 1;
        else {
            fprintf(stderr, "usage: %s [-t cpu|cuda] [-c] [-q] [-l] [-k KEY] problem.py...\n", argv[0]);
            return 2;
        }
    }
    const char *py = getenv("KFORGE_PYTHON") ? getenv("KFORGE_PYTHON") : "/usr/bin/python3";
    char work[64];
    snprintf(work, sizeof work, "/tmp/kf_tool_render_%ld", (long)getpid());
    kf_oracle_opts oo = {.python = py, .workdir = work, .threads = 2, .device = "cpu", .timeout_s = 600};
    if (access("python/kforge_oracle.py", R_OK) == 0) oo.script = "python/kforge_oracle.py";
    kf_oracle *orc = NULL;
    kf_err err = {0};
    if (kf_oracle_start(&oo, &orc, &err) != 0) {
        fprintf(stderr, "oracle: %s\n", err.msg);
        return 1;
    }
    const kf_target_ops *T = kf_target_find(target);
    int failed = 0;
    for (int i = optind; i < argc; i++) {
        kf_oracle_info info;
        kf_graph g;
        char *params = NULL;
        if (kf_oracle_load(orc, argv[i], 1, &info, &err) != 0 || kf_oracle_graph(orc, &g, &params, &err) != 0) {
            fprintf(stderr, "%s: oracle: %s\n", argv[i], err.msg);
            failed++;
            continue;
        }
        kf_search_space sp;
        int rc = kf_search_space_init(&sp, &g, &err);
        if (rc) {
            fprintf(stderr, "%s: plan: %s\n", argv[i], err.msg);
            failed++;
        } else {
            kf_search_space_set_target(&sp, target, lib_conv);
            kf_gsched *s = kf_search_default(&sp, 0);
            char *key = key_arg ? kf_strdup(key_arg) : s ? kf_search_key(&sp, 0, s) : NULL;
            char *desc = kf_fuse_plan_describe(&g, &sp.plans[key && key[1] == '1' ? 1 : 0]);
            printf("==== %s\n%skey %s\n", argv[i], desc ? desc : "", key ? key : "?");
            char **nb = NULL;
            int nn = 0;
            if (key && kf_search_neighbours(&sp, key, 1, &nb, &nn) == 0) {
                for (int j = 0; j < nn; j++) printf("  neighbour %s\n", nb[j]);
                for (int j = 0; j < nn; j++) free(nb[j]);
                free(nb);
            }
            kf_program p;
            rc = key ? kf_search_build(&sp, key, &p, &err) : KF_E_NOMEM;
            if (rc) {
                printf("lowering failed: %s\n", err.msg);
                failed++;
            } else {
                for (int j = 0; j < p.n_steps; j++) {
                    const kf_step *st = &p.steps[j];
                    printf("step %d kind %d kernel %d grid %lld block %lld\n", j, (int)st->kind, st->kernel,
                           (long long)st->grid[0], (long long)st->block[0]);
                }
                if (!quiet)
                    for (int j = 0; j < p.n_sources; j++) printf("---- %s\n%s\n", p.sources[j].file, p.sources[j].text);
                if (compile && T) {
                    kf_build_opts o = {0};
                    o.cache_dir = work;
                    o.threads = 1;
                    o.timeout_s = 120;
                    kf_build b = {0};
                    if (T->build(&p, &o, &b, &err) == 0) {
                        printf("compiled\n");
                    } else {
                        printf("COMPILE FAILED: %s\n%s\n", err.msg, b.log ? b.log : "");
                        failed++;
                    }
                    kf_build_free(&b);
                }
                kf_program_free(&p);
            }
            free(desc);
            free(key);
            free(s);
            kf_search_space_free(&sp);
        }
        kf_graph_free(&g);
        free(params);
    }
    kf_oracle_stop(orc);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
    return failed ? 1 : 0;
}
