/* kf_report_agents.c: the per-agent (swarm) table: wins, geomean speedup, correctness by
 * attempt, statuses. */
#include <stdio.h>
#include "report/kf_report.h"

int kf_report_agents(FILE *f, kf_store *s, int64_t run_id, kf_err *err) {
    kf_agent_stats *st = NULL;
    int n = 0;
    int rc = kf_store_agent_stats(s, run_id, &st, &n, err);
    if (rc) return rc;
    if (n == 0) return 0;
    fprintf(f, "\nagents                     problems  wins  geomean  attempts  correct within k attempts\n");
    for (int i = 0; i < n; i++) {
        double gm = 0;
        int ngm = 0;
        kf_err e2 = {0};
        if (kf_store_agent_speedup(s, run_id, st[i].agent, &gm, &ngm, &e2)) ngm = 0;
        char gms[32];
        if (ngm) snprintf(gms, sizeof gms, "%.2fx", gm);
        else snprintf(gms, sizeof gms, "-");
        fprintf(f, "%-26s %8d %5d %8s %9d  ", st[i].agent, st[i].problems, st[i].wins, gms,
                st[i].attempts);
        for (int k = 0; k < st[i].max_number; k++)
            fprintf(f, "%sk=%d:%d", k ? " " : "", k + 1, st[i].correct_within[k]);
        fputc('\n', f);
        fprintf(f, "%-26s ", "");
        int first = 1;
        for (int j = 0; j < KF_ST_COUNT; j++) {
            if (!st[i].by_status[j]) continue;
            fprintf(f, "%s%s %d", first ? "  " : ", ", kf_status_name((kf_status)j), st[i].by_status[j]);
            first = 0;
        }
        fputc('\n', f);
    }
    kf_agent_stats_free(st, n);
    return 0;
}
