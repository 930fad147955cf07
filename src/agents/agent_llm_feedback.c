/* agent_llm_feedback.c: the message that tells the model what happened to its last attempt,
 * rendered from prompts/feedback/<status>.md with the harness's result as variables:
 *   attempt, max_attempts, attempts_left, last_attempt (set when one turn is left), status,
 *   message (cut to max_chars), trial (1-based), output, output_name, index, coords, got,
 *   expected, signal, ms, min_ms, max_ms, eager_ms, compile_ms, speedup, speedup_compile,
 *   degenerate, profile_hint, parse_error.
 * Numbers are formatted here, once, so the text is the same wherever it is shown. */
#include "agents/kf_agent_llm.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"
#include "llm/kf_prompt.h"

static const char *llm_signal_text(int sig, char *buf, size_t n) {
    static const struct { int sig; const char *name; } names[] = {
        {SIGSEGV, "SIGSEGV (invalid memory access)"},
        {SIGBUS, "SIGBUS (misaligned or out-of-range memory access)"},
        {SIGFPE, "SIGFPE (arithmetic exception, e.g. integer division by zero)"},
        {SIGILL, "SIGILL (illegal instruction)"},
        {SIGABRT, "SIGABRT (abort)"},
        {SIGKILL, "SIGKILL (killed, e.g. over its memory or time limit)"},
        {SIGTRAP, "SIGTRAP"},
        {SIGSYS, "SIGSYS (forbidden system call)"},
        {SIGXCPU, "SIGXCPU (CPU time limit)"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) {
            snprintf(buf, n, "%s", names[i].name);
            return buf;
        }
    snprintf(buf, n, "signal %d", sig);
    return buf;
}

/* Coordinates of flat element `index` in output buffer `output` of p: "[1, 2, 3]". */
static int llm_coords(const kf_program *p, int output, long long index, char *buf, size_t n,
                      const char **name) {
    if (!p || index < 0) return 0;
    for (int i = 0; i < p->n_bufs; i++) {
        const kf_pbuf *b = &p->bufs[i];
        if (b->role != KF_BUF_OUTPUT || b->index != output) continue;
        *name = b->name;
        if (b->desc.ndim < 2) return 0;  /* the flat index says it all */
        long long rest = index;
        long long c[KF_MAX_DIMS];
        for (int d = b->desc.ndim - 1; d >= 0; d--) {
            long long ext = b->desc.shape[d] > 0 ? b->desc.shape[d] : 1;
            c[d] = rest % ext;
            rest /= ext;
        }
        if (rest) return 0;
        size_t off = 0;
        off += (size_t)snprintf(buf + off, n - off, "[");
        for (int d = 0; d < b->desc.ndim && off < n; d++)
            off += (size_t)snprintf(buf + off, n - off, "%s%lld", d ? ", " : "", c[d]);
        if (off < n) snprintf(buf + off, n - off, "]");
        return 1;
    }
    return 0;
}

static void llm_num(char *buf, size_t n, double v) {
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else snprintf(buf, n, "%.9g", v);
}

static void llm_ms(char *buf, size_t n, double ms) {
    if (ms >= 100) snprintf(buf, n, "%.1f ms", ms);
    else if (ms >= 1) snprintf(buf, n, "%.3f ms", ms);
    else snprintf(buf, n, "%.4f ms", ms);
}

/* The message cut to max_chars, keeping the start (first errors matter most). */
static char *llm_cut(const char *m, int max_chars) {
    if (!m) return NULL;
    size_t len = strlen(m);
    while (len && (m[len - 1] == '\n' || m[len - 1] == ' ')) len--;
    if (max_chars <= 0 || len <= (size_t)max_chars) return strndup(m, len);
    size_t keep = (size_t)max_chars;
    while (keep > 0 && m[keep] != '\n') keep--;  /* cut at a line end when one is near */
    if (keep < (size_t)max_chars / 2) keep = (size_t)max_chars;
    return kf_asprintf("%.*s\n[... %zu more characters cut]", (int)keep, m, len - keep);
}

int kf_llm_feedback(const char *prompts_dir, const kf_attempt *a, const char *parse_error,
                    int max_attempts, const char *profile_hint, int max_chars, char **out,
                    kf_err *err) {
    *out = NULL;
    const kf_result *r = &a->result;
    char attempt[16], maxa[16], left[16], trial[16], output[16], index[32], got[48], expected[48];
    char coords[256] = "", sigbuf[96] = "", ms[32] = "", min_ms[32] = "", max_ms[32] = "";
    char eager[32] = "", compile[32] = "", speedup[32] = "", speedup_c[32] = "";
    const char *output_name = NULL;
    snprintf(attempt, sizeof attempt, "%d", a->number);
    snprintf(maxa, sizeof maxa, "%d", max_attempts);
    int n_left = max_attempts - a->number;
    snprintf(left, sizeof left, "%d", n_left > 0 ? n_left : 0);
    snprintf(trial, sizeof trial, "%d", r->trial + 1);
    snprintf(output, sizeof output, "%d", r->output);
    snprintf(index, sizeof index, "%lld", r->index);
    llm_num(got, sizeof got, r->got);
    llm_num(expected, sizeof expected, r->expected);
    int have_mismatch = r->status == KF_ST_MISMATCH && r->index >= 0;
    if (have_mismatch)
        llm_coords(a->program, r->output, r->index, coords, sizeof coords, &output_name);
    if (r->signal) llm_signal_text(r->signal, sigbuf, sizeof sigbuf);
    if (r->ms > 0) {
        llm_ms(ms, sizeof ms, r->ms);
        if (r->min_ms > 0) llm_ms(min_ms, sizeof min_ms, r->min_ms);
        if (r->max_ms > 0) llm_ms(max_ms, sizeof max_ms, r->max_ms);
        if (r->eager_ms > 0) {
            llm_ms(eager, sizeof eager, r->eager_ms);
            snprintf(speedup, sizeof speedup, "%.2fx", r->eager_ms / r->ms);
        }
        if (r->compile_ms > 0) {
            llm_ms(compile, sizeof compile, r->compile_ms);
            snprintf(speedup_c, sizeof speedup_c, "%.2fx", r->compile_ms / r->ms);
        }
    }
    char *message = llm_cut(r->message, max_chars);
    char *perr = llm_cut(parse_error, max_chars);
    kf_prompt_var vars[] = {
        {"attempt", attempt},
        {"max_attempts", maxa},
        {"attempts_left", n_left > 0 ? left : NULL},
        {"last_attempt", n_left == 1 ? "1" : NULL},
        {"status", kf_status_name(r->status)},
        {"message", message},
        {"trial", have_mismatch || r->trial >= 0 ? trial : NULL},
        {"output", have_mismatch ? output : NULL},
        {"output_name", output_name},
        {"index", have_mismatch ? index : NULL},
        {"coords", coords[0] ? coords : NULL},
        {"got", have_mismatch ? got : NULL},
        {"expected", have_mismatch ? expected : NULL},
        {"signal", sigbuf[0] ? sigbuf : NULL},
        {"ms", ms[0] ? ms : NULL},
        {"min_ms", min_ms[0] ? min_ms : NULL},
        {"max_ms", max_ms[0] ? max_ms : NULL},
        {"eager_ms", eager[0] ? eager : NULL},
        {"compile_ms", compile[0] ? compile : NULL},
        {"speedup", speedup[0] ? speedup : NULL},
        {"speedup_compile", speedup_c[0] ? speedup_c : NULL},
        {"degenerate", r->degenerate ? "1" : NULL},
        {"profile_hint", profile_hint && *profile_hint ? profile_hint : NULL},
        {"parse_error", perr},
    };
    char name[64];
    if (parse_error) snprintf(name, sizeof name, "feedback/malformed.md");
    else snprintf(name, sizeof name, "feedback/%s.md", kf_status_name(r->status));
    int rc = kf_prompt_render(prompts_dir, name, vars, (int)(sizeof vars / sizeof vars[0]), out,
                              err);
    free(message);
    free(perr);
    return rc;
}

char *kf_llm_profile_hint(double gbps, double gflops, double peak_gbps, double peak_gflops) {
    kf_str s;
    kf_str_init(&s);
    kf_str_appendf(&s, "Your last kernel program moved %.3g GB/s", gbps);
    if (peak_gbps > 0)
        kf_str_appendf(&s, " (%.0f%% of the %.3g GB/s this device measured)",
                       100.0 * gbps / peak_gbps, peak_gbps);
    if (gflops > 0) kf_str_appendf(&s, " and computed %.3g GFLOP/s", gflops);
    if (gflops > 0 && peak_gflops > 0)
        kf_str_appendf(&s, " (%.0f%% of the %.3g GFLOP/s measured)", 100.0 * gflops / peak_gflops,
                       peak_gflops);
    kf_str_append(&s, ".");
    if (peak_gbps > 0 && peak_gflops > 0) {
        double fb = gbps / peak_gbps, ff = gflops / peak_gflops;
        if (fb >= 0.6 && fb >= ff)
            kf_str_append(&s, " It is close to the memory bandwidth limit: only moving fewer bytes "
                              "(fusing steps, avoiding scratch round trips) will make it much "
                              "faster.");
        else if (ff >= 0.6)
            kf_str_append(&s, " It is close to the arithmetic limit: only doing less work or "
                              "using wider vectors will make it much faster.");
        else
            kf_str_append(&s, " It is far from both limits: look for poor parallelism, "
                              "non-contiguous access, missed vectorisation or too little work "
                              "per thread.");
    }
    return kf_str_take(&s);
}
