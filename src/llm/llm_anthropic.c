/* llm_anthropic.c: Anthropic's messages wire format: request body (system messages go to the
 * top-level "system" field; consecutive turns of one role are merged, as the API requires
 * alternation) and response parsing. */
#include "llm/llm_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

#define LLM_ANTHROPIC_DEFAULT_MAX_TOKENS 8192

char *kf_llm_anthropic_request(const kf_llm_provider *p, const kf_llm_message *m, int n,
                            int max_tokens, double temperature) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "model", p->model);
    cJSON_AddNumberToObject(root, "max_tokens",
                            max_tokens > 0 ? max_tokens : LLM_ANTHROPIC_DEFAULT_MAX_TOKENS);
    kf_str sys;
    kf_str_init(&sys);
    for (int i = 0; i < n; i++) {
        if (strcmp(m[i].role, "system")) continue;
        if (sys.len) kf_str_append(&sys, "\n\n");
        kf_str_append(&sys, m[i].content ? m[i].content : "");
    }
    if (sys.len) cJSON_AddStringToObject(root, "system", kf_str_cstr(&sys));
    kf_str_free(&sys);
    cJSON *arr = cJSON_AddArrayToObject(root, "messages");
    const char *last_role = NULL;
    kf_str turn;
    kf_str_init(&turn);
    for (int i = 0; arr && i <= n; i++) {
        int end = i == n;
        if (!end && !strcmp(m[i].role, "system")) continue;
        const char *role = end ? NULL : (strcmp(m[i].role, "assistant") ? "user" : "assistant");
        if (last_role && (end || strcmp(role, last_role))) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "role", last_role);
            cJSON_AddStringToObject(o, "content", kf_str_cstr(&turn));
            cJSON_AddItemToArray(arr, o);
            kf_str_clear(&turn);
        }
        if (end) break;
        if (turn.len) kf_str_append(&turn, "\n\n");
        kf_str_append(&turn, m[i].content ? m[i].content : "");
        last_role = role;
    }
    kf_str_free(&turn);
    if (temperature >= 0) cJSON_AddNumberToObject(root, "temperature", temperature);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int kf_llm_anthropic_parse(const char *body, char **reply, kf_llm_usage *u, kf_err *err) {
    *reply = NULL;
    cJSON *root = cJSON_Parse(body);
    if (!root) return kf_fail(err, KF_E_FORMAT, "response is not JSON");
    int rc = 0;
    cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!cJSON_IsArray(content)) {
        rc = kf_fail(err, KF_E_FORMAT, "response has no content array");
        goto out;
    }
    kf_str s;
    kf_str_init(&s);
    kf_str_append(&s, "");
    cJSON *block;
    cJSON_ArrayForEach(block, content) {
        cJSON *type = cJSON_GetObjectItemCaseSensitive(block, "type");
        cJSON *t = cJSON_GetObjectItemCaseSensitive(block, "text");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "text") && cJSON_IsString(t))
            kf_str_append(&s, t->valuestring);
    }
    *reply = kf_str_take(&s);
    cJSON *sr = cJSON_GetObjectItemCaseSensitive(root, "stop_reason");
    if (cJSON_IsString(sr))
        snprintf(u->stop_reason, sizeof u->stop_reason, "%s", sr->valuestring);
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(usage)) {
        const char *in_fields[] = {"input_tokens", "cache_creation_input_tokens",
                                   "cache_read_input_tokens"};
        for (int i = 0; i < 3; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, in_fields[i]);
            if (cJSON_IsNumber(v)) u->prompt_tokens += (long long)v->valuedouble;
        }
        cJSON *ot = cJSON_GetObjectItemCaseSensitive(usage, "output_tokens");
        if (cJSON_IsNumber(ot)) u->completion_tokens = (long long)ot->valuedouble;
    }
out:
    cJSON_Delete(root);
    return rc;
}
