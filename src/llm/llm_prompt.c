/* llm_prompt.c: finding the prompts folder and rendering prompt templates (variables,
 * includes, conditional blocks); see kf_prompt.h for the language. */
#include "llm/kf_prompt.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kf_str.h"

#define PROMPT_MAX_DEPTH 8

static int prompt_is_dir(const char *p) {
    struct stat st;
    return p && !stat(p, &st) && S_ISDIR(st.st_mode);
}

int kf_prompts_dir(char **out, kf_err *err) {
    *out = NULL;
    const char *env = getenv("KFORGE_PROMPTS");
    if (env && *env) {
        if (!prompt_is_dir(env))
            return kf_fail(err, KF_E_IO, "KFORGE_PROMPTS=%s is not a folder", env);
        *out = kf_strdup(env);
        return *out ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return kf_fail(err, KF_E_IO, "cannot find the prompts: set KFORGE_PROMPTS");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *tails[] = {"/../prompts", "/../share/kforge/prompts", "/../../prompts"};
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        char *cand = kf_asprintf("%s%s", exe, tails[i]);
        if (prompt_is_dir(cand)) {
            char *real = realpath(cand, NULL);
            free(cand);
            *out = real;
            return real ? 0 : kf_fail(err, KF_E_NOMEM, "out of memory");
        }
        free(cand);
    }
    return kf_fail(err, KF_E_IO,
                   "no prompts folder at %s/../prompts, %s/../share/kforge/prompts or "
                   "%s/../../prompts: set KFORGE_PROMPTS", exe, exe, exe);
}

static const kf_prompt_var *prompt_find(const kf_prompt_var *vars, int n, const char *name,
                                        size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(vars[i].name) == len && !strncmp(vars[i].name, name, len)) return &vars[i];
    return NULL;
}

