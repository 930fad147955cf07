/* test_llm.c: the LLM providers against the real local mock server (tool_mock_llm) over
 * sockets: OpenAI and Anthropic round trips with usage and cost, retries on 429/5xx with
 * Retry-After, a timeout with a bounded total time, errors that are not retried, missing keys
 * named by variable, spec parsing, and keys absent from every error message. */
#include <stdlib.h>
#include <string.h>

#include "kf_test.h"
#include "llm/kf_llm.h"
#include "test_llm_mock.h"

#define TEST_KEY "sk-test-0123456789abcdefSECRET"

static kf_llm_provider *make_provider(const char *spec, const char *base, const char *key,
                                      double pin, double pout) {
    kf_llm_provider_opts po;
    kf_llm_provider_opts_default(&po);
    po.api_key = key;
    po.base_url = base;
    po.price_in_per_m = pin;
    po.price_out_per_m = pout;
    kf_llm_provider *p = NULL;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_provider_new(spec, &po, &p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    return p;
}

static void fast_opts(kf_llm_opts *o) {
    kf_llm_opts_default(o);
    o->connect_timeout_s = 2;
    o->timeout_s = 10;
    o->max_retries = 3;
    o->backoff_s = 0.05;
    o->backoff_max_s = 5;
}

static void test_openai_round_trip(void) {
    char fx[PATH_MAX];
    test_fixture("chat_ok.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, TEST_KEY)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", m.base_openai, TEST_KEY, 2.0, 8.0);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    KF_CHECK_STR(kf_llm_provider_name(p), "llm:openai:gpt-test");
    kf_llm_message msgs[] = {{"system", "You write kernels."}, {"user", "Add two vectors."}};
    kf_llm_opts o;
    fast_opts(&o);
    o.max_tokens = 1234;
    o.temperature = 0.25;
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_chat(p, msgs, 2, &o, &reply, &u, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_STR(reply, "Hello from the mock.");
    KF_CHECK_EQ_INT(u.prompt_tokens, 11);
    KF_CHECK_EQ_INT(u.completion_tokens, 7);
    KF_CHECK_EQ_INT(u.requests, 1);
    KF_CHECK_EQ_INT(u.retries, 0);
    KF_CHECK_EQ_INT(u.priced, 1);
    KF_CHECK_NEAR(u.cost_usd, 11 * 2.0 / 1e6 + 7 * 8.0 / 1e6, 1e-12);
    KF_CHECK_STR(u.stop_reason, "stop");
    char line[256] = "";
    KF_CHECK(test_mock_request_line(&m, 1, line, sizeof line) == 0);
    KF_CHECK_STR(line, "POST /v1/chat/completions");
    char *body = test_mock_request(&m, 1);
    KF_CHECK(body != NULL);
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    KF_CHECK(root != NULL);
    if (root) {
        KF_CHECK_STR(cJSON_GetObjectItem(root, "model")->valuestring, "gpt-test");
        KF_CHECK_EQ_INT(cJSON_GetObjectItem(root, "max_tokens")->valueint, 1234);
        KF_CHECK_NEAR(cJSON_GetObjectItem(root, "temperature")->valuedouble, 0.25, 1e-12);
        cJSON *ms = cJSON_GetObjectItem(root, "messages");
        KF_CHECK_EQ_INT(cJSON_GetArraySize(ms), 2);
        KF_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 0), "role")->valuestring, "system");
        KF_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 1), "content")->valuestring,
                     "Add two vectors.");
    }
    KF_CHECK(body && !strstr(body, TEST_KEY));  /* the key travels in a header only */
    cJSON_Delete(root);
    free(body);
    free(reply);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

static void test_anthropic_round_trip(void) {
    char fx[PATH_MAX];
    test_fixture("chat_ok.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, TEST_KEY)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p =
        make_provider("llm:anthropic:claude-test", m.base_anthropic, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"system", "Rules."},
                             {"user", "First."},
                             {"assistant", "Answer one."},
                             {"user", "Second."}};
    kf_llm_opts o;
    fast_opts(&o);
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_chat(p, msgs, 4, &o, &reply, &u, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_STR(reply, "Hello from the mock.");
    KF_CHECK_EQ_INT(u.prompt_tokens, 11);
    KF_CHECK_EQ_INT(u.completion_tokens, 7);
    KF_CHECK_EQ_INT(u.priced, 0);
    KF_CHECK_STR(u.stop_reason, "end_turn");
    char line[256] = "";
    KF_CHECK(test_mock_request_line(&m, 1, line, sizeof line) == 0);
    KF_CHECK_STR(line, "POST /v1/messages");
    char *body = test_mock_request(&m, 1);
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    KF_CHECK(root != NULL);
    if (root) {
        KF_CHECK_STR(cJSON_GetObjectItem(root, "system")->valuestring, "Rules.");
        KF_CHECK_EQ_INT(cJSON_GetObjectItem(root, "max_tokens")->valueint, 8192);
        cJSON *ms = cJSON_GetObjectItem(root, "messages");
        KF_CHECK_EQ_INT(cJSON_GetArraySize(ms), 3);
        KF_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 0), "role")->valuestring, "user");
        KF_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 1), "role")->valuestring,
                     "assistant");
        KF_CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 2), "content")->valuestring,
                     "Second.");
    }
    cJSON_Delete(root);
    free(body);
    free(reply);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

