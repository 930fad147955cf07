/* kir_render_c.c: kernel IR -> one C11 translation unit (with OpenMP pragmas) per call.
 *
 * Each kernel becomes `void NAME(T0 *restrict b0, const T1 *restrict b1, ...)`: buffers it
 * writes are `T *restrict`, read-only ones `const T *restrict`; bool and u8 are uint8_t,
 * f16 and bf16 are uint16_t converted to and from float on load and store. Buffer and variable
 * names become C identifiers (other characters -> '_', clashes with C keywords, the math
 * functions and each other get a suffix). Locals are declared where their DECL stands.
 *
 * Loops render as `for (T v = lo; v < hi; v += step)`:
 * - PARALLEL, outside any parallel region: `#pragma omp parallel for collapse(n)
 *   schedule(static)` over the run of n perfectly nested PARALLEL loops (an inner loop joins
 *   the run when it is its parent's only statement and its bounds do not use the run's
 *   variables). PARALLEL loops inside a region or a simd loop are plain loops.
 * - VECTOR, outside any simd loop: `#pragma omp simd`.
 * - UNROLL: `#pragma GCC unroll N`; unroll 0 (full) uses the trip count when both bounds are
 *   constants (at most 65534) and 8 otherwise.
 * A parallel or simd loop that assigns a variable declared outside it is only kept parallel
 * when every such assignment is a sum (v = v + e, v read nowhere else in the loop): those
 * variables get reduction(+:v). Otherwise the loop renders as a plain serial loop with a
 * comment saying why, since sharing the variable between iterations would be a race.
 * Barriers are no-ops on a CPU (each loop finishes before the next statement) and render as
 * comments. */
#include "kir/kir.h"
#include "kir/kir_int.h"
#include "kir/kir_rc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kir_rc_fail(kir_rc *c, int code, const char *fmt, ...) {
    if (c->rc) return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->rc = kf_fail(c->err, code, "kir_render_c: kernel '%s': %s", c->k->name, msg);
}

static const char *const kir_reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "asm", "typeof", "bool", "true", "false",
    "main", "errno", "exp", "expf", "expm1", "expm1f", "log", "logf", "log1p", "log1pf", "sqrt",
    "sqrtf", "tanh", "tanhf", "erf", "erff", "sin", "sinf", "cos", "cosf", "floor", "floorf",
    "ceil", "ceilf", "nearbyint", "nearbyintf", "fabs", "fabsf", "pow", "powf", "fmod", "fmodf",
    "abs", "llabs", "isnan", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t",
    "uint32_t", "uint64_t",
    /* object-like macros of the included headers, and gnu11's predefined ones */
    "NAN", "INFINITY", "NULL", "EXIT_SUCCESS", "EXIT_FAILURE", "RAND_MAX", "MB_CUR_MAX",
    "math_errhandling", "linux", "unix", "i386", NULL,
};

/* Name prefixes of the helpers (kf_), OpenMP, and macro families of the included headers. */
static const char *const kir_reserved_prefix[] = {
    "kf_", "KF_", "omp_", "INT", "UINT", "FP_", "M_", "SIZE_", "PTRDIFF_", "WCHAR_", "WINT_",
    "SIG_ATOMIC_", "MATH_", "HUGE_VAL", NULL,
};

static int kir_is_reserved(const char *s) {
    for (int i = 0; kir_reserved_prefix[i]; i++)
        if (strncmp(s, kir_reserved_prefix[i], strlen(kir_reserved_prefix[i])) == 0) return 1;
    for (int i = 0; kir_reserved[i]; i++)
        if (strcmp(s, kir_reserved[i]) == 0) return 1;
    return 0;
}

static int kir_is_ident(const char *s) {
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
}

/* A C identifier for name, distinct from the n names already in taken. */
static char *kir_c_name(const char *name, char *const *taken, int n) {
    size_t len = strlen(name ? name : "");
    char *base = malloc(len + 3);
    if (!base) return NULL;
    size_t j = 0;
    if (!name || !(isalpha((unsigned char)name[0])) ) {
        base[j++] = 'v';
        base[j++] = '_';
    }
    for (size_t i = 0; i < len; i++) base[j++] = isalnum((unsigned char)name[i]) ? name[i] : '_';
    base[j] = '\0';
    if (kir_is_reserved(base)) { /* a suffix cannot help when a prefix is reserved: prefix it */
        char *pre = kf_asprintf("v_%s", base);
        free(base);
        if (!(base = pre)) return NULL;
    }
    char *out = kf_strdup(base);
    for (int suffix = 1; out; suffix++) {
        int clash = kir_is_reserved(out);
        for (int i = 0; i < n && !clash; i++) clash = strcmp(out, taken[i]) == 0;
        if (!clash) break;
        free(out);
        out = kf_asprintf("%s_%d", base, suffix);
    }
    free(base);
    return out;
}

