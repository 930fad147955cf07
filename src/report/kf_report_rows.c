/* kf_report_rows.c: what every report derives from problem rows: the level of a path,
 * speedups, per-level summaries with geometric means, the report order and display names. */
#include "report/kf_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int kf_level_from_path(const char *path) {
    int level = -1;
    if (!path) return -1;
    const char *c = path;
    while (*c) {
        const char *end = strchr(c, '/');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len > 5 && len < 15 && !strncmp(c, "level", 5)) {
            int n = 0, ok = 1;
            for (size_t i = 5; i < len; i++) {
                if (c[i] < '0' || c[i] > '9') { ok = 0; break; }
                n = n * 10 + (c[i] - '0');
            }
            if (ok) level = n;
        }
        if (!end) break;
        c = end + 1;
    }
    return level;
}

static double kf_ratio(const kf_problem_row *r, double stored, double base_ms) {
    if (stored > 0) return stored;
    if (r->status == KF_ST_VERIFIED && base_ms > 0 && r->kforge_ms > 0) return base_ms / r->kforge_ms;
    return 0;
}

double kf_row_speedup_eager(const kf_problem_row *r) {
    return kf_ratio(r, r->speedup_eager, r->eager_ms);
}

double kf_row_speedup_compile(const kf_problem_row *r) {
    return kf_ratio(r, r->speedup_compile, r->compile_ms);
}

double kf_row_speedup_eager_default(const kf_problem_row *r) {
    return kf_ratio(r, 0, r->eager_default_ms);
}

double kf_row_speedup_compile_default(const kf_problem_row *r) {
    return kf_ratio(r, 0, r->compile_default_ms);
}

void kf_report_summarize(const kf_problem_row *rows, int n, int level, kf_level_summary *out) {
    memset(out, 0, sizeof *out);
    out->level = level;
    double log_eager = 0, log_compile = 0, log_eager_d = 0, log_compile_d = 0;
    for (int i = 0; i < n; i++) {
        const kf_problem_row *r = &rows[i];
        if (level != KF_LEVEL_ALL && r->level != level) continue;
        out->count++;
        if ((unsigned)r->status < KF_ST_COUNT) out->by_status[r->status]++;
        if (r->degenerate) out->degenerate++;
        if (r->status != KF_ST_VERIFIED) continue;
        double se = kf_row_speedup_eager(r), sc = kf_row_speedup_compile(r);
        if (se > KF_REVIEW_SPEEDUP || sc > KF_REVIEW_SPEEDUP) out->review++;
        if (r->degenerate || !(r->kforge_ms > 0)) continue;
        if (r->eager_ms > 0 && se > 0) {
            log_eager += log(se);
            out->n_eager++;
        }
        if (r->compile_ms > 0 && sc > 0) {
            log_compile += log(sc);
            out->n_compile++;
        }
        double sed = kf_row_speedup_eager_default(r), scd = kf_row_speedup_compile_default(r);
        if (sed > 0) {
            log_eager_d += log(sed);
            out->n_eager_default++;
        }
        if (scd > 0) {
            log_compile_d += log(scd);
            out->n_compile_default++;
        }
    }
    if (out->n_eager) out->geomean_eager = exp(log_eager / out->n_eager);
    if (out->n_compile) out->geomean_compile = exp(log_compile / out->n_compile);
    if (out->n_eager_default) out->geomean_eager_default = exp(log_eager_d / out->n_eager_default);
    if (out->n_compile_default)
        out->geomean_compile_default = exp(log_compile_d / out->n_compile_default);
}

int kf_report_levels(const kf_problem_row *rows, int n, int *levels, int cap) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        int lv = rows[i].level;
        if (lv < 1) continue;
        int pos = 0;
        while (pos < count && levels[pos] < lv) pos++;
        if (pos < count && levels[pos] == lv) continue;
        if (count == cap) {
            if (pos == count) continue;   /* larger than every kept level: no room */
            count--;                      /* drop the largest to keep the smallest ones */
        }
        memmove(levels + pos + 1, levels + pos, (size_t)(count - pos) * sizeof *levels);
        levels[pos] = lv;
        count++;
    }
    return count;
}

const char *kf_report_name(const char *path, size_t *len) {
    if (!path) path = "";
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    if (n > 3 && !strcmp(base + n - 3, ".py")) n -= 3;
    *len = n;
    return base;
}

typedef struct kf_order_key {
    int index;
    int level;       /* rows without a level sort last */
    long number;     /* the number a file name starts with; 0x7fffffff when none */
    const char *name; size_t name_len;
    const char *path;
} kf_order_key;

static int kf_order_cmp(const void *a, const void *b) {
    const kf_order_key *x = a, *y = b;
    if (x->level != y->level) return x->level < y->level ? -1 : 1;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = strncmp(x->name, y->name, m);
    if (c) return c;
    if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
    c = strcmp(x->path, y->path);
    if (c) return c;
    return x->index - y->index;
}

int *kf_report_order(const kf_problem_row *rows, int n) {
    if (n <= 0) return NULL;
    kf_order_key *keys = malloc((size_t)n * sizeof *keys);
    int *order = malloc((size_t)n * sizeof *order);
    if (!keys || !order) {
        free(keys);
        free(order);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        kf_order_key *k = &keys[i];
        k->index = i;
        k->level = rows[i].level >= 0 ? rows[i].level : 1 << 30;
        k->path = rows[i].path ? rows[i].path : "";
        k->name = kf_report_name(k->path, &k->name_len);
        k->number = 0x7fffffffL;
        if (k->name[0] >= '0' && k->name[0] <= '9') k->number = strtol(k->name, NULL, 10);
    }
    qsort(keys, (size_t)n, sizeof *keys, kf_order_cmp);
    for (int i = 0; i < n; i++) order[i] = keys[i].index;
    free(keys);
    return order;
}