/* 429 with Retry-After: 1, then 500, then an answer: two retries, and the wait honoured. */
static void test_retry_429_then_success(void) {
    char fx[PATH_MAX];
    test_fixture("retry_then_ok.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", m.base_openai, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"user", "hi"}};
    kf_llm_opts o;
    fast_opts(&o);
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    double t0 = test_now();
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, &u, &err);
    double dt = test_now() - t0;
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_STR(reply, "answer after two retries");
    KF_CHECK_EQ_INT(u.requests, 3);
    KF_CHECK_EQ_INT(u.retries, 2);
    KF_CHECK_EQ_INT(u.prompt_tokens, 5);
    KF_CHECK_MSG(dt >= 0.95, "Retry-After: 1 was not honoured (%.3f s)", dt);
    KF_CHECK_MSG(dt < 4, "retries took %.3f s", dt);
    KF_CHECK_EQ_INT(test_mock_count(&m), 3);
    free(reply);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

/* A server that never answers in time: a timeout error after every retry, bounded in time. */
static void test_timeout_after_retries(void) {
    char fx[PATH_MAX];
    test_fixture("always_slow.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", m.base_openai, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"user", "hi"}};
    kf_llm_opts o;
    fast_opts(&o);
    o.timeout_s = 0.5;
    o.max_retries = 2;
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    double t0 = test_now();
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, &u, &err);
    double dt = test_now() - t0;
    KF_CHECK_EQ_INT(rc, KF_E_TIMEOUT);
    KF_CHECK(reply == NULL);
    KF_CHECK_EQ_INT(u.requests, 3);
    KF_CHECK_MSG(strstr(err.msg, "llm:openai:gpt-test") != NULL, "%s", err.msg);
    KF_CHECK_MSG(strstr(err.msg, "after 3 tries") != NULL, "%s", err.msg);
    KF_CHECK_MSG(strstr(err.msg, "within 0.5 s") != NULL, "%s", err.msg);
    KF_CHECK_MSG(dt >= 1.4 && dt < 5, "total time %.3f s (3 tries of 0.5 s plus short waits)", dt);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

/* 400 is the caller's mistake: no retry, the provider's message in the error. */
static void test_http_error_not_retried(void) {
    char fx[PATH_MAX];
    test_fixture("bad_request.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:openai:no-such-model", m.base_openai, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"user", "hi"}};
    kf_llm_opts o;
    fast_opts(&o);
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, &u, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);
    KF_CHECK_EQ_INT(u.requests, 1);
    KF_CHECK_MSG(strstr(err.msg, "HTTP 400: The model `no-such-model` does not exist") != NULL,
                 "%s", err.msg);
    KF_CHECK_EQ_INT(test_mock_count(&m), 1);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

/* Anthropic's 529 (overloaded) is retried, then reported with the status and message. */
static void test_5xx_exhausted(void) {
    char fx[PATH_MAX];
    test_fixture("overloaded.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:anthropic:claude-test", m.base_anthropic, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"user", "hi"}};
    kf_llm_opts o;
    fast_opts(&o);
    o.max_retries = 2;
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, &u, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);
    KF_CHECK_EQ_INT(u.requests, 3);
    KF_CHECK_MSG(strstr(err.msg, "failed after 3 tries: HTTP 529: Overloaded") != NULL, "%s",
                 err.msg);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

static void test_unreadable_response(void) {
    char fx[PATH_MAX];
    test_fixture("unreadable_body.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", m.base_openai, TEST_KEY, -1, -1);
    if (!p) {
        test_mock_stop(&m);
        return;
    }
    kf_llm_message msgs[] = {{"user", "hi"}};
    char *reply = NULL;
    kf_err err;
    kf_err_clear(&err);
    kf_llm_opts o;
    fast_opts(&o);
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, NULL, &err);
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    KF_CHECK_MSG(strstr(err.msg, "response is not JSON") != NULL, "%s", err.msg);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
}

