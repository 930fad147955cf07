/* agent_llm_parse.c: reading a model's answer into a kernel program. The answer holds a
 * ```json block with plan.json and one fenced block per source file, headed by its file name
 * (on the line before the block, or in the fence's info string). Lenient where a model's
 * habits are harmless (headings like "### kernels.c", "`kernels.c`:", "```c kernels.c"),
 * strict where guessing would be wrong; every failure is a message meant for the model. */
#include "agents/kf_agent_llm.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kf_str.h"

typedef struct llm_block {
    char *info;      /* fence info string ("c", "json", "c kernels.c"), trimmed */
    char *heading;   /* last non-empty line before the fence (within 3 lines), or NULL */
    char *body;
    int used;
} llm_block;

static void llm_blocks_free(llm_block *b, int n) {
    for (int i = 0; i < n; i++) {
        free(b[i].info);
        free(b[i].heading);
        free(b[i].body);
    }
    free(b);
}

static char *llm_trim_dup(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return strndup(s, n);
}

/* Length of a fence ("```" or longer) at the start of the line, after up to 3 spaces. */
static size_t llm_fence_len(const char *line, const char **after) {
    int sp = 0;
    while (*line == ' ' && sp < 3) line++, sp++;
    size_t k = 0;
    while (line[k] == '`') k++;
    if (k < 3) return 0;
    *after = line + k;
    return k;
}

/* Splits the answer into fenced blocks. */
static int llm_split_blocks(const char *text, llm_block **out, int *n_out) {
    llm_block *b = NULL;
    int n = 0, cap = 0;
    const char *lines[3] = {NULL, NULL, NULL};  /* starts of the last 3 lines before a fence */
    size_t lens[3] = {0, 0, 0};
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *after = NULL;
        size_t fl = llm_fence_len(p, &after);
        if (fl) {
            const char *info_end = p + len;
            char *info = llm_trim_dup(after, (size_t)(info_end - after));
            /* Body: up to a line that is a fence at least as long, with nothing after it. */
            const char *q = eol ? eol + 1 : p + len;
            const char *body_start = q, *body_end = NULL, *next = NULL;
            while (*q) {
                const char *qe = strchr(q, '\n');
                size_t ql = qe ? (size_t)(qe - q) : strlen(q);
                const char *qa = NULL;
                size_t qf = llm_fence_len(q, &qa);
                if (qf >= fl) {
                    int only = 1;
                    for (const char *c = qa; c < q + ql; c++)
                        if (!isspace((unsigned char)*c)) only = 0;
                    if (only) {
                        body_end = q;
                        next = qe ? qe + 1 : q + ql;
                        break;
                    }
                }
                q = qe ? qe + 1 : q + ql;
            }
            if (!body_end) { /* unterminated: the block runs to the end (a cut answer) */
                body_end = q;
                next = q;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                llm_block *nb = realloc(b, (size_t)cap * sizeof *b);
                if (!nb) {
                    free(info);
                    llm_blocks_free(b, n);
                    return KF_E_NOMEM;
                }
                b = nb;
            }
            memset(&b[n], 0, sizeof b[n]);
            b[n].info = info;
            for (int k = 2; k >= 0; k--)
                if (lines[k]) {
                    char *h = llm_trim_dup(lines[k], lens[k]);
                    if (h && *h) {
                        b[n].heading = h;
                        break;
                    }
                    free(h);
                }
            b[n].body = strndup(body_start, (size_t)(body_end - body_start));
            n++;
            lines[0] = lines[1] = lines[2] = NULL;
            p = next;
            continue;
        }
        lines[0] = lines[1];
        lens[0] = lens[1];
        lines[1] = lines[2];
        lens[1] = lens[2];
        lines[2] = p;
        lens[2] = len;
        p = eol ? eol + 1 : p + len;
    }
    *out = b;
    *n_out = n;
    return 0;
}

static int llm_name_char(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '/';
}

