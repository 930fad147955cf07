/* tool_mock_llm.c: a local stand-in for LLM providers, used by the tests. A single-threaded
 * HTTP/1.1 server on 127.0.0.1 (port 0: the kernel picks; the port is the first line on
 * stdout) that speaks OpenAI chat completions (POST .../chat/completions) and Anthropic
 * messages (POST .../v1/messages), checks the auth header, writes every request body it gets
 * to the log folder (req-001.json, req-002.json, ... plus req-NNN.txt with the path and the
 * outcome), and answers from a scripted fixture, one entry per request, in order.
 *
 * usage: tool_mock_llm --fixture FILE --log DIR [--key KEY] [--lifetime SECONDS]
 *
 * Fixture: {"responses":[ENTRY, ...]} where ENTRY has any of
 *   "text": "..." or "text_file": "name" (relative to the fixture's folder): a 200 answer
 *   "prompt_tokens": N, "completion_tokens": N (usage in the answer; default 10 and 20)
 *   "status": 429 / 500 / ... with "error": "message" and "retry_after": "1" (a header)
 *   "raw": "..." the body sent as is (with "status", default 200)
 *   "delay_s": S  wait first; if the client hangs up meanwhile, nothing is sent
 * A request with a missing (or, with --key, wrong) key gets 401 and does not use an entry;
 * the 401 message echoes the presented key, as some providers do, so tests can check that
 * clients scrub it. When the script is used up the answer is 400 "script exhausted". */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/kf_str.h"

typedef struct mock_req {
    char method[16];
    char path[512];
    char *auth;        /* Authorization value, malloc'd or NULL */
    char *api_key;     /* x-api-key value */
    int has_version;   /* anthropic-version present */
    int expect_continue;
    char *body;
    size_t body_len;
} mock_req;

typedef struct mock_server {
    cJSON *fixture;
    const char *fixture_dir;
    const char *log_dir;
    const char *key;
    int next;          /* next fixture entry */
    int served;        /* request counter for the log */
} mock_server;

static void mock_req_free(mock_req *r) {
    free(r->auth);
    free(r->api_key);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int mock_write_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *mock_header_value(const char *line) {
    const char *v = strchr(line, ':');
    if (!v) return NULL;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    return strdup(v);
}

/* Reads one request: headers up to a blank line, then Content-Length bytes of body. */
static int mock_read_request(int fd, mock_req *r) {
    kf_str buf;
    kf_str_init(&buf);
    char tmp[65536];
    size_t header_end = 0;
    while (!header_end) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            kf_str_free(&buf);
            return -1;
        }
        kf_str_appendn(&buf, tmp, (size_t)n);
        char *e = strstr(buf.data, "\r\n\r\n");
        if (e) header_end = (size_t)(e - buf.data) + 4;
        else if (buf.len > (1u << 20)) {
            kf_str_free(&buf);
            return -1;
        }
    }
    size_t content_length = 0;
    char *save = NULL;
    char *head = strndup(buf.data, header_end);
    int first = 1;
    for (char *line = strtok_r(head, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (first) {
            sscanf(line, "%15s %511s", r->method, r->path);
            first = 0;
        } else if (!strncasecmp(line, "content-length:", 15)) {
            content_length = (size_t)strtoull(line + 15, NULL, 10);
        } else if (!strncasecmp(line, "authorization:", 14)) {
            r->auth = mock_header_value(line);
        } else if (!strncasecmp(line, "x-api-key:", 10)) {
            r->api_key = mock_header_value(line);
        } else if (!strncasecmp(line, "anthropic-version:", 18)) {
            r->has_version = 1;
        } else if (!strncasecmp(line, "expect:", 7) && strcasestr(line, "100-continue")) {
            r->expect_continue = 1;
        }
    }
    free(head);
    if (r->expect_continue) {
        const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
        mock_write_all(fd, cont, strlen(cont));
    }
    while (buf.len - header_end < content_length) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            kf_str_free(&buf);
            return -1;
        }
        kf_str_appendn(&buf, tmp, (size_t)n);
    }
    r->body = malloc(content_length + 1);
    memcpy(r->body, buf.data + header_end, content_length);
    r->body[content_length] = 0;
    r->body_len = content_length;
    kf_str_free(&buf);
    return 0;
}

static void mock_send(int fd, int status, const char *extra_headers, const char *body) {
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 429 ? "Too Many Requests"
                         : status >= 500 ? "Server Error"
                                         : "Status";
    kf_str s;
    kf_str_init(&s);
    kf_str_appendf(&s,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s\r\n",
                   status, reason, strlen(body), extra_headers ? extra_headers : "");
    kf_str_append(&s, body);
    mock_write_all(fd, s.data, s.len);
    kf_str_free(&s);
}

