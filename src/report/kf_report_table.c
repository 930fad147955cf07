/* kf_report_table.c: the terminal report: one line per problem, a summary per level and for
 * all problems, then a short table of geomean ratios, the lines benchmark scripts print last. */
#include "report/kf_report.h"

#include <stdlib.h>
#include <string.h>

#define KF_NAME_MAX 40
#define KF_AGENT_MAX 20

/* Writes at most max characters of s (cut with ".." when longer), padded to width. */
static void kf_put_cut(FILE *f, const char *s, size_t len, size_t max, int width) {
    if (len > max) fprintf(f, "%.*s..%*s", (int)(max - 2), s, width > (int)max ? width - (int)max : 0, "");
    else fprintf(f, "%.*s%*s", (int)len, s, width > (int)len ? width - (int)len : 0, "");
}

static void kf_put_ms(FILE *f, double ms) {
    if (!(ms > 0)) fprintf(f, " %10s", "-");
    else if (ms < 1000) fprintf(f, " %10.3f", ms);
    else fprintf(f, " %10.1f", ms);
}

static void kf_put_ratio(FILE *f, int width, int n, double x) {
    char buf[32];
    if (n > 0) snprintf(buf, sizeof buf, "%.2fx", x);
    else snprintf(buf, sizeof buf, "-");
    fprintf(f, " %*s", width, buf);
}

static void kf_table_meta(FILE *f, const kf_run_info *m) {
    if (!m) return;
    fprintf(f, "target %s, agents %s, attempts %d", m->target ? m->target : "?",
            m->agents ? m->agents : "?", m->attempts);
    if (m->device) fprintf(f, ", device %s", m->device);
    if (m->torch_version) fprintf(f, ", torch %s", m->torch_version);
    if (m->blas) fprintf(f, ", blas %s", m->blas);
    if (m->threads > 0) fprintf(f, ", %d threads", m->threads);
    fprintf(f, ", precision %s", m->precision ? m->precision : "strict");
    if (m->atol > 0 || m->rtol > 0) fprintf(f, " (atol %g, rtol %g)", m->atol, m->rtol);
    fputc('\n', f);
}

static void kf_table_rows(FILE *f, const kf_problem_row *rows, int n, int name_w, int agent_w) {
    fprintf(f, "%-5s  %-*s %-13s %10s %10s %9s  %-*s %8s\n", "level", name_w, "problem", "status",
            "eager ms", "kforge ms", "speedup", agent_w, "agent", "attempts");
    int *order = kf_report_order(rows, n);
    for (int i = 0; i < n; i++) {
        const kf_problem_row *r = &rows[order ? order[i] : i];
        if (r->level >= 0) fprintf(f, "%-5d  ", r->level);
        else fprintf(f, "%-5s  ", "-");
        size_t len;
        const char *name = kf_report_name(r->path, &len);
        kf_put_cut(f, name, len, KF_NAME_MAX, name_w);
        fprintf(f, " %-13s", kf_status_name(r->status));
        kf_put_ms(f, r->eager_ms);
        kf_put_ms(f, r->status == KF_ST_VERIFIED ? r->kforge_ms : 0);
        double sp = r->status == KF_ST_VERIFIED ? kf_row_speedup_eager(r) : 0;
        char buf[32];
        if (sp > 0)
            snprintf(buf, sizeof buf, "%.2fx%s", sp,
                     r->degenerate ? "*" : sp > KF_REVIEW_SPEEDUP ? "!" : "");
        else
            snprintf(buf, sizeof buf, "-%s", r->degenerate ? "*" : "");
        fprintf(f, " %9s  ", buf);
        const char *agent = r->agent ? r->agent : "-";
        kf_put_cut(f, agent, strlen(agent), KF_AGENT_MAX, agent_w);
        fprintf(f, " %8d\n", r->attempts);
    }
    free(order);
}

