/* agent_llm.c: the llm:<provider>:<model> agent (see kf_agent_llm.h): one conversation per
 * problem, one candidate per turn, the harness's result of the last attempt sent back as the
 * next user message, token usage recorded per turn. */
#include "agents/kf_agent_llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kf_str.h"
#include "llm/kf_prompt.h"

typedef struct llm_msg {
    const char *role;   /* static string */
    char *text;
} llm_msg;

typedef struct llm_agent {
    kf_agent base;
    kf_llm_provider *prov;
    kf_llm_agent_opts o;
    char *prompts_dir;
    char *extra_context;
    char *problem;          /* path of the problem the conversation is about */
    llm_msg *msgs;
    int n_msgs, cap_msgs;
    int turns;              /* answers in this problem's conversation */
    kf_llm_attempt_rec *recs;
    int n_recs, cap_recs;
    kf_llm_usage total;
} llm_agent;

void kf_llm_agent_opts_default(kf_llm_agent_opts *o) {
    memset(o, 0, sizeof *o);
    kf_llm_opts_default(&o->chat);
    kf_llm_provider_opts_default(&o->provider);
    o->max_attempts = 5;
    o->ask_faster = 1;
    o->max_feedback_chars = 12000;
}

static int llm_propose(kf_agent *a, const kf_problem *pb, const kf_history *h, kf_program **cands,
                       int *n, kf_err *err);

int kf_agent_is_llm(const kf_agent *a) { return a && a->propose == llm_propose; }

static void llm_conversation_clear(llm_agent *la) {
    for (int i = 0; i < la->n_msgs; i++) free(la->msgs[i].text);
    la->n_msgs = 0;
    la->turns = 0;
    free(la->problem);
    la->problem = NULL;
}

static int llm_push(llm_agent *la, const char *role, char *text) {
    if (la->n_msgs == la->cap_msgs) {
        int cap = la->cap_msgs ? la->cap_msgs * 2 : 16;
        llm_msg *m = realloc(la->msgs, (size_t)cap * sizeof *m);
        if (!m) return KF_E_NOMEM;
        la->msgs = m;
        la->cap_msgs = cap;
    }
    la->msgs[la->n_msgs].role = role;
    la->msgs[la->n_msgs].text = text;
    la->n_msgs++;
    return 0;
}

static void llm_pop(llm_agent *la) {
    if (la->n_msgs > 0) free(la->msgs[--la->n_msgs].text);
}

static kf_llm_attempt_rec *llm_new_rec(llm_agent *la) {
    if (la->n_recs == la->cap_recs) {
        int cap = la->cap_recs ? la->cap_recs * 2 : 16;
        kf_llm_attempt_rec *r = realloc(la->recs, (size_t)cap * sizeof *r);
        if (!r) return NULL;
        la->recs = r;
        la->cap_recs = cap;
    }
    kf_llm_attempt_rec *r = &la->recs[la->n_recs++];
    memset(r, 0, sizeof *r);
    return r;
}

/* The record of this problem's latest answer, or NULL. */
static const kf_llm_attempt_rec *llm_last_rec(const llm_agent *la) {
    if (!la->turns || !la->n_recs) return NULL;
    return &la->recs[la->n_recs - 1];
}

static int llm_start(llm_agent *la, const kf_problem *pb, kf_err *err) {
    llm_conversation_clear(la);
    la->problem = kf_strdup(pb->path ? pb->path : "");
    char *ctx = NULL;
    if (la->o.context_fn) ctx = la->o.context_fn(la->o.user, pb);
    else if (la->extra_context) ctx = kf_strdup(la->extra_context);
    kf_prompt_var sv[] = {{"target", pb->target ? pb->target : "cpu"}};
    char *sys = NULL, *user = NULL;
    int rc = kf_prompt_render(la->prompts_dir, "system.md", sv, 1, &sys, err);
    if (!rc) rc = kf_llm_problem_prompt(la->prompts_dir, pb, la->o.max_attempts, ctx, &user, err);
    free(ctx);
    if (!rc && llm_push(la, "system", sys)) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
    else if (!rc) sys = NULL;
    if (!rc && llm_push(la, "user", user)) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
    else if (!rc) user = NULL;
    free(sys);
    free(user);
    if (rc) llm_conversation_clear(la);
    return rc;
}

