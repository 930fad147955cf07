/* llm_openai.c: the OpenAI chat-completions wire format (also spoken by DeepSeek, vLLM,
 * Ollama and llama.cpp server): request body and response parsing. */
#include "llm/llm_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

char *kf_llm_openai_request(const kf_llm_provider *p, const kf_llm_message *m, int n,
                         int max_tokens, double temperature) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "model", p->model);
    cJSON *arr = cJSON_AddArrayToObject(root, "messages");
    for (int i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", m[i].role);
        cJSON_AddStringToObject(o, "content", m[i].content ? m[i].content : "");
        cJSON_AddItemToArray(arr, o);
    }
    if (max_tokens > 0) cJSON_AddNumberToObject(root, "max_tokens", max_tokens);
    if (temperature >= 0) cJSON_AddNumberToObject(root, "temperature", temperature);
    cJSON_AddBoolToObject(root, "stream", 0);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int kf_llm_openai_parse(const char *body, char **reply, kf_llm_usage *u, kf_err *err) {
    *reply = NULL;
    cJSON *root = cJSON_Parse(body);
    if (!root) return kf_fail(err, KF_E_FORMAT, "response is not JSON");
    int rc = 0;
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    if (!cJSON_IsObject(msg)) {
        rc = kf_fail(err, KF_E_FORMAT, "response has no choices[0].message");
        goto out;
    }
    cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(content)) *reply = kf_strdup(content->valuestring);
    else if (cJSON_IsArray(content)) {
        /* Some servers return content parts: [{"type":"text","text":...}]. */
        kf_str s;
        kf_str_init(&s);
        kf_str_append(&s, "");
        cJSON *part;
        cJSON_ArrayForEach(part, content) {
            cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) kf_str_append(&s, t->valuestring);
        }
        *reply = kf_str_take(&s);
    } else *reply = kf_strdup("");  /* null content, e.g. a reply cut by the token limit */
    if (!*reply) {
        rc = kf_fail(err, KF_E_NOMEM, "out of memory");
        goto out;
    }
    cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fr))
        snprintf(u->stop_reason, sizeof u->stop_reason, "%s", fr->valuestring);
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    cJSON *pt = usage ? cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens") : NULL;
    cJSON *ct = usage ? cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens") : NULL;
    if (cJSON_IsNumber(pt)) u->prompt_tokens = (long long)pt->valuedouble;
    if (cJSON_IsNumber(ct)) u->completion_tokens = (long long)ct->valuedouble;
out:
    cJSON_Delete(root);
    return rc;
}