static int kir_rc_names(kir_rc *c) {
    const kir_kernel *k = c->k;
    int n = k->n_bufs + k->n_vars;
    char **all = calloc(n ? (size_t)n : 1, sizeof *all);
    if (!all) return KF_E_NOMEM;
    c->bname = all;
    c->vname = all + k->n_bufs;
    for (int i = 0; i < n; i++) {
        const char *src = i < k->n_bufs ? k->bufs[i].name : k->vars[i - k->n_bufs].name;
        if (!(all[i] = kir_c_name(src, all, i))) return KF_E_NOMEM;
    }
    return 0;
}

static void kir_indent(int depth, kf_str *o) {
    for (int i = 0; i < depth; i++) kf_str_append(o, "    ");
}

static void kir_scope_end(kir_rc *c, int mark) {
    while (c->n_scope > mark) c->live[c->scope[--c->n_scope]] = 0;
}

static int kir_declare(kir_rc *c, int var) {
    if (!kir_rc_var_ok(c, var)) return 0;
    if (c->live[var]) {
        kir_rc_fail(c, KF_E_INVALID, "variable '%s' declared twice in one scope",
                    c->k->vars[var].name);
        return 0;
    }
    if (c->n_scope == c->cap_scope) {
        int cap = c->cap_scope ? c->cap_scope * 2 : 16;
        int *s = realloc(c->scope, (size_t)cap * sizeof *s);
        if (!s) {
            kir_rc_fail(c, KF_E_NOMEM, "out of memory");
            return 0;
        }
        c->scope = s;
        c->cap_scope = cap;
    }
    c->scope[c->n_scope++] = var;
    c->live[var] = 1;
    return 1;
}

static void kir_rc_stmt(kir_rc *c, const kir_stmt *s, int depth, kf_str *o);

static void kir_rc_list(kir_rc *c, kir_stmt *const *l, int n, int depth, kf_str *o) {
    int mark = c->n_scope;
    for (int i = 0; i < n && !c->rc; i++) kir_rc_stmt(c, l[i], depth, o);
    kir_scope_end(c, mark);
}

/* Validates a loop and writes its `for (...) {` line; declares its variable. */
static int kir_loop_head(kir_rc *c, const kir_stmt *s, int depth, kf_str *o) {
    if (!kir_rc_var_ok(c, s->var)) return 0;
    kir_type t = c->k->vars[s->var].type;
    if (t != KIR_T_I32 && t != KIR_T_I64) {
        kir_rc_fail(c, KF_E_INVALID, "loop variable '%s' is %s, not an integer",
                    c->k->vars[s->var].name, kir_type_name(t));
        return 0;
    }
    if (s->step <= 0) {
        kir_rc_fail(c, KF_E_INVALID, "loop over '%s' has step %lld (must be > 0)",
                    c->k->vars[s->var].name, (long long)s->step);
        return 0;
    }
    const char *v = c->vname[s->var];
    kir_indent(depth, o);
    kf_str_appendf(o, "for (%s %s = ", kir_rc_ctype(t), v);
    kir_rc_expr_as(c, s->lo, t, o);
    kf_str_appendf(o, "; %s < ", v);
    if (!kir_declare(c, s->var)) return 0;
    kir_rc_expr_as(c, s->hi, t, o);
    kf_str_appendf(o, "; %s += %lld) {\n", v, (long long)s->step);
    return !c->rc;
}

/* Number of perfectly nested PARALLEL loops starting at s that one collapse can cover. */
static int kir_collapse_depth(const kir_kernel *k, const kir_stmt *s) {
    int vars[64], n = 0;
    for (const kir_stmt *cur = s;; cur = cur->body[0]) {
        vars[n++] = cur->var;
        if (n == 64 || cur->n_body != 1) break;
        const kir_stmt *in = cur->body[0];
        if (!in || in->kind != KIR_S_FOR || in->loop != KIR_LOOP_PARALLEL || in->step <= 0 ||
            in->var < 0 || in->var >= k->n_vars)
            break;
        int dep = 0;
        for (int i = 0; i < n && !dep; i++)
            dep = kir_expr_uses(in->lo, vars[i]) || kir_expr_uses(in->hi, vars[i]);
        if (dep) break;
    }
    return n;
}

