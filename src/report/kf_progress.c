/* kf_progress.c: the progress display of a long run. On a terminal one status line is
 * rewritten in place and cut to the terminal's width; in a log, a plain line is printed only
 * when the problem or the agent changes, so logs stay short. */
#include "report/kf_report.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int kf_term_width(FILE *f, int is_tty) {
    if (is_tty) {
        struct winsize ws;
        if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    }
    const char *cols = getenv("COLUMNS");
    int n = cols ? atoi(cols) : 0;
    return n > 0 ? n : 80;
}

void kf_progress_begin(kf_progress *p, FILE *f, int total, int is_tty) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->total = total;
    p->is_tty = is_tty;
    p->width = kf_term_width(f, is_tty);
}

static void kf_format_elapsed(char *buf, size_t n, double s) {
    if (s < 0) s = 0;
    if (s < 60) snprintf(buf, n, "%.1fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

/* Shows the saved line on the terminal, cut to the width (one column spare so the cursor
 * never wraps). */
static void kf_progress_draw(kf_progress *p) {
    int max = p->width > 1 ? p->width - 1 : 1;
    fprintf(p->f, "\r\033[K%.*s", max, p->line);
    fflush(p->f);
    p->shown = 1;
}

void kf_progress_update(kf_progress *p, int i, int total, const char *problem, const char *agent,
                        int attempt, double elapsed_s) {
    if (total > 0) p->total = total;
    if (!problem) problem = "";
    if (!agent) agent = "";
    size_t name_len;
    const char *name = kf_report_name(problem, &name_len);
    int level = kf_level_from_path(problem);
    char lv[24] = "";
    if (level >= 0) snprintf(lv, sizeof lv, "level%d/", level);
    char el[32];
    kf_format_elapsed(el, sizeof el, elapsed_s);
    if (p->is_tty) {
        snprintf(p->line, sizeof p->line, "[%d/%d] %s%.*s  %s #%d  %s", i, p->total, lv,
                 (int)name_len, name, agent, attempt, el);
        kf_progress_draw(p);
        return;
    }
    if (!strcmp(p->problem, problem) && !strcmp(p->agent, agent)) return;
    snprintf(p->problem, sizeof p->problem, "%s", problem);
    snprintf(p->agent, sizeof p->agent, "%s", agent);
    fprintf(p->f, "[%d/%d] %s%.*s: %s (attempt %d, %s)\n", i, p->total, lv, (int)name_len, name,
            agent, attempt, el);
    fflush(p->f);
}

void kf_progress_print(kf_progress *p, const char *text) {
    if (p->is_tty && p->shown) fprintf(p->f, "\r\033[K");
    size_t n = text ? strlen(text) : 0;
    fprintf(p->f, "%s%s", text ? text : "", n && text[n - 1] == '\n' ? "" : "\n");
    if (p->is_tty && p->shown) kf_progress_draw(p);
    else fflush(p->f);
}

void kf_progress_end(kf_progress *p) {
    if (p->is_tty && p->shown) {
        fprintf(p->f, "\r\033[K");
        fflush(p->f);
    }
    p->shown = 0;
}
