/* kf_llm.h: chat with a large language model over HTTP. Two wire protocols: any
 * OpenAI-compatible chat-completions endpoint (OpenAI, DeepSeek, vLLM, Ollama, llama.cpp
 * server) and Anthropic's messages API. Requests have connect and total timeouts and are
 * retried with exponential backoff (Retry-After honoured) on 429, 5xx and transport errors.
 *
 * Provider specs: "llm:<provider>:<model>[?key=value&...]" ("llm:" may be left out).
 *   providers: openai     OpenAI protocol, OPENAI_API_KEY, OPENAI_BASE_URL
 *                         (default https://api.openai.com/v1)
 *              anthropic  Anthropic protocol, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
 *                         (default https://api.anthropic.com)
 *              deepseek   OpenAI protocol, DEEPSEEK_API_KEY, DEEPSEEK_BASE_URL
 *                         (default https://api.deepseek.com/v1)
 *              ollama     OpenAI protocol, no key needed, OLLAMA_BASE_URL
 *                         (default http://localhost:11434/v1)
 *   options:   base=URL  key_env=VAR  price_in=USD_PER_M  price_out=USD_PER_M
 *              max_tokens=N  temperature=T  timeout=S
 * The model may contain ':' (Ollama tags). Keys are never accepted inside a spec (specs end up
 * in stores and reports); a key comes from kf_llm_provider_opts.api_key or the environment.
 * No key ever appears in an error message: text that came from a server is scrubbed. */
#ifndef KF_LLM_H
#define KF_LLM_H

#include "core/kf_err.h"

typedef enum { KF_LLM_OPENAI, KF_LLM_ANTHROPIC } kf_llm_api;

typedef struct kf_llm_message {
    const char *role;      /* "system", "user" or "assistant" */
    const char *content;
} kf_llm_message;

typedef struct kf_llm_opts {
    double connect_timeout_s;  /* default 10 */
    double timeout_s;          /* total limit of one HTTP request; default 600 */
    int max_retries;           /* further tries after the first; default 4 */
    double backoff_s;          /* first wait; doubled after every retry; default 2 */
    double backoff_max_s;      /* cap on one wait, Retry-After included; default 60 */
    int max_tokens;            /* 0 = the spec's, else the provider's default (anthropic 8192) */
    double temperature;        /* < 0 = the spec's, else the provider's default */
} kf_llm_opts;

void kf_llm_opts_default(kf_llm_opts *o);

/* Token accounting. kf_llm_chat fills one per call; agents sum them with kf_llm_usage_add. */
typedef struct kf_llm_usage {
    long long prompt_tokens;      /* OpenAI prompt_tokens; Anthropic input_tokens (+ cache) */
    long long completion_tokens;  /* OpenAI completion_tokens; Anthropic output_tokens */
    int calls;                    /* chat calls */
    int requests;                 /* HTTP requests, retries included */
    int retries;
    double seconds;               /* wall time in requests and backoff waits */
    int priced;                   /* 1 when a price per million tokens is configured */
    double cost_usd;              /* valid when priced */
    char stop_reason[32];         /* of the last reply: "stop", "length", "end_turn", ... */
} kf_llm_usage;

void kf_llm_usage_add(kf_llm_usage *sum, const kf_llm_usage *u);

typedef struct kf_llm_provider_opts {
    const char *api_key;          /* overrides the environment; never printed */
    const char *base_url;         /* overrides spec and environment */
    double price_in_per_m;        /* USD per million prompt tokens; < 0 = unpriced (default) */
    double price_out_per_m;       /* USD per million completion tokens; < 0 = unpriced */
} kf_llm_provider_opts;

void kf_llm_provider_opts_default(kf_llm_provider_opts *o);

typedef struct kf_llm_provider kf_llm_provider;

/* Parses the spec, resolves key and base URL. A missing key is KF_E_UNAVAILABLE with a
 * message naming the variable: "OPENAI_API_KEY is not set (needed by agent llm:openai:M)". */
int kf_llm_provider_new(const char *spec, const kf_llm_provider_opts *o, kf_llm_provider **out,
                        kf_err *err);
void kf_llm_provider_free(kf_llm_provider *p);
const char *kf_llm_provider_name(const kf_llm_provider *p);   /* "llm:openai:M" (no options) */
const char *kf_llm_provider_model(const kf_llm_provider *p);
const char *kf_llm_provider_base(const kf_llm_provider *p);   /* base URL, no trailing '/' */
kf_llm_api kf_llm_provider_api(const kf_llm_provider *p);

/* One chat turn: sends messages (system messages first or anywhere; Anthropic gets them in
 * its "system" field) and returns the assistant's text in *reply (malloc'd, caller frees;
 * "" when the model returned no text). usage (may be NULL) is set for this call, failed ones
 * included. On failure after the last retry: KF_E_TIMEOUT for a timeout, KF_E_IO for other
 * transport and HTTP errors (message has the status and the provider's error message),
 * KF_E_FORMAT for an unreadable 200 response. opts may be NULL (defaults). Thread-safe for
 * distinct calls once kf_llm_global_init has run. */
int kf_llm_chat(const kf_llm_provider *p, const kf_llm_message *msgs, int n,
                const kf_llm_opts *opts, char **reply, kf_llm_usage *usage, kf_err *err);

/* libcurl's global set-up; call once from main before any thread starts. */
int kf_llm_global_init(kf_err *err);
void kf_llm_global_cleanup(void);

/* A copy of text with every occurrence of p's key replaced by "[redacted]" (malloc'd). */
char *kf_llm_redact(const kf_llm_provider *p, const char *text);

#endif
