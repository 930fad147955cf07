/* llm_internal.h: what the files of src/llm share: the provider record, the HTTP transport and
 * the two wire formats. Not for use outside src/llm. */
#ifndef KF_LLM_INTERNAL_H
#define KF_LLM_INTERNAL_H

#include <stddef.h>
#include "llm/kf_llm.h"

struct kf_llm_provider {
    kf_llm_api api;
    char *provider;      /* "openai", "anthropic", "deepseek", "ollama" */
    char *model;
    char *name;          /* "llm:<provider>:<model>" */
    char *base;          /* no trailing '/' */
    char *key;           /* may be "" for keyless local servers; never printed */
    double price_in, price_out;  /* USD per million tokens; < 0 = unpriced */
    int max_tokens;      /* 0 = default */
    double temperature;  /* < 0 = default */
    double timeout_s;    /* 0 = kf_llm_opts' */
};

/* One HTTP POST. Returns 0 when a response arrived (any status) and -1 on a transport error
 * (transport_msg says what; timed_out set for a timeout). */
typedef struct kf_llm_http_resp {
    long status;
    char *body;              /* malloc'd, NUL-terminated */
    size_t len;
    double retry_after_s;    /* Retry-After / retry-after-ms; < 0 when absent */
    int timed_out;
    char transport_msg[256];
} kf_llm_http_resp;

int kf_llm_http_post(const char *url, const char *const *headers, int n_headers, const char *body,
                  double connect_timeout_s, double timeout_s, kf_llm_http_resp *r);
void kf_llm_http_resp_free(kf_llm_http_resp *r);

/* Wire formats. *_request returns the JSON body (malloc'd) or NULL when out of memory. */
char *kf_llm_openai_request(const kf_llm_provider *p, const kf_llm_message *m, int n,
                         int max_tokens, double temperature);
int kf_llm_openai_parse(const char *body, char **reply, kf_llm_usage *u, kf_err *err);
char *kf_llm_anthropic_request(const kf_llm_provider *p, const kf_llm_message *m, int n,
                            int max_tokens, double temperature);
int kf_llm_anthropic_parse(const char *body, char **reply, kf_llm_usage *u, kf_err *err);

/* The provider's error text from an error body ({"error":{"message":...}} in both protocols,
 * or a plain-text body cut to 300 characters). malloc'd. */
char *kf_llm_error_text(const char *body);

#endif
