/* llm_chat.c: one chat turn against a provider: builds the request for its protocol, posts it,
 * retries with exponential backoff on 429, 5xx and transport errors (Retry-After honoured, up
 * to backoff_max_s), and turns the last failure into one clear, key-free error message. */
#include "llm/llm_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kf_str.h"

static double llm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void llm_sleep(double s) {
    if (s <= 0) return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

char *kf_llm_error_text(const char *body) {
    if (!body || !*body) return kf_strdup("(empty response body)");
    cJSON *root = cJSON_Parse(body);
    if (root) {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        cJSON *m = NULL;
        if (cJSON_IsObject(e)) m = cJSON_GetObjectItemCaseSensitive(e, "message");
        else if (cJSON_IsString(e)) m = e;  /* some servers: {"error":"text"} */
        if (!m) m = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (!m) m = cJSON_GetObjectItemCaseSensitive(root, "detail");
        char *out = cJSON_IsString(m) ? kf_strdup(m->valuestring) : NULL;
        cJSON_Delete(root);
        if (out) return out;
    }
    size_t n = strlen(body);
    if (n > 300) n = 300;
    kf_str s;
    kf_str_init(&s);
    for (size_t i = 0; i < n; i++)
        kf_str_appendn(&s, (body[i] == '\n' || body[i] == '\r') ? " " : body + i, 1);
    if (strlen(body) > n) kf_str_append(&s, "...");
    return kf_str_take(&s);
}

static int llm_retryable_status(long st) { return st == 408 || st == 429 || st >= 500; }

/* Deterministic jitter in [0.85, 1.15) from the clock, so parallel agents spread out. */
static double llm_jitter(int attempt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long x = (unsigned long long)ts.tv_nsec * 6364136223846793005ULL +
                           (unsigned long long)attempt * 1442695040888963407ULL;
    x ^= x >> 33;
    return 0.85 + 0.3 * (double)(x % 1000) / 1000.0;
}

int kf_llm_chat(const kf_llm_provider *p, const kf_llm_message *msgs, int n,
                const kf_llm_opts *opts, char **reply, kf_llm_usage *usage, kf_err *err) {
    *reply = NULL;
    kf_llm_usage local;
    if (!usage) usage = &local;
    memset(usage, 0, sizeof *usage);
    usage->calls = 1;
    kf_llm_opts def;
    if (!opts) {
        kf_llm_opts_default(&def);
        opts = &def;
    }
    int max_tokens = opts->max_tokens > 0 ? opts->max_tokens : p->max_tokens;
    double temperature = opts->temperature >= 0 ? opts->temperature : p->temperature;
    double timeout_s = p->timeout_s > 0 ? p->timeout_s : opts->timeout_s;

    char *body = p->api == KF_LLM_ANTHROPIC
                     ? kf_llm_anthropic_request(p, msgs, n, max_tokens, temperature)
                     : kf_llm_openai_request(p, msgs, n, max_tokens, temperature);
    if (!body) return kf_fail(err, KF_E_NOMEM, "out of memory");
    char *url = kf_asprintf("%s%s", p->base,
                            p->api == KF_LLM_ANTHROPIC ? "/v1/messages" : "/chat/completions");
    /* Header lines hold the key; they are freed (and wiped) before returning. */
    char *auth = p->api == KF_LLM_ANTHROPIC ? kf_asprintf("x-api-key: %s", p->key)
                 : p->key[0]                ? kf_asprintf("Authorization: Bearer %s", p->key)
                                            : NULL;
    const char *headers[2];
    int nh = 0;
    if (auth) headers[nh++] = auth;
    if (p->api == KF_LLM_ANTHROPIC) headers[nh++] = "anthropic-version: 2023-06-01";

    double t0 = llm_now();
    int rc = 0;
    int tries = 0;
    char last[600];
    last[0] = 0;
    int last_code = KF_E_IO;
    for (;;) {
        kf_llm_http_resp r;
        tries++;
        usage->requests++;
        int tr = kf_llm_http_post(url, headers, nh, body, opts->connect_timeout_s, timeout_s, &r);
        int retry = 0;
        if (tr) {
            last_code = r.timed_out ? KF_E_TIMEOUT : KF_E_IO;
            if (r.timed_out)
                snprintf(last, sizeof last, "no complete answer within %g s (%s)", timeout_s,
                         r.transport_msg);
            else snprintf(last, sizeof last, "%s", r.transport_msg);
            retry = 1;
        } else if (r.status >= 200 && r.status < 300) {
            kf_err perr;
            kf_err_clear(&perr);
            int pr = p->api == KF_LLM_ANTHROPIC ? kf_llm_anthropic_parse(r.body, reply, usage, &perr)
                                                : kf_llm_openai_parse(r.body, reply, usage, &perr);
            kf_llm_http_resp_free(&r);
            if (pr) {
                rc = kf_fail(err, pr, "%s: unreadable response from %s: %s", p->name, url,
                             perr.msg);
            }
            break;
        } else {
            char *et = kf_llm_error_text(r.body);
            last_code = KF_E_IO;
            snprintf(last, sizeof last, "HTTP %ld: %s", r.status, et ? et : "");
            free(et);
            retry = llm_retryable_status(r.status);
        }
        if (!retry || tries > opts->max_retries) {
            kf_llm_http_resp_free(&r);
            char *safe = kf_llm_redact(p, last);
            if (tries > 1)
                rc = kf_fail(err, last_code, "%s: request to %s failed after %d tries: %s",
                             p->name, url, tries, safe ? safe : "");
            else
                rc = kf_fail(err, last_code, "%s: request to %s failed: %s", p->name, url,
                             safe ? safe : "");
            free(safe);
            break;
        }
        double wait = opts->backoff_s;
        for (int i = 1; i < tries; i++) wait *= 2;
        wait *= llm_jitter(tries);
        if (!tr && r.retry_after_s >= 0) wait = r.retry_after_s;
        if (wait > opts->backoff_max_s) wait = opts->backoff_max_s;
        kf_llm_http_resp_free(&r);
        usage->retries++;
        llm_sleep(wait);
    }
    usage->seconds = llm_now() - t0;
    if (p->price_in >= 0 || p->price_out >= 0) {
        usage->priced = 1;
        usage->cost_usd = (double)usage->prompt_tokens * (p->price_in > 0 ? p->price_in : 0) / 1e6 +
                          (double)usage->completion_tokens * (p->price_out > 0 ? p->price_out : 0) /
                              1e6;
    }
    if (auth) {
        volatile char *a = auth;
        for (size_t i = 0; a[i]; i++) a[i] = 0;
        free(auth);
    }
    free(url);
    free(body);
    if (rc) {
        free(*reply);
        *reply = NULL;
    }
    return rc;
}
