/* kf_prompt.h: prompts are data files (prompts/<target>.md, prompts/feedback/<status>.md, ...)
 * rendered by a small template language:
 *   {{name}}               the value of a variable (an unknown name is an error; no spaces
 *                          inside the braces, so "{{ x }}" in prose stays as it is)
 *   {{include PATH}}       the rendered text of PATH, relative to the including file's folder
 *   {{#if name}}..{{/if}}  the inside when the variable is set and not empty ("!name": unset
 *                          or empty); may nest
 * A tag alone on its line takes its line break with it. Anything else between "{{" and "}}" is
 * kept as it is, and substituted values are never scanned again (a problem's source or a
 * model's answer cannot inject directives). */
#ifndef KF_PROMPT_H
#define KF_PROMPT_H

#include "core/kf_err.h"

typedef struct kf_prompt_var {
    const char *name;
    const char *value;   /* NULL = unset */
} kf_prompt_var;

/* The prompts folder: $KFORGE_PROMPTS if set, else the first existing of
 * <dir of the running binary>/../prompts, .../../share/kforge/prompts, .../../../prompts.
 * *out is malloc'd. KF_E_IO naming the places tried when none exists. */
int kf_prompts_dir(char **out, kf_err *err);

/* Renders the file dir/name. *out malloc'd. */
int kf_prompt_render(const char *dir, const char *name, const kf_prompt_var *vars, int n,
                     char **out, kf_err *err);
/* Renders text; includes resolve against base_dir; where names the text in messages. */
int kf_prompt_render_text(const char *text, const char *base_dir, const char *where,
                          const kf_prompt_var *vars, int n, char **out, kf_err *err);

#endif
