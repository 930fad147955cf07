/* kf_store_speedup.c: per-agent geomean speedup over eager within one run (swarm report). */
#include <math.h>
#include <sqlite3.h>
#include "store/kf_store_internal.h"

int kf_store_agent_speedup(kf_store *s, int64_t run_id, const char *agent, double *geomean,
                           int *n, kf_err *err) {
    *geomean = 0;
    *n = 0;
    sqlite3_stmt *st;
    int rc = kf_store_prepare(
        s, "SELECT p.eager_ms, MIN(a.ms) FROM attempts a JOIN problems p ON p.id = a.problem_id"
           " WHERE p.run_id = ?1 AND p.done = 1 AND p.degenerate = 0 AND a.agent = ?2"
           " AND a.status = 'verified' AND a.ms > 0 AND p.eager_ms > 0 GROUP BY p.id",
        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, agent, -1, SQLITE_STATIC);
    double logsum = 0;
    int count = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        double eager = sqlite3_column_double(st, 0), ms = sqlite3_column_double(st, 1);
        if (eager > 0 && ms > 0) { logsum += log(eager / ms); count++; }
    }
    if (step != SQLITE_DONE) rc = kf_store_fail(s, err, "reading agent speedups");
    sqlite3_finalize(st);
    if (rc) return rc;
    *n = count;
    *geomean = count ? exp(logsum / count) : 0;
    return 0;
}
