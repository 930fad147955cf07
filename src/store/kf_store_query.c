/* kf_store_query.c: read-side questions across runs: the winning program of a problem
 * (`kforge show`, `kforge export`) and per-agent statistics (correct within k attempts). */
#include "store/kf_store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

void kf_winner_free(kf_winner *w) {
    if (!w) return;
    free(w->path);
    free(w->target);
    free(w->agent);
    free(w->plan_json);
    free(w->sources_json);
    memset(w, 0, sizeof *w);
}

static const char *kf_base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Length of the file name without a trailing ".py". */
static size_t kf_stem_len(const char *base) {
    size_t n = strlen(base);
    if (n > 3 && !strcmp(base + n - 3, ".py")) n -= 3;
    return n;
}

/* How well a stored path matches what the user typed: 3 = the same path, 2 = a suffix ending
 * at a path component ("level1/x.py" or "x.py"), 1 = the same file name without ".py",
 * 0 = no match. */
static int kf_match_tier(const char *stored, const char *query) {
    if (!strcmp(stored, query)) return 3;
    size_t ls = strlen(stored), lq = strlen(query);
    if (lq < ls && stored[ls - lq - 1] == '/' && !strcmp(stored + ls - lq, query)) return 2;
    const char *bs = kf_base_name(stored), *bq = kf_base_name(query);
    size_t ns = kf_stem_len(bs), nq = kf_stem_len(bq);
    if (ns == nq && !strncmp(bs, bq, ns)) return 1;
    return 0;
}

static void kf_store_read_winner(sqlite3_stmt *st, kf_winner *w) {
    w->path = kf_store_col_text(st, 0);
    w->target = kf_store_col_text(st, 1);
    w->agent = kf_store_col_text(st, 2);
    w->plan_json = kf_store_col_text(st, 3);
    w->sources_json = kf_store_col_text(st, 4);
    w->run_id = sqlite3_column_int64(st, 5);
    w->attempt_id = sqlite3_column_int64(st, 6);
    w->number = sqlite3_column_int(st, 7);
    w->kforge_ms = kf_store_col_double(st, 8);
    w->speedup_eager = kf_store_col_double(st, 9);
    w->speedup_compile = kf_store_col_double(st, 10);
}

int kf_store_winner(kf_store *s, const char *problem, const char *target, kf_winner *out,
                    kf_err *err) {
    memset(out, 0, sizeof *out);
    if (!problem || !*problem) return kf_fail(err, KF_E_INVALID, "store: no problem named");
    sqlite3_stmt *st;
    int rc = kf_store_prepare(
        s, "SELECT p.path, r.target, coalesce(p.agent, a.agent), a.plan_json, a.sources_json,"
           " r.id, a.id, a.number, p.kforge_ms, p.speedup_eager, p.speedup_compile"
           " FROM problems p JOIN runs r ON r.id = p.run_id JOIN attempts a ON a.id = p.winner_attempt"
           " WHERE p.done = 1 AND p.status = ?1 AND (?2 IS NULL OR r.target = ?2)"
           " ORDER BY r.id DESC, p.id DESC",
        &st, err);
    if (rc) return rc;
    kf_store_bind_text(st, 1, kf_status_name(KF_ST_VERIFIED));
    kf_store_bind_text(st, 2, target);
    /* Rows come newest first: keep the first row of the best tier, and note a second path
     * matching at that tier. */
    int best = 0, step;
    char *other = NULL;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        int tier = path ? kf_match_tier(path, problem) : 0;
        if (tier == 0 || tier < best) continue;
        if (tier > best) {
            kf_winner_free(out);
            free(other);
            other = NULL;
            kf_store_read_winner(st, out);
            best = tier;
        } else if (!other && strcmp(path, out->path)) {
            other = kf_strdup(path);
        }
    }
    if (step != SQLITE_DONE) rc = kf_store_fail(s, err, "finding the winner");
    sqlite3_finalize(st);
    if (!rc && best == 0)
        rc = kf_fail(err, KF_E_INVALID, "store %s: no verified kernel for '%s'%s%s", s->path,
                     problem, target ? " on target " : "", target ? target : "");
    else if (!rc && other)
        rc = kf_fail(err, KF_E_INVALID, "store %s: '%s' names several problems (%s, %s); give the full path",
                     s->path, problem, out->path, other);
    free(other);
    if (rc) kf_winner_free(out);
    return rc;
}

void kf_agent_stats_free(kf_agent_stats *stats, int n) {
    if (!stats) return;
    for (int i = 0; i < n; i++) {
        free(stats[i].agent);
        free(stats[i].correct_within);
    }
    free(stats);
}