static void kf_table_summary(FILE *f, const kf_problem_row *rows, int n, int level) {
    kf_level_summary sm;
    kf_report_summarize(rows, n, level, &sm);
    if (level == KF_LEVEL_ALL) fprintf(f, "all:     ");
    else fprintf(f, "level %d: ", level);
    fprintf(f, "%d problem%s;", sm.count, sm.count == 1 ? "" : "s");
    const char *sep = " ";
    for (int s = 0; s < KF_ST_COUNT; s++) {
        if (!sm.by_status[s] && s != KF_ST_VERIFIED) continue;
        fprintf(f, "%s%s %d", sep, kf_status_name((kf_status)s), sm.by_status[s]);
        sep = ", ";
    }
    fprintf(f, "; degenerate %d", sm.degenerate);
    if (sm.review) fprintf(f, "; %d over %.0fx to review", sm.review, KF_REVIEW_SPEEDUP);
    fputc('\n', f);
    fprintf(f, "         geomean speedup ");
    if (sm.n_eager)
        fprintf(f, "%.2fx vs eager (%d problem%s)", sm.geomean_eager, sm.n_eager, sm.n_eager == 1 ? "" : "s");
    else fprintf(f, "- vs eager (none verified with times)");
    if (sm.n_compile)
        fprintf(f, ", %.2fx vs torch.compile (%d problem%s)\n", sm.geomean_compile, sm.n_compile,
                sm.n_compile == 1 ? "" : "s");
    else fprintf(f, ", torch.compile not measured\n");
    if (sm.n_eager_default || sm.n_compile_default) {
        fprintf(f, "         against PyTorch at its default precision (TF32 where allowed): ");
        if (sm.n_eager_default) fprintf(f, "%.2fx vs eager", sm.geomean_eager_default);
        else fprintf(f, "- vs eager");
        if (sm.n_compile_default) fprintf(f, ", %.2fx vs torch.compile\n", sm.geomean_compile_default);
        else fprintf(f, ", - vs torch.compile\n");
    }
}

static void kf_table_ratios(FILE *f, const kf_problem_row *rows, int n, const int *levels, int nl) {
    kf_level_summary sms[17];
    char heads[17][16];
    int cols = 0;
    for (int i = 0; i < nl && cols < 16; i++) {
        kf_report_summarize(rows, n, levels[i], &sms[cols]);
        snprintf(heads[cols++], sizeof heads[0], "level%d", levels[i]);
    }
    kf_report_summarize(rows, n, KF_LEVEL_ALL, &sms[cols]);
    snprintf(heads[cols++], sizeof heads[0], "all");
    fprintf(f, "%-22s", "ratios (geomean)");
    for (int c = 0; c < cols; c++) fprintf(f, " %9s", heads[c]);
    fprintf(f, "\n%-22s", "speedup vs eager");
    for (int c = 0; c < cols; c++) kf_put_ratio(f, 9, sms[c].n_eager, sms[c].geomean_eager);
    fprintf(f, "\n%-22s", "speedup vs compile");
    for (int c = 0; c < cols; c++) kf_put_ratio(f, 9, sms[c].n_compile, sms[c].geomean_compile);
    int any_default = 0;
    for (int c = 0; c < cols; c++) any_default |= sms[c].n_eager_default || sms[c].n_compile_default;
    if (any_default) {
        fprintf(f, "\n%-22s", "vs eager (defaults)");
        for (int c = 0; c < cols; c++)
            kf_put_ratio(f, 9, sms[c].n_eager_default, sms[c].geomean_eager_default);
        fprintf(f, "\n%-22s", "vs compile (defaults)");
        for (int c = 0; c < cols; c++)
            kf_put_ratio(f, 9, sms[c].n_compile_default, sms[c].geomean_compile_default);
    }
    fprintf(f, "\n%-22s", "verified");
    for (int c = 0; c < cols; c++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d/%d", sms[c].by_status[KF_ST_VERIFIED], sms[c].count);
        fprintf(f, " %9s", buf);
    }
    fputc('\n', f);
}

void kf_report_table(FILE *f, const kf_problem_row *rows, int n, const kf_run_info *meta) {
    kf_table_meta(f, meta);
    int name_w = 7, agent_w = 5;
    for (int i = 0; i < n; i++) {
        size_t len;
        kf_report_name(rows[i].path, &len);
        if ((int)len > name_w) name_w = len > KF_NAME_MAX ? KF_NAME_MAX : (int)len;
        size_t al = rows[i].agent ? strlen(rows[i].agent) : 1;
        if ((int)al > agent_w) agent_w = al > KF_AGENT_MAX ? KF_AGENT_MAX : (int)al;
    }
    kf_table_rows(f, rows, n, name_w, agent_w);
    int any_marks = 0;
    for (int i = 0; i < n; i++) {
        double sp = kf_row_speedup_eager(&rows[i]);
        if (rows[i].degenerate || (rows[i].status == KF_ST_VERIFIED && sp > KF_REVIEW_SPEEDUP)) any_marks = 1;
    }
    if (any_marks)
        fprintf(f, "(* degenerate: output does not depend on inputs, kept out of geomeans;"
                   " ! over %.0fx: review)\n", KF_REVIEW_SPEEDUP);
    fputc('\n', f);
    int levels[16];
    int nl = kf_report_levels(rows, n, levels, 16);
    for (int i = 0; i < nl; i++) kf_table_summary(f, rows, n, levels[i]);
    kf_table_summary(f, rows, n, KF_LEVEL_ALL);
    fputc('\n', f);
    kf_table_ratios(f, rows, n, levels, nl);
}