static int prompt_is_name(const char *s, size_t len) {
    if (!len) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || c == '_' || (i && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

typedef struct prompt_ctx {
    const kf_prompt_var *vars;
    int n;
    kf_err *err;
} prompt_ctx;

static int prompt_render(prompt_ctx *c, const char *text, size_t len, const char *base_dir,
                         const char *where, int depth, kf_str *out);

static int prompt_render_file(prompt_ctx *c, const char *path, const char *where, int depth,
                              kf_str *out) {
    if (depth > PROMPT_MAX_DEPTH)
        return kf_fail(c->err, KF_E_FORMAT, "%s: includes nest deeper than %d", where,
                       PROMPT_MAX_DEPTH);
    char *data = NULL;
    size_t len = 0;
    if (kf_read_file(path, &data, &len))
        return kf_fail(c->err, KF_E_IO, "%s: cannot read prompt file %s", where, path);
    char *dir = kf_strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = 0;
    int rc = prompt_render(c, data, len, slash ? dir : ".", path, depth, out);
    free(dir);
    free(data);
    return rc;
}

/* Whether the tag starting at text[start] opens its line. */
static int prompt_line_start(const char *text, size_t start) {
    size_t i = start;
    while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) i--;
    return i == 0 || text[i - 1] == '\n';
}

/* End of a tag at [start, close+2), extended over the line break when the tag is alone. */
static size_t prompt_after_tag(const char *text, size_t len, size_t start, size_t end) {
    if (!prompt_line_start(text, start)) return end;
    size_t j = end;
    while (j < len && (text[j] == ' ' || text[j] == '\t')) j++;
    if (j < len && text[j] == '\n') return j + 1;
    if (j == len) return j;
    return end;
}

/* Finds the {{/if}} matching an {{#if}} whose body starts at pos; returns the position of the
 * closing tag's "{{" or (size_t)-1. */
static size_t prompt_find_endif(const char *text, size_t len, size_t pos) {
    int level = 1;
    size_t i = pos;
    while (i + 1 < len) {
        const char *o = memmem(text + i, len - i, "{{", 2);
        if (!o) return (size_t)-1;
        size_t at = (size_t)(o - text);
        const char *cl = memmem(text + at, len - at, "}}", 2);
        if (!cl) return (size_t)-1;
        const char *in = text + at + 2;
        size_t il = (size_t)(cl - in);
        while (il && *in == ' ') in++, il--;
        while (il && in[il - 1] == ' ') il--;
        if (il >= 4 && !strncmp(in, "#if ", 4)) level++;
        else if (il == 3 && !strncmp(in, "/if", 3)) {
            if (--level == 0) return at;
        }
        i = at + 2;
    }
    return (size_t)-1;
}

static int prompt_render(prompt_ctx *c, const char *text, size_t len, const char *base_dir,
                         const char *where, int depth, kf_str *out) {
    size_t i = 0;
    while (i < len) {
        const char *o = memmem(text + i, len - i, "{{", 2);
        if (!o) {
            kf_str_appendn(out, text + i, len - i);
            break;
        }
        size_t at = (size_t)(o - text);
        const char *cl = memmem(text + at + 2, len - at - 2, "}}", 2);
        if (!cl) {
            kf_str_appendn(out, text + i, len - i);
            break;
        }
        size_t tag_end = (size_t)(cl - text) + 2;
        const char *in = text + at + 2;
        size_t il = (size_t)(cl - in);
        while (il && *in == ' ') in++, il--;
        while (il && in[il - 1] == ' ') il--;

        if (il > 8 && !strncmp(in, "include ", 8)) {
            kf_str_appendn(out, text + i, at - i);
            const char *pth = in + 8;
            size_t pl = il - 8;
            while (pl && *pth == ' ') pth++, pl--;
            char *rel = strndup(pth, pl);
            char *full = rel && rel[0] == '/' ? kf_strdup(rel) : kf_asprintf("%s/%s", base_dir, rel);
            int rc = prompt_render_file(c, full, where, depth + 1, out);
            free(rel);
            free(full);
            if (rc) return rc;
            i = prompt_after_tag(text, len, at, tag_end);
        } else if (il > 4 && !strncmp(in, "#if ", 4)) {
            kf_str_appendn(out, text + i, at - i);
            const char *nm = in + 4;
            size_t nl = il - 4;
            while (nl && *nm == ' ') nm++, nl--;
            int negate = nl && *nm == '!';
            if (negate) nm++, nl--;
            if (!prompt_is_name(nm, nl))
                return kf_fail(c->err, KF_E_FORMAT, "%s: bad condition '%.*s'", where, (int)il, in);
            const kf_prompt_var *v = prompt_find(c->vars, c->n, nm, nl);
            int set = v && v->value && v->value[0];
            size_t body = prompt_after_tag(text, len, at, tag_end);
            size_t endif = prompt_find_endif(text, len, body);
            if (endif == (size_t)-1)
                return kf_fail(c->err, KF_E_FORMAT, "%s: {{#if %.*s}} without {{/if}}", where,
                               (int)nl, nm);
            if (set != negate) {
                int rc = prompt_render(c, text + body, endif - body, base_dir, where, depth, out);
                if (rc) return rc;
            }
            const char *ecl = memmem(text + endif, len - endif, "}}", 2);
            i = prompt_after_tag(text, len, endif, (size_t)(ecl - text) + 2);
        } else if (in == text + at + 2 && in + il == cl && prompt_is_name(in, il)) {
            kf_str_appendn(out, text + i, at - i);
            const kf_prompt_var *v = prompt_find(c->vars, c->n, in, il);
            if (!v)
                return kf_fail(c->err, KF_E_FORMAT, "%s: unknown placeholder {{%.*s}}", where,
                               (int)il, in);
            kf_str_append(out, v->value ? v->value : "");
            i = tag_end;
        } else if (il == 3 && !strncmp(in, "/if", 3)) {
            return kf_fail(c->err, KF_E_FORMAT, "%s: {{/if}} without {{#if}}", where);
        } else {
            kf_str_appendn(out, text + i, at + 2 - i);
            i = at + 2;
        }
    }
    return 0;
}

int kf_prompt_render_text(const char *text, const char *base_dir, const char *where,
                          const kf_prompt_var *vars, int n, char **out, kf_err *err) {
    *out = NULL;
    prompt_ctx c = {vars, n, err};
    kf_str s;
    kf_str_init(&s);
    kf_str_append(&s, "");
    int rc = prompt_render(&c, text, strlen(text), base_dir ? base_dir : ".",
                           where ? where : "prompt", 0, &s);
    if (rc) {
        kf_str_free(&s);
        return rc;
    }
    *out = kf_str_take(&s);
    return 0;
}

int kf_prompt_render(const char *dir, const char *name, const kf_prompt_var *vars, int n,
                     char **out, kf_err *err) {
    *out = NULL;
    prompt_ctx c = {vars, n, err};
    char *path = kf_asprintf("%s/%s", dir, name);
    kf_str s;
    kf_str_init(&s);
    kf_str_append(&s, "");
    int rc = prompt_render_file(&c, path, name, 0, &s);
    free(path);
    if (rc) {
        kf_str_free(&s);
        return rc;
    }
    *out = kf_str_take(&s);
    return 0;
}