/* For a parallel or simd loop: 1 and the reduction clause (maybe empty) if it may run in
 * parallel; 0 and a comment explaining why it runs serially otherwise. */
static int kir_loop_clause(kir_rc *c, const kir_stmt *s, kf_str *clause, kf_str *why) {
    const kir_kernel *k = c->k;
    int *sum = calloc(k->n_vars ? (size_t)k->n_vars : 1, sizeof *sum);
    if (!sum) {
        kir_rc_fail(c, KF_E_NOMEM, "out of memory");
        return 0;
    }
    int n_sum = 0, bad = -1;
    int ok = kir_loop_outer_assigns(s, k->n_vars, c->live, sum, &n_sum, &bad);
    if (ok < 0) {
        kir_rc_fail(c, KF_E_NOMEM, "out of memory");
        ok = 0;
    } else if (ok == 0) {
        kf_str_appendf(why, "/* %s loop over %s runs serially: it updates '%s', declared outside"
                            " it, other than by a sum */\n",
                       kir_loop_name(s->loop), c->vname[s->var], c->vname[bad]);
    } else if (n_sum) {
        kf_str_append(clause, " reduction(+:");
        for (int i = 0; i < n_sum; i++) kf_str_appendf(clause, "%s%s", i ? ", " : "", c->vname[sum[i]]);
        kf_str_append(clause, ")");
    }
    free(sum);
    return ok;
}

static int64_t kir_unroll_count(const kir_stmt *s) {
    if (s->unroll > 0) return s->unroll > 65534 ? 65534 : s->unroll;
    if (s->lo && s->hi && s->lo->kind == KIR_E_CONST_I && s->hi->kind == KIR_E_CONST_I) {
        int64_t span = s->hi->ival - s->lo->ival;
        int64_t trip = span <= 0 ? 0 : (span + s->step - 1) / s->step;
        return trip < 2 ? 1 : trip > 65534 ? 65534 : trip;
    }
    return 8;
}

static void kir_rc_for(kir_rc *c, const kir_stmt *s, int depth, kf_str *o) {
    int mark = c->n_scope;
    int n = 1, par = 0, simd = 0;
    kf_str clause, why;
    kf_str_init(&clause);
    kf_str_init(&why);
    if (s->loop == KIR_LOOP_PARALLEL && !c->in_par && !c->in_simd) {
        par = kir_loop_clause(c, s, &clause, &why);
        if (par) n = kir_collapse_depth(c->k, s);
    } else if (s->loop == KIR_LOOP_VECTOR && !c->in_simd) {
        simd = kir_loop_clause(c, s, &clause, &why);
    }
    if (why.len) {
        kir_indent(depth, o);
        kf_str_append(o, kf_str_cstr(&why));
    }
    if (par) {
        kir_indent(depth, o);
        kf_str_append(o, "#pragma omp parallel for");
        if (n > 1) kf_str_appendf(o, " collapse(%d)", n);
        kf_str_appendf(o, " schedule(static)%s\n", kf_str_cstr(&clause));
    } else if (simd) {
        kir_indent(depth, o);
        kf_str_appendf(o, "#pragma omp simd%s\n", kf_str_cstr(&clause));
    } else if (s->loop == KIR_LOOP_UNROLL) {
        kir_indent(depth, o);
        kf_str_appendf(o, "#pragma GCC unroll %lld\n", (long long)kir_unroll_count(s));
    }
    kf_str_free(&clause);
    kf_str_free(&why);
    int saved_par = c->in_par, saved_simd = c->in_simd;
    c->in_par |= par;
    c->in_simd |= simd;
    const kir_stmt *cur = s;
    int opened = 0;
    for (int i = 0; i < n && !c->rc; i++) {
        if (!kir_loop_head(c, cur, depth + i, o)) break;
        opened++;
        if (i == n - 1) kir_rc_list(c, cur->body, cur->n_body, depth + n, o);
        else cur = cur->body[0];
    }
    for (int i = opened - 1; i >= 0; i--) {
        kir_indent(depth + i, o);
        kf_str_append(o, "}\n");
    }
    c->in_par = saved_par;
    c->in_simd = saved_simd;
    kir_scope_end(c, mark);
}

