/* agent_llm_prompt.c: the first message of a problem's conversation: prompts/<target>.md filled
 * with the problem's PyTorch source, a summary of its captured graph (the names a plan must
 * use for inputs, params and outputs) and the optional extra context. */
#include "agents/kf_agent_llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"
#include "llm/kf_prompt.h"

static void llm_arg(kf_str *s, const kf_graph *g, const kf_arg *a) {
    switch (a->kind) {
    case KF_ARG_NONE: kf_str_append(s, "None"); break;
    case KF_ARG_TENSOR:
        kf_str_append(s, a->tensor >= 0 && a->tensor < g->n_values ? g->values[a->tensor].name
                                                                   : "?");
        break;
    case KF_ARG_INT: kf_str_appendf(s, "%lld", (long long)a->i); break;
    case KF_ARG_FLOAT: kf_str_appendf(s, "%.9g", a->f); break;
    case KF_ARG_BOOL: kf_str_append(s, a->i ? "True" : "False"); break;
    case KF_ARG_STR: kf_str_appendf(s, "\"%s\"", a->s ? a->s : ""); break;
    case KF_ARG_LIST:
        kf_str_append(s, "[");
        for (int i = 0; i < a->n_items; i++) {
            if (i) kf_str_append(s, ", ");
            llm_arg(s, g, &a->items[i]);
        }
        kf_str_append(s, "]");
        break;
    }
}

static void llm_value_line(kf_str *s, const kf_value *v) {
    char d[160];
    kf_str_appendf(s, "  %s", v->name);
    if (v->label) kf_str_appendf(s, " (%s)", v->label);
    kf_str_appendf(s, ": %s", kf_tdesc_format(&v->desc, d, sizeof d));
    if (v->desc.ndim > 1 && !kf_tdesc_is_contiguous(&v->desc)) {
        kf_str_append(s, " strides [");
        for (int i = 0; i < v->desc.ndim; i++)
            kf_str_appendf(s, "%s%lld", i ? ", " : "", (long long)v->desc.strides[i]);
        kf_str_append(s, "]");
    }
    kf_str_append(s, "\n");
}

char *kf_llm_graph_summary(const kf_graph *g) {
    kf_str s;
    kf_str_init(&s);
    if (!g) {
        kf_str_append(&s, "(no graph was captured for this problem)\n");
        return kf_str_take(&s);
    }
    kf_str_append(&s, "Inputs (the forward's arguments, in order; role \"input\", index 0, 1, ...):\n");
    for (int i = 0; i < g->n_inputs; i++) llm_value_line(&s, &g->values[g->inputs[i]]);
    if (!g->n_inputs) kf_str_append(&s, "  (none)\n");
    kf_str_append(&s, "Params (the module's weights and buffers; role \"param\", \"param\": the "
                      "name before the parenthesis):\n");
    for (int i = 0; i < g->n_params; i++) llm_value_line(&s, &g->values[g->params[i]]);
    if (!g->n_params) kf_str_append(&s, "  (none)\n");
    kf_str_append(&s, "Outputs (what forward returns, in order; role \"output\", index 0, 1, "
                      "...):\n");
    for (int i = 0; i < g->n_outputs; i++) llm_value_line(&s, &g->values[g->outputs[i]]);
    kf_str_append(&s, "ATen ops of the reference, in order (every default filled in):\n");
    for (int i = 0; i < g->n_nodes; i++) {
        const kf_node *nd = &g->nodes[i];
        kf_str_append(&s, "  ");
        int named = 0;
        for (int k = 0; k < nd->n_outs; k++) {
            kf_str_appendf(&s, "%s%s", k ? ", " : "",
                           nd->outs[k] >= 0 ? g->values[nd->outs[k]].name : "_");
            named = 1;
        }
        if (named) kf_str_append(&s, " = ");
        kf_str_appendf(&s, "%s(", nd->op);
        for (int k = 0; k < nd->n_args; k++) {
            if (k) kf_str_append(&s, ", ");
            if (nd->args[k].name) kf_str_appendf(&s, "%s=", nd->args[k].name);
            llm_arg(&s, g, &nd->args[k]);
        }
        kf_str_append(&s, ")");
        if (nd->n_outs == 1 && nd->outs[0] >= 0) {
            char d[160];
            kf_str_appendf(&s, "  -> %s", kf_tdesc_format(&g->values[nd->outs[0]].desc, d, sizeof d));
        }
        kf_str_append(&s, "\n");
    }
    return kf_str_take(&s);
}

int kf_llm_problem_prompt(const char *prompts_dir, const kf_problem *pb, int max_attempts,
                          const char *extra_context, char **out, kf_err *err) {
    *out = NULL;
    const char *target = pb->target ? pb->target : "cpu";
    char name[96];
    snprintf(name, sizeof name, "%s.md", target);
    char *summary = kf_llm_graph_summary(pb->graph);
    const char *base = pb->path ? strrchr(pb->path, '/') : NULL;
    base = base ? base + 1 : pb->path;
    char maxa[16];
    snprintf(maxa, sizeof maxa, "%d", max_attempts);
    /* The source without its trailing blank lines, so the fence closes right after it. */
    const char *src = pb->source ? pb->source : "";
    size_t sl = strlen(src);
    while (sl && (src[sl - 1] == '\n' || src[sl - 1] == '\r' || src[sl - 1] == ' ')) sl--;
    char *source = strndup(src, sl);
    kf_prompt_var vars[] = {
        {"target", target},
        {"problem_name", base ? base : "problem.py"},
        {"problem_source", source ? source : ""},
        {"graph_summary", summary},
        {"max_attempts", maxa},
        {"extra_context", extra_context && *extra_context ? extra_context : NULL},
    };
    int rc = kf_prompt_render(prompts_dir, name, vars, (int)(sizeof vars / sizeof vars[0]), out,
                              err);
    if (rc == KF_E_IO) {
        char *probe = kf_asprintf("%s/%s", prompts_dir, name);
        FILE *f = probe ? fopen(probe, "r") : NULL;
        if (f) fclose(f);
        else rc = kf_fail(err, KF_E_UNSUPPORTED, "no LLM prompt for target %s (%s/%s)", target,
                          prompts_dir, name);
        free(probe);
    }
    free(summary);
    free(source);
    return rc;
}
