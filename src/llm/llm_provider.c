/* llm_provider.c: turning a spec ("llm:openai:gpt-4.1?price_in=2") into a provider record:
 * which protocol, which model, which base URL and which key (environment or caller). */
#include "llm/llm_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"

typedef struct llm_known {
    const char *provider;
    kf_llm_api api;
    const char *key_env;      /* NULL: no key needed */
    const char *base_env;
    const char *base_default;
} llm_known;

static const llm_known llm_known_providers[] = {
    {"openai", KF_LLM_OPENAI, "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"},
    {"anthropic", KF_LLM_ANTHROPIC, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
     "https://api.anthropic.com"},
    {"deepseek", KF_LLM_OPENAI, "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL",
     "https://api.deepseek.com/v1"},
    {"ollama", KF_LLM_OPENAI, NULL, "OLLAMA_BASE_URL", "http://localhost:11434/v1"},
};

void kf_llm_opts_default(kf_llm_opts *o) {
    memset(o, 0, sizeof *o);
    o->connect_timeout_s = 10;
    o->timeout_s = 600;
    o->max_retries = 4;
    o->backoff_s = 2;
    o->backoff_max_s = 60;
    o->max_tokens = 0;
    o->temperature = -1;
}

void kf_llm_provider_opts_default(kf_llm_provider_opts *o) {
    memset(o, 0, sizeof *o);
    o->price_in_per_m = -1;
    o->price_out_per_m = -1;
}

void kf_llm_usage_add(kf_llm_usage *sum, const kf_llm_usage *u) {
    sum->prompt_tokens += u->prompt_tokens;
    sum->completion_tokens += u->completion_tokens;
    sum->calls += u->calls;
    sum->requests += u->requests;
    sum->retries += u->retries;
    sum->seconds += u->seconds;
    if (u->priced) {
        sum->priced = 1;
        sum->cost_usd += u->cost_usd;
    }
    if (u->stop_reason[0]) memcpy(sum->stop_reason, u->stop_reason, sizeof sum->stop_reason);
}

void kf_llm_provider_free(kf_llm_provider *p) {
    if (!p) return;
    free(p->provider);
    free(p->model);
    free(p->name);
    free(p->base);
    if (p->key) {
        /* Keys do not linger in freed memory. */
        volatile char *k = p->key;
        for (size_t i = 0; k[i]; i++) k[i] = 0;
        free(p->key);
    }
    free(p);
}

const char *kf_llm_provider_name(const kf_llm_provider *p) { return p->name; }
const char *kf_llm_provider_model(const kf_llm_provider *p) { return p->model; }
const char *kf_llm_provider_base(const kf_llm_provider *p) { return p->base; }
kf_llm_api kf_llm_provider_api(const kf_llm_provider *p) { return p->api; }

static int llm_parse_num(const char *v, double *out) {
    char *end = NULL;
    double d = strtod(v, &end);
    if (!*v || !end || *end) return -1;
    *out = d;
    return 0;
}

static int llm_valid_env_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* Applies one "key=value" option of the spec. key_env and base may be set through it. */
static int llm_apply_option(kf_llm_provider *p, const char *opt, char **key_env, char **base,
                            kf_err *err) {
    const char *eq = strchr(opt, '=');
    if (!eq) return kf_fail(err, KF_E_INVALID, "option '%s' of %s has no '='", opt, p->name);
    size_t kl = (size_t)(eq - opt);
    const char *v = eq + 1;
    double d = 0;
    if (kl == 4 && !strncmp(opt, "base", 4)) {
        free(*base);
        *base = kf_strdup(v);
    } else if (kl == 7 && !strncmp(opt, "key_env", 7)) {
        if (!llm_valid_env_name(v))
            return kf_fail(err, KF_E_INVALID, "key_env of %s must name an environment variable",
                           p->name);
        free(*key_env);
        *key_env = kf_strdup(v);
    } else if (kl == 3 && !strncmp(opt, "key", 3)) {
        return kf_fail(err, KF_E_INVALID,
                       "%s: keys are not accepted in agent specs; use key_env=VARIABLE", p->name);
    } else if (kl == 8 && !strncmp(opt, "price_in", 8)) {
        if (llm_parse_num(v, &d) || d < 0) goto bad;
        p->price_in = d;
    } else if (kl == 9 && !strncmp(opt, "price_out", 9)) {
        if (llm_parse_num(v, &d) || d < 0) goto bad;
        p->price_out = d;
    } else if (kl == 10 && !strncmp(opt, "max_tokens", 10)) {
        if (llm_parse_num(v, &d) || d < 1 || d > 10000000) goto bad;
        p->max_tokens = (int)d;
    } else if (kl == 11 && !strncmp(opt, "temperature", 11)) {
        if (llm_parse_num(v, &d) || d < 0 || d > 2) goto bad;
        p->temperature = d;
    } else if (kl == 7 && !strncmp(opt, "timeout", 7)) {
        if (llm_parse_num(v, &d) || d <= 0) goto bad;
        p->timeout_s = d;
    } else {
        return kf_fail(err, KF_E_INVALID,
                       "unknown option '%.*s' in %s (known: base, key_env, price_in, price_out, "
                       "max_tokens, temperature, timeout)", (int)kl, opt, p->name);
    }
    return 0;
bad:
    return kf_fail(err, KF_E_INVALID, "bad value for option '%.*s' of %s", (int)kl, opt, p->name);
}

