/* cmd_show.c: `kforge show DB PROBLEM`: the winning kernel program of a problem. */
#include <stdio.h>
#include "cli/kf_cli.h"
#include "report/kf_report.h"
#include "store/kf_store.h"

int kf_cmd_show(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: kforge show DB PROBLEM (a path, file name or name without .py)\n");
        return 2;
    }
    kf_err err = {0};
    kf_store *s = NULL;
    if (kf_store_open(argv[1], &s, &err)) {
        fprintf(stderr, "kforge show: %s\n", err.msg);
        return 2;
    }
    int rc = kf_report_show(stdout, s, argv[2], NULL, &err);
    if (rc) fprintf(stderr, "kforge show: %s\n", err.msg);
    kf_store_close(s);
    return rc ? 1 : 0;
}