/* Whether name occurs in s as a whole file name (not inside a longer one). */
static int llm_mentions(const char *s, const char *name) {
    if (!s || !name || !*name) return 0;
    size_t nl = strlen(name);
    for (const char *hit = strstr(s, name); hit; hit = strstr(hit + 1, name)) {
        int before_ok = hit == s || !llm_name_char(hit[-1]);
        char after = hit[nl];
        /* A trailing '.' ends a sentence ("Here is kernels.c."). */
        int after_ok = !after || !llm_name_char(after) ||
                       (after == '.' && !llm_name_char(hit[nl + 1]));
        if (before_ok && after_ok) return 1;
    }
    return 0;
}

static int llm_is_json_block(const llm_block *b) {
    if (!b->info) return 0;
    char first[32];
    size_t k = 0;
    while (b->info[k] && !isspace((unsigned char)b->info[k]) && k + 1 < sizeof first) {
        first[k] = (char)tolower((unsigned char)b->info[k]);
        k++;
    }
    first[k] = 0;
    return !strcmp(first, "json") || !strcmp(first, "jsonc") || !strcmp(first, "plan.json") ||
           llm_mentions(b->info, "plan.json");
}

/* A file name this block declares, from its info string (a token with a '.' after the
 * language) or its heading ("### kernels.c", "**kernels.c**", "File: kernels.c:"). */
static char *llm_block_name(const llm_block *b) {
    if (b->info) {
        const char *s = b->info;
        while (*s) {
            while (*s && (isspace((unsigned char)*s) || *s == ':' || *s == '=' || *s == '"'))
                s++;
            const char *t = s;
            while (*s && !isspace((unsigned char)*s) && *s != ':' && *s != '"' && *s != '=') s++;
            size_t tl = (size_t)(s - t);
            if (tl && memchr(t, '.', tl) && !(tl == 9 && !strncmp(t, "plan.json", 9)))
                return strndup(t, tl);
        }
    }
    if (b->heading) {
        const char *s = b->heading;
        while (*s && (*s == '#' || *s == '*' || *s == '`' || *s == '-' || *s == '>' ||
                      isspace((unsigned char)*s)))
            s++;
        if (!strncasecmp(s, "file:", 5)) s += 5;
        else if (!strncasecmp(s, "filename:", 9)) s += 9;
        while (*s && (isspace((unsigned char)*s) || *s == '`' || *s == '*')) s++;
        const char *t = s;
        while (*s && llm_name_char(*s)) s++;
        const char *e = s;
        while (*s && (*s == '`' || *s == '*' || *s == ':' || isspace((unsigned char)*s))) s++;
        while (e > t && e[-1] == '.') e--;
        if (!*s && e > t && memchr(t, '.', (size_t)(e - t))) return strndup(t, (size_t)(e - t));
    }
    return NULL;
}

/* The block for source file `file`: named exactly, else a heading that mentions it. */
static llm_block *llm_find_source(llm_block *b, int n, const char *file) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = n - 1; i >= 0; i--) {
            if (b[i].used || llm_is_json_block(&b[i])) continue;
            char *nm = llm_block_name(&b[i]);
            int hit = nm && !strcmp(nm, file);
            free(nm);
            if (!hit && pass == 1) hit = llm_mentions(b[i].heading, file) || llm_mentions(b[i].info, file);
            if (hit) return &b[i];
        }
    return NULL;
}