/* Nobody listening: a transport error after the retries, quickly. */
static void test_connection_refused(void) {
    test_mock m;
    char fx[PATH_MAX];
    test_fixture("chat_ok.json", fx, sizeof fx);
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    char base[128];
    snprintf(base, sizeof base, "%s", m.base_openai);
    test_mock_stop(&m);  /* the port is now closed */
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", base, TEST_KEY, -1, -1);
    if (!p) return;
    kf_llm_message msgs[] = {{"user", "hi"}};
    kf_llm_opts o;
    fast_opts(&o);
    o.max_retries = 1;
    char *reply = NULL;
    kf_llm_usage u;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_chat(p, msgs, 1, &o, &reply, &u, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);
    KF_CHECK_EQ_INT(u.requests, 2);
    KF_CHECK_MSG(strstr(err.msg, "failed after 2 tries") != NULL, "%s", err.msg);
    kf_llm_provider_free(p);
}

static void test_missing_key_names_variable(void) {
    unsetenv("OPENAI_API_KEY");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("DEEPSEEK_API_KEY");
    unsetenv("KF_TEST_UNSET_KEY");
    kf_llm_provider *p = NULL;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:gpt-x", NULL, &p, &err), KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "OPENAI_API_KEY is not set (needed by agent llm:openai:gpt-x)");
    KF_CHECK(p == NULL);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:anthropic:claude-y", NULL, &p, &err), KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "ANTHROPIC_API_KEY is not set (needed by agent llm:anthropic:claude-y)");
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:deepseek:deepseek-chat", NULL, &p, &err),
                    KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "DEEPSEEK_API_KEY is not set (needed by agent llm:deepseek:deepseek-chat)");
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:local?key_env=KF_TEST_UNSET_KEY", NULL, &p, &err),
                    KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "KF_TEST_UNSET_KEY is not set (needed by agent llm:openai:local)");
    /* An empty variable is as good as unset. */
    setenv("OPENAI_API_KEY", "", 1);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:gpt-x", NULL, &p, &err), KF_E_UNAVAILABLE);
    unsetenv("OPENAI_API_KEY");
    /* Ollama needs no key. */
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:ollama:qwen2.5-coder:32b", NULL, &p, &err), 0);
    if (p) {
        KF_CHECK_STR(kf_llm_provider_model(p), "qwen2.5-coder:32b");
        KF_CHECK_STR(kf_llm_provider_name(p), "llm:ollama:qwen2.5-coder:32b");
        kf_llm_provider_free(p);
    }
}

static void test_spec_parsing(void) {
    kf_llm_provider *p = NULL;
    kf_err err;
    kf_err_clear(&err);
    setenv("OPENAI_API_KEY", TEST_KEY, 1);
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/", 1);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:gpt-4.1?price_in=2&price_out=8&max_tokens=100",
                                        NULL, &p, &err), 0);
    if (p) {
        KF_CHECK_STR(kf_llm_provider_name(p), "llm:openai:gpt-4.1");
        KF_CHECK_STR(kf_llm_provider_base(p), "http://127.0.0.1:9/v1");
        KF_CHECK(kf_llm_provider_api(p) == KF_LLM_OPENAI);
        kf_llm_provider_free(p);
    }
    /* The spec's base beats the environment; the caller's beats both. */
    KF_CHECK_EQ_INT(kf_llm_provider_new("openai:m?base=http://10.0.0.1:8000/v1", NULL, &p, &err), 0);
    if (p) {
        KF_CHECK_STR(kf_llm_provider_base(p), "http://10.0.0.1:8000/v1");
        kf_llm_provider_free(p);
    }
    unsetenv("OPENAI_BASE_URL");
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:m", NULL, &p, &err), 0);
    if (p) {
        KF_CHECK_STR(kf_llm_provider_base(p), "https://api.openai.com/v1");
        kf_llm_provider_free(p);
    }
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:m?key=" TEST_KEY, NULL, &p, &err), KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "key_env") && !strstr(err.msg, TEST_KEY), "%s", err.msg);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:m?colour=red", NULL, &p, &err), KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "unknown option 'colour'") != NULL, "%s", err.msg);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:m?price_in=cheap", NULL, &p, &err), KF_E_INVALID);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:gemini:m", NULL, &p, &err), KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "unknown LLM provider 'gemini'") != NULL, "%s", err.msg);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai", NULL, &p, &err), KF_E_INVALID);
    KF_CHECK_EQ_INT(kf_llm_provider_new("llm:openai:m?base=ftp://x", NULL, &p, &err), KF_E_INVALID);
    unsetenv("OPENAI_API_KEY");
}

