/* kf_report_show.c: `kforge show DB PROBLEM`: prints the winning kernel program of a problem,
 * its plan.json and then each kernel source, each under a header line. */
#include "report/kf_report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void kf_show_text(FILE *f, const char *text) {
    size_t n = text ? strlen(text) : 0;
    fprintf(f, "%s%s", text ? text : "", n && text[n - 1] != '\n' ? "\n" : "");
}

int kf_report_show(FILE *f, kf_store *s, const char *problem, const char *target, kf_err *err) {
    kf_winner w;
    int rc = kf_store_winner(s, problem, target, &w, err);
    if (rc) return rc;
    fprintf(f, "== problem %s\n", w.path);
    fprintf(f, "== target %s, agent %s (attempt %d), run %lld", w.target ? w.target : "?",
            w.agent ? w.agent : "?", w.number, (long long)w.run_id);
    if (w.kforge_ms > 0) fprintf(f, ", %.3f ms", w.kforge_ms);
    if (w.speedup_eager > 0) fprintf(f, ", %.2fx vs eager", w.speedup_eager);
    if (w.speedup_compile > 0) fprintf(f, ", %.2fx vs torch.compile", w.speedup_compile);
    fputc('\n', f);

    fprintf(f, "== plan.json\n");
    cJSON *plan = w.plan_json ? cJSON_Parse(w.plan_json) : NULL;
    char *pretty = plan ? cJSON_Print(plan) : NULL;
    kf_show_text(f, pretty ? pretty : w.plan_json ? w.plan_json : "(no plan stored)");
    free(pretty);
    cJSON_Delete(plan);

    cJSON *sources = w.sources_json ? cJSON_Parse(w.sources_json) : NULL;
    if (w.sources_json && !cJSON_IsArray(sources)) {
        rc = kf_fail(err, KF_E_FORMAT, "store: the sources of %s (attempt %lld) are not a JSON array",
                     w.path, (long long)w.attempt_id);
    } else {
        cJSON *src;
        cJSON_ArrayForEach(src, sources) {
            const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(src, "file"));
            const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(src, "text"));
            fprintf(f, "== %s\n", file ? file : "(unnamed source)");
            kf_show_text(f, text ? text : "");
        }
    }
    cJSON_Delete(sources);
    kf_winner_free(&w);
    return rc;
}
