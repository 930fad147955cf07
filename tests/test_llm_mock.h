/* test_llm_mock.h: starting and stopping tool_mock_llm (the scripted LLM server) from a test,
 * finding fixtures, and reading back what the server was sent. Header-only, for
 * tests/test_llm*.c. */
#ifndef TEST_LLM_MOCK_H
#define TEST_LLM_MOCK_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/kf_str.h"

typedef struct test_mock {
    pid_t pid;
    int port;
    char log[PATH_MAX];
    char base_openai[128];     /* http://127.0.0.1:PORT/v1 */
    char base_anthropic[128];  /* http://127.0.0.1:PORT */
} test_mock;

static inline const char *test_exe_dir(void) {
    static char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) return ".";
    dir[n] = 0;
    char *s = strrchr(dir, '/');
    if (s) *s = 0;
    return dir;
}

/* tests/llm_fixtures/NAME from the repository root (the runner's cwd) or the binary's place. */
static inline void test_fixture(const char *name, char *out, size_t n) {
    snprintf(out, n, "tests/llm_fixtures/%s", name);
    if (access(out, R_OK) == 0) return;
    snprintf(out, n, "%s/../../tests/llm_fixtures/%s", test_exe_dir(), name);
}

static inline void test_repo_path(const char *rel, char *out, size_t n) {
    snprintf(out, n, "%s", rel);
    if (access(out, R_OK) == 0) return;
    snprintf(out, n, "%s/../../%s", test_exe_dir(), rel);
}

static inline int test_mkdtemp(char *out, size_t n) {
    const char *t = getenv("TMPDIR");
    /* mkdtemp's template ends in six 'X' characters. */
    int len = snprintf(out, n, "%s/kf-llm-test-......", t && *t ? t : "/tmp");
    if (len < 6 || (size_t)len >= n) return -1;
    memset(out + len - 6, 'X', 6);
    return mkdtemp(out) ? 0 : -1;
}

static inline void test_rmtree(const char *dir) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* Starts the server on fixture_path; key (may be NULL) is the key it insists on. */
static inline int test_mock_start(test_mock *m, const char *fixture_path, const char *key) {
    memset(m, 0, sizeof *m);
    if (test_mkdtemp(m->log, sizeof m->log)) return -1;
    char tool[PATH_MAX];
    snprintf(tool, sizeof tool, "%s/tool_mock_llm", test_exe_dir());
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (key)
            execl(tool, tool, "--fixture", fixture_path, "--log", m->log, "--key", key,
                  "--lifetime", "120", (char *)NULL);
        else
            execl(tool, tool, "--fixture", fixture_path, "--log", m->log, "--lifetime", "120",
                  (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[32] = "";
    size_t got = 0;
    while (got + 1 < sizeof line) {
        ssize_t r = read(fd[0], line + got, 1);
        if (r <= 0 || line[got] == '\n') break;
        got++;
    }
    line[got] = 0;
    close(fd[0]);
    m->pid = pid;
    m->port = atoi(line);
    if (m->port <= 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        m->pid = 0;
        return -1;
    }
    snprintf(m->base_openai, sizeof m->base_openai, "http://127.0.0.1:%d/v1", m->port);
    snprintf(m->base_anthropic, sizeof m->base_anthropic, "http://127.0.0.1:%d", m->port);
    return 0;
}

static inline void test_mock_stop(test_mock *m) {
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
    if (m->log[0]) test_rmtree(m->log);
}

/* The body of request n (1-based) as the server received it; NULL if there was none. */
static inline char *test_mock_request(const test_mock *m, int n) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/req-%03d.json", m->log, n);
    char *data = NULL;
    if (kf_read_file(path, &data, NULL)) return NULL;
    return data;
}

/* The first line of req-NNN.txt: "POST /v1/chat/completions". */
static inline int test_mock_request_line(const test_mock *m, int n, char *out, size_t cap) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/req-%03d.txt", m->log, n);
    char *data = NULL;
    if (kf_read_file(path, &data, NULL)) return -1;
    char *nl = strchr(data, '\n');
    if (nl) *nl = 0;
    snprintf(out, cap, "%s", data);
    free(data);
    return 0;
}

static inline int test_mock_count(const test_mock *m) {
    int n = 0;
    for (;;) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/req-%03d.txt", m->log, n + 1);
        if (access(path, R_OK)) return n;
        n++;
    }
}

/* messages[i].content of request n (OpenAI layout), malloc'd; i < 0 counts from the end. */
static inline char *test_mock_message(const test_mock *m, int n, int i, char *role, size_t rl) {
    char *body = test_mock_request(m, n);
    if (!body) return NULL;
    cJSON *root = cJSON_Parse(body);
    free(body);
    cJSON *msgs = root ? cJSON_GetObjectItemCaseSensitive(root, "messages") : NULL;
    int cnt = cJSON_GetArraySize(msgs);
    if (i < 0) i += cnt;
    cJSON *msg = cJSON_GetArrayItem(msgs, i);
    cJSON *c = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    cJSON *r = msg ? cJSON_GetObjectItemCaseSensitive(msg, "role") : NULL;
    if (role && rl) snprintf(role, rl, "%s", cJSON_IsString(r) ? r->valuestring : "");
    char *out = cJSON_IsString(c) ? kf_strdup(c->valuestring) : NULL;
    cJSON_Delete(root);
    return out;
}

static inline int test_mock_n_messages(const test_mock *m, int n) {
    char *body = test_mock_request(m, n);
    if (!body) return -1;
    cJSON *root = cJSON_Parse(body);
    free(body);
    int cnt = cJSON_GetArraySize(root ? cJSON_GetObjectItemCaseSensitive(root, "messages") : NULL);
    cJSON_Delete(root);
    return cnt;
}

static inline double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
