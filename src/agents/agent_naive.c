/* agent_naive.c: the naive agent: one straightforward, correct kernel per ATen op
 * (kf_lower_naive). It proposes one candidate on the first call for a problem and nothing
 * after that: the lowering is deterministic, so retrying cannot help. */
#include <stdlib.h>
#include "agents/kf_agent.h"

static int naive_propose(kf_agent *a, const kf_problem *pb, const kf_history *h,
                         kf_program **cands, int *n, kf_err *err) {
    (void)a;
    if (!n) return kf_fail(err, KF_E_INVALID, "naive agent: no candidate count");
    int cap = *n;
    *n = 0;
    if (!pb || !pb->graph) return kf_fail(err, KF_E_INVALID, "naive agent: problem without a graph");
    if (cap < 1 || (h && h->n > 0)) return 0;
    kf_program *p = calloc(1, sizeof *p);
    if (!p) return kf_fail(err, KF_E_NOMEM, "naive agent: out of memory");
    int rc = kf_lower_naive(pb->graph, pb->target ? pb->target : "cpu", p, err);
    if (rc) {
        free(p);
        return rc;
    }
    cands[0] = p;
    *n = 1;
    return 0;
}

static void naive_destroy(kf_agent *a) { free(a); }

int kf_agent_naive_new(kf_agent **out, kf_err *err) {
    if (!out) return kf_fail(err, KF_E_INVALID, "kf_agent_naive_new: no output");
    kf_agent *a = calloc(1, sizeof *a);
    if (!a) return kf_fail(err, KF_E_NOMEM, "naive agent: out of memory");
    a->name = "naive";
    a->ctx = NULL;
    a->propose = naive_propose;
    a->destroy = naive_destroy;
    *out = a;
    return 0;
}