int kf_llm_answer_to_program(const char *answer, const char *target, const char *agent,
                             kf_program *p, kf_err *err) {
    memset(p, 0, sizeof *p);
    if (!answer || !*answer) return kf_fail(err, KF_E_FORMAT, "the answer was empty");
    llm_block *b = NULL;
    int n = 0;
    if (llm_split_blocks(answer, &b, &n)) return kf_fail(err, KF_E_NOMEM, "out of memory");
    int rc = 0;
    cJSON *root = NULL;
    char *json = NULL;
    /* The plan: the last ```json block (a model may show a draft first), else the last block
     * of any kind whose text is a JSON object with "steps". */
    llm_block *plan = NULL;
    for (int i = n - 1; i >= 0 && !plan; i--)
        if (llm_is_json_block(&b[i])) plan = &b[i];
    for (int i = n - 1; i >= 0 && !plan; i--) {
        cJSON *t = cJSON_Parse(b[i].body);
        if (cJSON_IsObject(t) && cJSON_GetObjectItemCaseSensitive(t, "steps")) plan = &b[i];
        cJSON_Delete(t);
    }
    if (!plan) {
        if (n)
            rc = kf_fail(err, KF_E_FORMAT, "no ```json block with plan.json was found among the "
                         "%d fenced blocks of the answer", n);
        else
            rc = kf_fail(err, KF_E_FORMAT, "the answer has no fenced code blocks: expected a "
                         "```json block with plan.json and one block per source file");
        goto out;
    }
    plan->used = 1;
    const char *end = NULL;
    root = cJSON_ParseWithOpts(plan->body, &end, 0);
    if (!root) {
        int line = 1;
        const char *near = end && end >= plan->body ? end : plan->body;
        for (const char *c = plan->body; c < near && *c; c++) line += *c == '\n';
        char snippet[48];
        snprintf(snippet, sizeof snippet, "%s", near);
        for (char *c = snippet; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        rc = kf_fail(err, KF_E_FORMAT, "the ```json block is not valid JSON (line %d of the block, "
                     "near \"%s\")", line, snippet);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = kf_fail(err, KF_E_FORMAT, "the ```json block is not a JSON object");
        goto out;
    }
    /* target and agent are kforge's to say. */
    cJSON_DeleteItemFromObjectCaseSensitive(root, "target");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "agent");
    cJSON_AddStringToObject(root, "target", target ? target : "cpu");
    if (agent) cJSON_AddStringToObject(root, "agent", agent);
    cJSON *sources = cJSON_GetObjectItemCaseSensitive(root, "sources");
    if (!sources) {
        /* No list: every named non-plan block is a source. */
        sources = cJSON_AddArrayToObject(root, "sources");
        for (int i = 0; i < n; i++) {
            if (b[i].used || llm_is_json_block(&b[i])) continue;
            char *nm = llm_block_name(&b[i]);
            if (nm) cJSON_AddItemToArray(sources, cJSON_CreateString(nm));
            free(nm);
        }
    }
    if (!cJSON_IsArray(sources)) {
        rc = kf_fail(err, KF_E_FORMAT, "plan.json: 'sources' is not an array of file names");
        goto out;
    }
    int n_src = cJSON_GetArraySize(sources);
    if (n_src == 0) {
        rc = kf_fail(err, KF_E_FORMAT, "plan.json lists no sources and no fenced block is headed "
                     "by a file name");
        goto out;
    }
    /* Unnamed code blocks, for the one-source, one-block case. */
    int unnamed = 0;
    llm_block *lone = NULL;
    for (int i = 0; i < n; i++) {
        if (b[i].used || llm_is_json_block(&b[i])) continue;
        char *nm = llm_block_name(&b[i]);
        if (!nm) {
            unnamed++;
            lone = &b[i];
        }
        free(nm);
    }
    for (int i = 0; i < n_src; i++) {
        cJSON *e = cJSON_GetArrayItem(sources, i);
        if (cJSON_IsObject(e)) continue;  /* {"file":..,"text":..} inline: kept as written */
        if (!cJSON_IsString(e)) {
            rc = kf_fail(err, KF_E_FORMAT, "plan.json: sources[%d] is not a file name", i);
            goto out;
        }
        const char *file = e->valuestring;
        llm_block *sb = llm_find_source(b, n, file);
        if (!sb && n_src == 1 && unnamed == 1 && !lone->used) sb = lone;
        if (!sb) {
            rc = kf_fail(err, KF_E_FORMAT, "source '%s' listed in plan.json has no fenced block; "
                         "write the file name on the line just before its block", file);
            goto out;
        }
        sb->used = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddStringToObject(o, "text", sb->body);
        cJSON_ReplaceItemInArray(sources, i, o);
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) {
        rc = kf_fail(err, KF_E_NOMEM, "out of memory");
        goto out;
    }
    rc = kf_program_from_json(json, NULL, p, err);
    if (rc && rc != KF_E_NOMEM) {
        /* The plan's own mistakes are the model's to fix: format errors, fed back. */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = kf_fail(err, KF_E_FORMAT, "plan.json could not be read: %s", msg);
    }
out:
    free(json);
    cJSON_Delete(root);
    llm_blocks_free(b, n);
    return rc;
}
