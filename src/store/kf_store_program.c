/* kf_store_program.c: turns a stored winner (plan.json text plus its sources as JSON) back
 * into a kf_program, with the sources inline so no folder is needed. */
#include "store/kf_store.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int kf_winner_program(const kf_winner *w, kf_program *p, kf_err *err) {
    memset(p, 0, sizeof *p);
    if (!w || !w->plan_json)
        return kf_fail(err, KF_E_INVALID, "store: the winner of %s has no stored plan",
                       w && w->path ? w->path : "?");
    cJSON *plan = cJSON_Parse(w->plan_json);
    if (!cJSON_IsObject(plan)) {
        cJSON_Delete(plan);
        return kf_fail(err, KF_E_FORMAT, "store: the stored plan of %s is not a JSON object", w->path);
    }
    if (w->sources_json) {
        cJSON *sources = cJSON_Parse(w->sources_json);
        if (!cJSON_IsArray(sources)) {
            cJSON_Delete(sources);
            cJSON_Delete(plan);
            return kf_fail(err, KF_E_FORMAT, "store: the stored sources of %s are not a JSON array",
                           w->path);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(plan, "sources");
        cJSON_AddItemToObject(plan, "sources", sources);
    }
    char *text = cJSON_PrintUnformatted(plan);
    cJSON_Delete(plan);
    if (!text) return kf_fail(err, KF_E_NOMEM, "store: out of memory rebuilding a program");
    int rc = kf_program_from_json(text, NULL, p, err);
    free(text);
    if (rc) kf_err_prefix(err, "store: winner of %s", w->path);
    return rc;
}