static int llm_propose(kf_agent *a, const kf_problem *pb, const kf_history *h, kf_program **cands,
                       int *n, kf_err *err) {
    llm_agent *la = a->ctx;
    int cap = *n;
    *n = 0;
    if (cap < 1) return kf_fail(err, KF_E_INVALID, "%s: no room for a candidate", a->name);
    const char *path = pb->path ? pb->path : "";
    int fresh = !h || h->n == 0 || !la->problem || strcmp(la->problem, path);
    int rc;
    if (fresh) {
        rc = llm_start(la, pb, err);
        if (rc) return kf_err_prefix(err, "%s", a->name);
    } else {
        if (la->turns >= la->o.max_attempts) return 0;
        const kf_attempt *last = &h->attempts[h->n - 1];
        if (last->result.status == KF_ST_VERIFIED && !la->o.ask_faster) return 0;
        const kf_llm_attempt_rec *rec = llm_last_rec(la);
        const char *perr = rec && rec->malformed ? rec->parse_error : NULL;
        char *hint = NULL;
        if (last->result.status == KF_ST_VERIFIED && la->o.profile_fn)
            hint = la->o.profile_fn(la->o.user, pb, last);
        /* A caller that times PyTorch once per problem leaves eager_ms in one result only:
         * the speedup is then computed against the latest baseline in the history. */
        kf_attempt shown = *last;
        for (int i = h->n - 1; i >= 0 && shown.result.eager_ms <= 0; i--)
            if (h->attempts[i].result.eager_ms > 0) {
                shown.result.eager_ms = h->attempts[i].result.eager_ms;
                if (shown.result.compile_ms <= 0)
                    shown.result.compile_ms = h->attempts[i].result.compile_ms;
            }
        char *fb = NULL;
        rc = kf_llm_feedback(la->prompts_dir, &shown, perr, la->o.max_attempts, hint,
                             la->o.max_feedback_chars, &fb, err);
        free(hint);
        if (rc) return kf_err_prefix(err, "%s", a->name);
        if (llm_push(la, "user", fb)) {
            free(fb);
            return kf_fail(err, KF_E_NOMEM, "out of memory");
        }
    }

    kf_llm_message *m = calloc((size_t)la->n_msgs, sizeof *m);
    if (!m) return kf_fail(err, KF_E_NOMEM, "out of memory");
    for (int i = 0; i < la->n_msgs; i++) {
        m[i].role = la->msgs[i].role;
        m[i].content = la->msgs[i].text;
    }
    char *reply = NULL;
    kf_llm_usage u;
    rc = kf_llm_chat(la->prov, m, la->n_msgs, &la->o.chat, &reply, &u, err);
    free(m);
    kf_llm_usage_add(&la->total, &u);
    if (rc) {
        /* The turn did not happen: the next call sends the same message again. */
        if (fresh) llm_conversation_clear(la);
        else llm_pop(la);
        return rc;
    }
    if (llm_push(la, "assistant", reply)) {
        free(reply);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    la->turns++;

    kf_llm_attempt_rec *rec = llm_new_rec(la);
    kf_program *p = calloc(1, sizeof *p);
    if (!rec || !p) {
        free(p);
        return kf_fail(err, KF_E_NOMEM, "out of memory");
    }
    rec->problem = kf_strdup(path);
    rec->number = (h ? h->n : 0) + 1;
    rec->usage = u;
    const char *target = pb->target ? pb->target : "cpu";
    kf_err perr;
    kf_err_clear(&perr);
    rc = kf_llm_answer_to_program(reply, target, a->name, p, &perr);
    if (rc == KF_E_FORMAT) {
        /* Malformed: an empty program that the validator rejects; the reason is kept for the
         * next turn's feedback. */
        rec->malformed = 1;
        if (!strcmp(u.stop_reason, "length") || !strcmp(u.stop_reason, "max_tokens"))
            rec->parse_error = kf_asprintf("%s (the answer was cut off at the output token "
                                           "limit: write a shorter answer)", perr.msg);
        else rec->parse_error = kf_strdup(perr.msg);
        memset(p, 0, sizeof *p);
        p->target = kf_strdup(target);
        p->agent = kf_strdup(a->name);
    } else if (rc) {
        free(p);
        *err = perr;
        return kf_err_prefix(err, "%s", a->name);
    }
    cands[0] = p;
    *n = 1;
    return 0;
}

static void llm_destroy(kf_agent *a) {
    if (!a) return;
    llm_agent *la = a->ctx;
    llm_conversation_clear(la);
    free(la->msgs);
    for (int i = 0; i < la->n_recs; i++) {
        free((char *)la->recs[i].problem);
        free((char *)la->recs[i].parse_error);
    }
    free(la->recs);
    kf_llm_provider_free(la->prov);
    free(la->prompts_dir);
    free(la->extra_context);
    free(la);
}

int kf_agent_llm_new(const char *spec, const kf_llm_agent_opts *o, kf_agent **out, kf_err *err) {
    *out = NULL;
    llm_agent *la = calloc(1, sizeof *la);
    if (!la) return kf_fail(err, KF_E_NOMEM, "out of memory");
    if (o) la->o = *o;
    else kf_llm_agent_opts_default(&la->o);
    if (la->o.max_attempts <= 0) la->o.max_attempts = 5;
    int rc = kf_llm_provider_new(spec, &la->o.provider, &la->prov, err);
    la->o.provider.api_key = NULL;  /* the provider holds its own copy */
    if (!rc) {
        if (la->o.prompts_dir) {
            la->prompts_dir = kf_strdup(la->o.prompts_dir);
            if (!la->prompts_dir) rc = kf_fail(err, KF_E_NOMEM, "out of memory");
        } else rc = kf_prompts_dir(&la->prompts_dir, err);
        la->o.prompts_dir = NULL;
    }
    if (!rc) {
        /* The prompts must be there before the run starts, not at the first problem. */
        char *probe = kf_asprintf("%s/system.md", la->prompts_dir);
        FILE *f = probe ? fopen(probe, "r") : NULL;
        if (f) fclose(f);
        else rc = kf_fail(err, KF_E_IO, "%s: no system.md in the prompts folder %s",
                          kf_llm_provider_name(la->prov), la->prompts_dir);
        free(probe);
    }
    if (!rc && la->o.extra_context) {
        la->extra_context = kf_strdup(la->o.extra_context);
        la->o.extra_context = NULL;
    }
    if (rc) {
        kf_llm_provider_free(la->prov);
        free(la->prompts_dir);
        free(la);
        return rc;
    }
    la->base.name = kf_llm_provider_name(la->prov);
    la->base.ctx = la;
    la->base.propose = llm_propose;
    la->base.destroy = llm_destroy;
    *out = &la->base;
    return 0;
}

const kf_llm_attempt_rec *kf_agent_llm_records(const kf_agent *a, int *n) {
    if (!kf_agent_is_llm(a)) {
        *n = 0;
        return NULL;
    }
    const llm_agent *la = a->ctx;
    *n = la->n_recs;
    return la->recs;
}

void kf_agent_llm_usage(const kf_agent *a, kf_llm_usage *total) {
    memset(total, 0, sizeof *total);
    if (kf_agent_is_llm(a)) *total = ((const llm_agent *)a->ctx)->total;
}