static void kir_rc_store(kir_rc *c, const kir_stmt *s, int depth, kf_str *o) {
    const kir_kernel *k = c->k;
    if (s->buf < 0 || s->buf >= k->n_bufs) {
        kir_rc_fail(c, KF_E_INVALID, "store to buffer id %d out of range", s->buf);
        return;
    }
    if (!k->bufs[s->buf].writes) {
        kir_rc_fail(c, KF_E_INVALID, "store to buffer '%s', which is declared read-only",
                    k->bufs[s->buf].name);
        return;
    }
    if (s->idx && (s->idx->type == KIR_T_F32 || s->idx->type == KIR_T_F64)) {
        kir_rc_fail(c, KF_E_INVALID, "index into '%s' is a float", k->bufs[s->buf].name);
        return;
    }
    kf_dtype dt = k->bufs[s->buf].dtype;
    kir_indent(depth, o);
    kf_str_appendf(o, "%s[", c->bname[s->buf]);
    kir_rc_expr(c, s->idx, o);
    kf_str_append(o, "] = ");
    const char *conv = dt == KF_F16 ? "kf_f32_to_f16(" : dt == KF_BF16 ? "kf_f32_to_bf16(" : "";
    kf_str_append(o, conv);
    kir_rc_expr_as(c, s->val, dt == KF_BOOL ? KIR_T_BOOL : kir_type_of_dtype(dt), o);
    kf_str_append(o, *conv ? ");\n" : ";\n");
}

static void kir_rc_stmt(kir_rc *c, const kir_stmt *s, int depth, kf_str *o) {
    if (!s) {
        kir_rc_fail(c, KF_E_INVALID, "missing statement");
        return;
    }
    switch (s->kind) {
    case KIR_S_BLOCK:
        kir_indent(depth, o);
        kf_str_append(o, "{\n");
        kir_rc_list(c, s->body, s->n_body, depth + 1, o);
        kir_indent(depth, o);
        kf_str_append(o, "}\n");
        return;
    case KIR_S_FOR:
        kir_rc_for(c, s, depth, o);
        return;
    case KIR_S_STORE:
        kir_rc_store(c, s, depth, o);
        return;
    case KIR_S_DECL: {
        if (!kir_rc_var_ok(c, s->var)) return;
        kir_type t = c->k->vars[s->var].type;
        kir_indent(depth, o);
        kf_str_appendf(o, "%s %s = ", kir_rc_ctype(t), c->vname[s->var]);
        if (s->val) kir_rc_expr_as(c, s->val, t, o); /* before declaring: `T v = v` is an error */
        else kf_str_append(o, "0");
        kf_str_append(o, ";\n");
        if (!kir_declare(c, s->var)) return;
        if (c->reads[s->var] == 0) {
            kir_indent(depth, o);
            kf_str_appendf(o, "(void)%s;\n", c->vname[s->var]);
        }
        return;
    }
    case KIR_S_ASSIGN:
        if (!kir_rc_var_ok(c, s->var)) return;
        if (!c->live[s->var]) {
            kir_rc_fail(c, KF_E_INVALID, "assignment to '%s' outside its declaration's scope",
                        c->k->vars[s->var].name);
            return;
        }
        kir_indent(depth, o);
        kf_str_appendf(o, "%s = ", c->vname[s->var]);
        kir_rc_expr_as(c, s->val, c->k->vars[s->var].type, o);
        kf_str_append(o, ";\n");
        return;
    case KIR_S_IF:
        kir_indent(depth, o);
        kf_str_append(o, "if (");
        kir_rc_expr(c, s->cond, o);
        kf_str_append(o, ") {\n");
        kir_rc_list(c, s->body, s->n_body, depth + 1, o);
        if (s->n_els) {
            kir_indent(depth, o);
            kf_str_append(o, "} else {\n");
            kir_rc_list(c, s->els, s->n_els, depth + 1, o);
        }
        kir_indent(depth, o);
        kf_str_append(o, "}\n");
        return;
    case KIR_S_BARRIER:
        kir_indent(depth, o);
        kf_str_append(o, "/* barrier: a no-op here, every loop has finished */\n");
        return;
    }
    kir_rc_fail(c, KF_E_INVALID, "unknown statement kind %d", (int)s->kind);
}