/* Accumulates one agent's rows; first_ok[] holds, per problem, the first verified number
 * (0 = never verified). */
typedef struct kf_agent_acc {
    kf_agent_stats st;
    int *first_ok; int n_first, cap_first;
} kf_agent_acc;

static int kf_acc_push(kf_agent_acc *a, int first_ok) {
    if (a->n_first == a->cap_first) {
        int cap = a->cap_first ? a->cap_first * 2 : 16;
        int *grown = realloc(a->first_ok, (size_t)cap * sizeof *grown);
        if (!grown) return KF_E_NOMEM;
        a->first_ok = grown;
        a->cap_first = cap;
    }
    a->first_ok[a->n_first++] = first_ok;
    return 0;
}

/* Turns first_ok[] into correct_within[]. */
static int kf_acc_finish(kf_agent_acc *a) {
    int m = a->st.max_number;
    if (m > 0) {
        a->st.correct_within = calloc((size_t)m, sizeof(int));
        if (!a->st.correct_within) return KF_E_NOMEM;
        for (int i = 0; i < a->n_first; i++)
            for (int k = a->first_ok[i]; k >= 1 && k <= m; k++) a->st.correct_within[k - 1]++;
    }
    free(a->first_ok);
    a->first_ok = NULL;
    a->n_first = a->cap_first = 0;
    return 0;
}

int kf_store_agent_stats(kf_store *s, int64_t run_id, kf_agent_stats **stats, int *n, kf_err *err) {
    *stats = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = kf_store_prepare(
        s, "SELECT a.agent, a.problem_id, a.number, a.status, p.agent FROM attempts a"
           " JOIN problems p ON p.id = a.problem_id WHERE p.run_id = ?1 AND p.done = 1"
           " ORDER BY a.agent, a.problem_id, a.number",
        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, run_id);
    kf_agent_stats *out = NULL;
    int count = 0, cap = 0, step;
    kf_agent_acc acc;
    memset(&acc, 0, sizeof acc);
    int64_t cur_problem = 0;
    int cur_first = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *agent = (const char *)sqlite3_column_text(st, 0);
        int64_t pid = sqlite3_column_int64(st, 1);
        int number = sqlite3_column_int(st, 2);
        int status = kf_status_from_name((const char *)sqlite3_column_text(st, 3));
        const char *winner = (const char *)sqlite3_column_text(st, 4);
        int new_agent = !acc.st.agent || strcmp(acc.st.agent, agent);
        if (acc.st.agent && (new_agent || pid != cur_problem)) rc = kf_acc_push(&acc, cur_first);
        if (!rc && acc.st.agent && new_agent) {
            rc = kf_acc_finish(&acc);
            if (!rc && count == cap) {
                int ncap = cap ? cap * 2 : 8;
                kf_agent_stats *grown = realloc(out, (size_t)ncap * sizeof *grown);
                if (grown) { out = grown; cap = ncap; }
                else rc = KF_E_NOMEM;
            }
            if (!rc) {
                out[count++] = acc.st;
                memset(&acc, 0, sizeof acc);
            }
        }
        if (rc) break;
        if (!acc.st.agent) acc.st.agent = kf_strdup(agent);
        if (new_agent || pid != cur_problem) {
            cur_problem = pid;
            cur_first = 0;
            acc.st.problems++;
            if (winner && !strcmp(winner, agent)) acc.st.wins++;
        }
        acc.st.attempts++;
        if (status >= 0) acc.st.by_status[status]++;
        if (number > acc.st.max_number) acc.st.max_number = number;
        if (status == KF_ST_VERIFIED && (cur_first == 0 || number < cur_first)) cur_first = number;
    }
    if (!rc && step != SQLITE_DONE) rc = kf_store_fail(s, err, "reading agent statistics");
    sqlite3_finalize(st);
    if (!rc && acc.st.agent) {
        rc = kf_acc_push(&acc, cur_first);
        if (!rc) rc = kf_acc_finish(&acc);
        if (!rc && count == cap) {
            kf_agent_stats *grown = realloc(out, (size_t)(cap + 1) * sizeof *grown);
            if (grown) { out = grown; cap++; }
            else rc = KF_E_NOMEM;
        }
        if (!rc) {
            out[count++] = acc.st;
            memset(&acc, 0, sizeof acc);
        }
    }
    if (rc) {
        free(acc.first_ok);
        free(acc.st.agent);
        free(acc.st.correct_within);
        kf_agent_stats_free(out, count);
        if (rc == KF_E_NOMEM) return kf_fail(err, rc, "store: out of memory for agent statistics");
        return rc;
    }
    *stats = out;
    *n = count;
    return 0;
}