static char *mock_error_body(int anthropic, const char *msg) {
    cJSON *root = cJSON_CreateObject();
    if (anthropic) cJSON_AddStringToObject(root, "type", "error");
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "type", anthropic ? "api_error" : "server_error");
    cJSON_AddStringToObject(e, "message", msg);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static char *mock_answer_body(int anthropic, const char *model, const char *text, long long pt,
                              long long ct, int n) {
    cJSON *root = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "mock-%d", n);
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "model", model);
    if (anthropic) {
        cJSON_AddStringToObject(root, "type", "message");
        cJSON_AddStringToObject(root, "role", "assistant");
        cJSON *content = cJSON_AddArrayToObject(root, "content");
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", text);
        cJSON_AddItemToArray(content, b);
        cJSON_AddStringToObject(root, "stop_reason", "end_turn");
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", (double)pt);
        cJSON_AddNumberToObject(u, "output_tokens", (double)ct);
    } else {
        cJSON_AddStringToObject(root, "object", "chat.completion");
        cJSON *choices = cJSON_AddArrayToObject(root, "choices");
        cJSON *c0 = cJSON_CreateObject();
        cJSON_AddNumberToObject(c0, "index", 0);
        cJSON *m = cJSON_AddObjectToObject(c0, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddStringToObject(c0, "finish_reason", "stop");
        cJSON_AddItemToArray(choices, c0);
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", (double)pt);
        cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(pt + ct));
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* The body is written as soon as it arrives; req-NNN.txt (the outcome) before the answer is
 * sent, so a client that got its answer always finds both. */
static void mock_log_body(const mock_server *m, int n, const mock_req *r) {
    char path[4096];
    snprintf(path, sizeof path, "%s/req-%03d.json", m->log_dir, n);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(r->body, 1, r->body_len, f);
        fclose(f);
    }
}

static void mock_log(const mock_server *m, int n, const mock_req *r, const char *outcome) {
    char path[4096];
    snprintf(path, sizeof path, "%s/req-%03d.txt", m->log_dir, n);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s %s\n%s\n", r->method, r->path, outcome);
        fclose(f);
    }
}

/* Waits s seconds; returns 1 if the client hung up meanwhile. */
static int mock_delay(int fd, double s) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double left = s - ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9);
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(left * 1000) + 1);
        if (pr > 0) {
            char c;
            ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n <= 0) return 1;
        }
    }
}

static char *mock_read_text_file(const mock_server *m, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", m->fixture_dir, name);
    char *data = NULL;
    size_t len = 0;
    if (kf_read_file(path, &data, &len)) return NULL;
    return data;
}

/* Logs the outcome, then sends the answer. */
static void mock_reply(const mock_server *m, int fd, int n, const mock_req *r, const char *outcome,
                       int status, const char *hdr, const char *body) {
    mock_log(m, n, r, outcome);
    mock_send(fd, status, hdr, body);
}