static void kir_count_reads(const kir_expr *e, int *reads, int n_vars) {
    if (!e) return;
    if (e->kind == KIR_E_VAR && e->var >= 0 && e->var < n_vars) reads[e->var]++;
    kir_count_reads(e->a, reads, n_vars);
    kir_count_reads(e->b, reads, n_vars);
    kir_count_reads(e->c, reads, n_vars);
}

static void kir_count_stmt_reads(const kir_stmt *s, int *reads, int n_vars) {
    if (!s) return;
    kir_count_reads(s->lo, reads, n_vars);
    kir_count_reads(s->hi, reads, n_vars);
    kir_count_reads(s->idx, reads, n_vars);
    kir_count_reads(s->val, reads, n_vars);
    kir_count_reads(s->cond, reads, n_vars);
    for (int i = 0; i < s->n_body; i++) kir_count_stmt_reads(s->body[i], reads, n_vars);
    for (int i = 0; i < s->n_els; i++) kir_count_stmt_reads(s->els[i], reads, n_vars);
}

static int kir_render_kernel(const kir_kernel *k, kf_str *o, kf_err *err) {
    const char *why = kir_failure(k);
    if (why)
        return kf_fail(err, strcmp(why, KIR_OOM) == 0 ? KF_E_NOMEM : KF_E_INVALID,
                       "kir_render_c: kernel '%s' is incomplete: %s", k && k->name ? k->name : "?", why);
    if (!kir_is_ident(k->name) || kir_is_reserved(k->name))
        return kf_fail(err, KF_E_INVALID, "kir_render_c: kernel name '%s' is not a usable C identifier",
                       k->name);
    kir_rc c = {.k = k, .err = err};
    size_t nv = k->n_vars ? (size_t)k->n_vars : 1;
    c.live = calloc(nv, sizeof *c.live);
    c.reads = calloc(nv, sizeof *c.reads);
    if (!c.live || !c.reads || (c.rc = kir_rc_names(&c)) != 0) {
        if (!c.rc) c.rc = KF_E_NOMEM;
        kf_fail(err, c.rc, "kir_render_c: out of memory");
    }
    if (!c.rc) {
        for (int i = 0; i < k->n_bufs && !c.rc; i++)
            if (!kir_rc_buf_ctype(k->bufs[i].dtype))
                kir_rc_fail(&c, KF_E_UNSUPPORTED, "buffer '%s' has dtype %s, which C kernels cannot use",
                            k->bufs[i].name, kf_dtype_name(k->bufs[i].dtype));
    }
    if (!c.rc) {
        kir_count_stmt_reads(k->body, c.reads, k->n_vars);
        kf_str_appendf(o, "void %s(", k->name);
        for (int i = 0; i < k->n_bufs; i++)
            kf_str_appendf(o, "%s%s%s *restrict %s", i ? ", " : "", k->bufs[i].writes ? "" : "const ",
                           kir_rc_buf_ctype(k->bufs[i].dtype), c.bname[i]);
        kf_str_append(o, k->n_bufs ? ")\n{\n" : "void)\n{\n");
        if (k->body && k->body->kind == KIR_S_BLOCK) kir_rc_list(&c, k->body->body, k->body->n_body, 1, o);
        else kir_rc_stmt(&c, k->body, 1, o);
        kf_str_append(o, "}\n");
    }
    if (c.bname)
        for (int i = 0; i < k->n_bufs + k->n_vars; i++) free(c.bname[i]);
    free(c.bname);
    free(c.live);
    free(c.reads);
    free(c.scope);
    return c.rc;
}

int kir_render_c(kir_kernel *const *kernels, int n, kf_str *out, kf_err *err) {
    if (!out || (n > 0 && !kernels)) return kf_fail(err, KF_E_INVALID, "kir_render_c: no output or kernels");
    kf_str unit;
    kf_str_init(&unit);
    kir_rc_prelude(&unit);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (!kernels[i]) {
            rc = kf_fail(err, KF_E_INVALID, "kir_render_c: kernel %d is NULL", i);
            break;
        }
        for (int j = 0; j < i && !rc; j++)
            if (strcmp(kernels[i]->name, kernels[j]->name) == 0)
                rc = kf_fail(err, KF_E_INVALID, "kir_render_c: two kernels named '%s'", kernels[i]->name);
        if (rc) break;
        kf_str_append(&unit, "\n");
        rc = kir_render_kernel(kernels[i], &unit, err);
    }
    if (!rc) kf_str_appendn(out, unit.data ? unit.data : "", unit.len);
    kf_str_free(&unit);
    return rc;
}
