/* llm_http.c: one HTTP POST through libcurl (a fresh easy handle per request, so calls from
 * several threads do not share state), with connect and total timeouts, and the Retry-After
 * header read from the response. Retrying is the caller's job (llm_chat.c). */
#include "llm/llm_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <time.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kf_str.h"

int kf_llm_global_init(kf_err *err) {
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c != CURLE_OK)
        return kf_fail(err, KF_E_UNAVAILABLE, "libcurl could not start: %s", curl_easy_strerror(c));
    return 0;
}

void kf_llm_global_cleanup(void) { curl_global_cleanup(); }

void kf_llm_http_resp_free(kf_llm_http_resp *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static size_t llm_http_body_cb(char *data, size_t size, size_t n, void *ctx) {
    kf_str *s = ctx;
    kf_str_appendn(s, data, size * n);
    return size * n;
}

/* Retry-After: seconds or an HTTP date; retry-after-ms: milliseconds (OpenAI). */
static size_t llm_http_header_cb(char *data, size_t size, size_t n, void *ctx) {
    kf_llm_http_resp *r = ctx;
    size_t len = size * n;
    char line[256];
    if (len >= sizeof line) return len;
    memcpy(line, data, len);
    line[len] = 0;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        line[--len] = 0;
    char *colon = strchr(line, ':');
    if (!colon) {
        /* A new status line (after a 100 Continue or a redirect) starts a new header set. */
        if (!strncmp(line, "HTTP/", 5)) r->retry_after_s = -1;
        return size * n;
    }
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "retry-after-ms")) {
        char *end = NULL;
        double ms = strtod(v, &end);
        if (end != v && ms >= 0) r->retry_after_s = ms / 1000.0;
    } else if (!strcasecmp(line, "retry-after") && r->retry_after_s < 0) {
        char *end = NULL;
        double s = strtod(v, &end);
        if (end != v && isdigit((unsigned char)*v)) {
            if (s >= 0) r->retry_after_s = s;
        } else {
            time_t when = curl_getdate(v, NULL);
            if (when != (time_t)-1) {
                double d = difftime(when, time(NULL));
                r->retry_after_s = d > 0 ? d : 0;
            }
        }
    }
    return size * n;
}

int kf_llm_http_post(const char *url, const char *const *headers, int n_headers, const char *body,
                  double connect_timeout_s, double timeout_s, kf_llm_http_resp *r) {
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(r->transport_msg, sizeof r->transport_msg, "libcurl could not create a handle");
        return -1;
    }
    struct curl_slist *hl = NULL;
    for (int i = 0; i < n_headers; i++) hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");  /* no 100-continue round trip */
    kf_str resp;
    kf_str_init(&resp);
    kf_str_append(&resp, "");
    long connect_ms = (long)(connect_timeout_s * 1000);
    long total_ms = (long)(timeout_s * 1000);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, llm_http_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, llm_http_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms > 0 ? connect_ms : 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_ms > 0 ? total_ms : 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kforge");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        r->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        /* errbuf can name the URL; the URL never holds a key (keys travel in headers). */
        snprintf(r->transport_msg, sizeof r->transport_msg, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        ret = -1;
        kf_str_free(&resp);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        r->len = resp.len;
        r->body = kf_str_take(&resp);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return ret;
}