static int llm_apply_options(kf_llm_provider *p, const char *opts, char **key_env, char **base,
                             kf_err *err) {
    char *copy = kf_strdup(opts);
    if (!copy) return kf_fail(err, KF_E_NOMEM, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, "&", &save); tok && !rc; tok = strtok_r(NULL, "&", &save))
        rc = llm_apply_option(p, tok, key_env, base, err);
    free(copy);
    return rc;
}

int kf_llm_provider_new(const char *spec, const kf_llm_provider_opts *o, kf_llm_provider **out,
                        kf_err *err) {
    *out = NULL;
    kf_llm_provider_opts def;
    if (!o) {
        kf_llm_provider_opts_default(&def);
        o = &def;
    }
    if (!spec) return kf_fail(err, KF_E_INVALID, "no LLM spec given");
    const char *s = spec;
    if (!strncmp(s, "llm:", 4)) s += 4;
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || !colon[1] || colon[1] == '?')
        return kf_fail(err, KF_E_INVALID,
                       "bad LLM agent '%s': expected llm:<provider>:<model> with provider one of "
                       "openai, anthropic, deepseek, ollama", spec);
    const llm_known *known = NULL;
    for (size_t i = 0; i < sizeof llm_known_providers / sizeof llm_known_providers[0]; i++)
        if (strlen(llm_known_providers[i].provider) == (size_t)(colon - s) &&
            !strncmp(s, llm_known_providers[i].provider, (size_t)(colon - s)))
            known = &llm_known_providers[i];
    if (!known)
        return kf_fail(err, KF_E_INVALID,
                       "unknown LLM provider '%.*s' in '%s' (known: openai, anthropic, deepseek, "
                       "ollama; any OpenAI-compatible server works as openai with "
                       "OPENAI_BASE_URL or ?base=URL)", (int)(colon - s), s, spec);
    const char *model = colon + 1;
    const char *q = strchr(model, '?');
    size_t model_len = q ? (size_t)(q - model) : strlen(model);

    kf_llm_provider *p = calloc(1, sizeof *p);
    if (!p) return kf_fail(err, KF_E_NOMEM, "out of memory");
    p->api = known->api;
    p->provider = kf_strdup(known->provider);
    p->model = malloc(model_len + 1);
    if (p->model) {
        memcpy(p->model, model, model_len);
        p->model[model_len] = 0;
    }
    p->name = p->model ? kf_asprintf("llm:%s:%s", known->provider, p->model) : NULL;
    p->price_in = o->price_in_per_m;
    p->price_out = o->price_out_per_m;
    p->temperature = -1;
    char *key_env = kf_strdup(known->key_env);
    char *base = NULL;
    int rc = 0;
    if (!p->provider || !p->model || !p->name) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
    if (!rc && q) rc = llm_apply_options(p, q + 1, &key_env, &base, err);
    if (!rc) {
        /* Base URL: caller, then spec, then environment, then the provider's default. */
        const char *b = o->base_url;
        if (!b || !*b) b = base;
        if (!b || !*b) b = getenv(known->base_env);
        if (!b || !*b) b = known->base_default;
        p->base = kf_strdup(b);
        if (!p->base) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
        else {
            size_t bl = strlen(p->base);
            while (bl > 0 && p->base[bl - 1] == '/') p->base[--bl] = 0;
            if (strncmp(p->base, "http://", 7) && strncmp(p->base, "https://", 8))
                rc = kf_fail(err, KF_E_INVALID,
                             "base URL of %s must start with http:// or https://", p->name);
        }
    }
    if (!rc) {
        const char *k = o->api_key;
        if ((!k || !*k) && key_env) k = getenv(key_env);
        if (k && *k) p->key = kf_strdup(k);
        else if (key_env)
            rc = kf_fail(err, KF_E_UNAVAILABLE, "%s is not set (needed by agent %s)", key_env,
                         p->name);
        else p->key = kf_strdup("");
        if (!rc && !p->key) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    free(key_env);
    free(base);
    if (rc) {
        kf_llm_provider_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

char *kf_llm_redact(const kf_llm_provider *p, const char *text) {
    if (!text) return kf_strdup("");
    const char *key = p ? p->key : NULL;
    size_t kl = key ? strlen(key) : 0;
    if (kl == 0) return kf_strdup(text);
    kf_str out;
    kf_str_init(&out);
    const char *s = text;
    for (const char *hit; (hit = strstr(s, key)); s = hit + kl) {
        kf_str_appendn(&out, s, (size_t)(hit - s));
        kf_str_append(&out, "[redacted]");
    }
    kf_str_append(&out, s);
    return kf_str_take(&out);
}