/* Keys never appear in an error message, even when a server echoes them back. */
static void test_key_never_in_errors(void) {
    char dir[PATH_MAX];
    if (test_mkdtemp(dir, sizeof dir)) KF_SKIP("no temp folder");
    char fx[PATH_MAX + 32];
    snprintf(fx, sizeof fx, "%s/echo.json", dir);
    FILE *f = fopen(fx, "w");
    KF_CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "{\"responses\":[{\"status\":500,\"error\":\"upstream rejected key %s\"},"
               "{\"status\":400,\"error\":\"bad key %s\"},"
               "{\"status\":503,\"raw\":\"plain text with %s in it\"}]}", TEST_KEY, TEST_KEY, TEST_KEY);
    fclose(f);
    kf_llm_opts o;
    fast_opts(&o);
    o.max_retries = 0;
    kf_llm_message msgs[] = {{"user", "hi"}};

    /* 1: wrong key; the mock's 401 echoes the presented key, as OpenAI's does. */
    test_mock m;
    if (test_mock_start(&m, fx, "the-right-key")) {
        test_rmtree(dir);
        KF_SKIP("tool_mock_llm did not start");
    }
    const char *specs[] = {"llm:openai:gpt-test", "llm:anthropic:claude-test"};
    for (int s = 0; s < 2; s++) {
        kf_llm_provider *p = make_provider(specs[s], s ? m.base_anthropic : m.base_openai,
                                           TEST_KEY, -1, -1);
        if (!p) continue;
        char *reply = NULL;
        kf_err err;
        kf_err_clear(&err);
        int rc = kf_llm_chat(p, msgs, 1, &o, &reply, NULL, &err);
        KF_CHECK_EQ_INT(rc, KF_E_IO);
        KF_CHECK_MSG(strstr(err.msg, "HTTP 401") != NULL, "%s", err.msg);
        KF_CHECK_MSG(strstr(err.msg, "[redacted]") != NULL, "%s", err.msg);
        KF_CHECK_MSG(strstr(err.msg, TEST_KEY) == NULL, "key leaked: %s", err.msg);
        kf_llm_provider_free(p);
    }
    test_mock_stop(&m);

    /* 2: the right key, error bodies that quote it. */
    if (test_mock_start(&m, fx, NULL)) {
        test_rmtree(dir);
        KF_SKIP("tool_mock_llm did not start");
    }
    kf_llm_provider *p = make_provider("llm:openai:gpt-test", m.base_openai, TEST_KEY, -1, -1);
    for (int i = 0; p && i < 3; i++) {
        char *reply = NULL;
        kf_err err;
        kf_err_clear(&err);
        int rc = kf_llm_chat(p, msgs, 1, &o, &reply, NULL, &err);
        KF_CHECK(rc != 0);
        KF_CHECK_MSG(strstr(err.msg, TEST_KEY) == NULL, "key leaked: %s", err.msg);
        KF_CHECK_MSG(strstr(err.msg, "[redacted]") != NULL, "%s", err.msg);
    }
    char *red = kf_llm_redact(p, "a " TEST_KEY " b " TEST_KEY);
    KF_CHECK_STR(red, "a [redacted] b [redacted]");
    free(red);
    kf_llm_provider_free(p);
    test_mock_stop(&m);
    test_rmtree(dir);
}

static void test_usage_sum(void) {
    kf_llm_usage a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    b.prompt_tokens = 10;
    b.completion_tokens = 4;
    b.calls = 1;
    b.requests = 2;
    b.retries = 1;
    b.priced = 1;
    b.cost_usd = 0.5;
    snprintf(b.stop_reason, sizeof b.stop_reason, "length");
    kf_llm_usage_add(&a, &b);
    kf_llm_usage_add(&a, &b);
    KF_CHECK_EQ_INT(a.prompt_tokens, 20);
    KF_CHECK_EQ_INT(a.completion_tokens, 8);
    KF_CHECK_EQ_INT(a.calls, 2);
    KF_CHECK_EQ_INT(a.requests, 4);
    KF_CHECK_EQ_INT(a.retries, 2);
    KF_CHECK_NEAR(a.cost_usd, 1.0, 1e-12);
    KF_CHECK_STR(a.stop_reason, "length");
}

int main(void) {
    kf_err err;
    if (kf_llm_global_init(&err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    KF_RUN(test_openai_round_trip);
    KF_RUN(test_anthropic_round_trip);
    KF_RUN(test_retry_429_then_success);
    KF_RUN(test_timeout_after_retries);
    KF_RUN(test_http_error_not_retried);
    KF_RUN(test_5xx_exhausted);
    KF_RUN(test_unreadable_response);
    KF_RUN(test_connection_refused);
    KF_RUN(test_missing_key_names_variable);
    KF_RUN(test_spec_parsing);
    KF_RUN(test_key_never_in_errors);
    KF_RUN(test_usage_sum);
    kf_llm_global_cleanup();
    return kf_test_report();
}