static void mock_handle(mock_server *m, int fd) {
    mock_req r;
    memset(&r, 0, sizeof r);
    if (mock_read_request(fd, &r)) return;
    int n = ++m->served;
    mock_log_body(m, n, &r);
    size_t pl = strlen(r.path);
    int openai = pl >= 17 && !strcmp(r.path + pl - 17, "/chat/completions");
    int anthropic = pl >= 9 && !strcmp(r.path + pl - 9, "/messages");
    char *b = NULL;
    if (strcmp(r.method, "POST") || (!openai && !anthropic)) {
        b = mock_error_body(0, "mock: unknown endpoint");
        mock_reply(m, fd, n, &r, "404 unknown endpoint", 404, NULL, b);
        goto done;
    }
    const char *presented = NULL;
    if (openai && r.auth && !strncmp(r.auth, "Bearer ", 7)) presented = r.auth + 7;
    if (anthropic && r.api_key) presented = r.api_key;
    if (!presented || !*presented || (anthropic && !r.has_version) ||
        (m->key && strcmp(presented, m->key))) {
        kf_str msg;
        kf_str_init(&msg);
        if (!presented || !*presented) kf_str_append(&msg, "mock: no API key presented");
        else if (anthropic && !r.has_version) kf_str_append(&msg, "mock: anthropic-version missing");
        else kf_str_appendf(&msg, "Incorrect API key provided: %s", presented);
        b = mock_error_body(anthropic, msg.data);
        kf_str_free(&msg);
        mock_reply(m, fd, n, &r, "401 auth", 401, NULL, b);
        goto done;
    }
    char model[256] = "mock";
    cJSON *req = cJSON_Parse(r.body);
    cJSON *jm = req ? cJSON_GetObjectItemCaseSensitive(req, "model") : NULL;
    if (cJSON_IsString(jm)) snprintf(model, sizeof model, "%s", jm->valuestring);
    cJSON_Delete(req);

    cJSON *list = cJSON_GetObjectItemCaseSensitive(m->fixture, "responses");
    cJSON *e = cJSON_GetArrayItem(list, m->next);
    if (!e) {
        b = mock_error_body(anthropic, "mock: script exhausted");
        mock_reply(m, fd, n, &r, "400 script exhausted", 400, NULL, b);
        goto done;
    }
    m->next++;
    cJSON *delay = cJSON_GetObjectItemCaseSensitive(e, "delay_s");
    if (cJSON_IsNumber(delay) && mock_delay(fd, delay->valuedouble)) {
        mock_log(m, n, &r, "client hung up during the delay");
        goto done;
    }
    cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
    int status = cJSON_IsNumber(st) ? st->valueint : 200;
    cJSON *raw = cJSON_GetObjectItemCaseSensitive(e, "raw");
    char outcome[64];
    snprintf(outcome, sizeof outcome, "%d entry %d", status, m->next);
    if (cJSON_IsString(raw)) {
        mock_reply(m, fd, n, &r, outcome, status, NULL, raw->valuestring);
    } else if (status != 200) {
        cJSON *ra = cJSON_GetObjectItemCaseSensitive(e, "retry_after");
        char hdr[128] = "";
        if (cJSON_IsString(ra)) snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", ra->valuestring);
        else if (cJSON_IsNumber(ra)) snprintf(hdr, sizeof hdr, "Retry-After: %g\r\n", ra->valuedouble);
        cJSON *em = cJSON_GetObjectItemCaseSensitive(e, "error");
        b = mock_error_body(anthropic, cJSON_IsString(em) ? em->valuestring : "mock error");
        mock_reply(m, fd, n, &r, outcome, status, hdr, b);
    } else {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "text");
        cJSON *tf = cJSON_GetObjectItemCaseSensitive(e, "text_file");
        char *text = cJSON_IsString(t) ? strdup(t->valuestring)
                     : cJSON_IsString(tf) ? mock_read_text_file(m, tf->valuestring)
                                          : strdup("");
        if (!text) {
            b = mock_error_body(anthropic, "mock: text_file unreadable");
            mock_reply(m, fd, n, &r, "500 text_file unreadable", 500, NULL, b);
        } else {
            cJSON *pt = cJSON_GetObjectItemCaseSensitive(e, "prompt_tokens");
            cJSON *ct = cJSON_GetObjectItemCaseSensitive(e, "completion_tokens");
            b = mock_answer_body(anthropic, model, text,
                                 cJSON_IsNumber(pt) ? (long long)pt->valuedouble : 10,
                                 cJSON_IsNumber(ct) ? (long long)ct->valuedouble : 20, n);
            mock_reply(m, fd, n, &r, outcome, 200, NULL, b);
            free(text);
        }
    }
done:
    free(b);
    mock_req_free(&r);
}

int main(int argc, char **argv) {
    const char *fixture_path = NULL, *log_dir = NULL, *key = NULL;
    int lifetime = 300;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fixture") && i + 1 < argc) fixture_path = argv[++i];
        else if (!strcmp(argv[i], "--log") && i + 1 < argc) log_dir = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc) key = argv[++i];
        else if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) lifetime = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s --fixture FILE --log DIR [--key KEY] [--lifetime S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!fixture_path || !log_dir) {
        fprintf(stderr, "tool_mock_llm: --fixture and --log are required\n");
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    if (kf_read_file(fixture_path, &text, &len)) {
        fprintf(stderr, "tool_mock_llm: cannot read %s\n", fixture_path);
        return 1;
    }
    mock_server m;
    memset(&m, 0, sizeof m);
    m.fixture = cJSON_Parse(text);
    free(text);
    if (!m.fixture || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(m.fixture, "responses"))) {
        fprintf(stderr, "tool_mock_llm: %s is not {\"responses\":[...]}\n", fixture_path);
        return 1;
    }
    char *dir = strdup(fixture_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    m.fixture_dir = dir;
    m.log_dir = log_dir;
    m.key = key;
    if (kf_mkdirs(log_dir)) {
        fprintf(stderr, "tool_mock_llm: cannot create %s\n", log_dir);
        return 1;
    }

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) {
        perror("tool_mock_llm: bind");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    if (lifetime > 0) alarm((unsigned)lifetime);  /* never outlive a test that died */
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            perror("tool_mock_llm: accept");
            return 1;
        }
        struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        mock_handle(&m, c);
        close(c);
    }
}
