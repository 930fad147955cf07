/* test_llm_agent.c: the llm agent's pieces and its loop: prompt templates, the worked example of
 * prompts/cpu.md (it parses, validates against its graph and compiles), answer parsing
 * (headings, info strings, malformed answers), the exact feedback texts for every harness
 * outcome, and a whole conversation against the mock server in which the test plays the
 * harness and asserts the exact text that reached the server each turn. */
#include <stdlib.h>
#include <string.h>

#include "agents/kf_agent_llm.h"
#include "targets/kf_target.h"
#include "agents/kf_agent_spec.h"
#include "kf_test.h"
#include "llm/kf_prompt.h"
#include "test_llm_mock.h"

#define AGENT_KEY "sk-agent-test-9876543210SECRET"

/* The graph of the worked example in prompts/cpu.md (Linear(256, 512) then softmax). */
static const char *example_graph_json =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"v2\"],"
    "\"values\":{\"x0\":{\"dtype\":\"f32\",\"shape\":[128,256],\"strides\":[256,1]},"
    "\"p0\":{\"dtype\":\"f32\",\"shape\":[512,256],\"strides\":[256,1]},"
    "\"p1\":{\"dtype\":\"f32\",\"shape\":[512],\"strides\":[1]},"
    "\"v0\":{\"dtype\":\"f32\",\"shape\":[256,512],\"strides\":[1,256]},"
    "\"v1\":{\"dtype\":\"f32\",\"shape\":[128,512],\"strides\":[512,1]},"
    "\"v2\":{\"dtype\":\"f32\",\"shape\":[128,512],\"strides\":[512,1]}},"
    "\"param_names\":{\"p0\":\"fc.weight\",\"p1\":\"fc.bias\"},"
    "\"nodes\":[{\"op\":\"aten.t.default\",\"outputs\":[\"v0\"],"
    "\"args\":[{\"name\":\"self\",\"tensor\":\"p0\"}]},"
    "{\"op\":\"aten.addmm.default\",\"outputs\":[\"v1\"],"
    "\"args\":[{\"name\":\"self\",\"tensor\":\"p1\"},{\"name\":\"mat1\",\"tensor\":\"x0\"},"
    "{\"name\":\"mat2\",\"tensor\":\"v0\"},{\"name\":\"beta\",\"int\":1},{\"name\":\"alpha\",\"int\":1}]},"
    "{\"op\":\"aten._softmax.default\",\"outputs\":[\"v2\"],"
    "\"args\":[{\"name\":\"self\",\"tensor\":\"v1\"},{\"name\":\"dim\",\"int\":1},"
    "{\"name\":\"half_to_float\",\"bool\":false}]}]}";

static const char *example_source =
    "import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n"
    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(256, 512)\n\n"
    "    def forward(self, x):\n        return torch.softmax(self.fc(x), dim=1)\n\n"
    "def get_inputs():\n    return [torch.randn(128, 256)]\n\n"
    "def get_init_inputs():\n    return []\n";

static char prompts_dir[PATH_MAX];

static char *read_repo_file(const char *rel) {
    char path[PATH_MAX];
    test_repo_path(rel, path, sizeof path);
    char *data = NULL;
    if (kf_read_file(path, &data, NULL)) return NULL;
    return data;
}

/* Compares and, when different, shows both texts in full. */
#define CHECK_TEXT(got, want) do { const char *_g = (got), *_w = (want); \
    if (!_g || strcmp(_g, _w)) { \
        fprintf(stderr, "  FAIL %s:%d: text differs\n--- got ---\n%s\n--- want ---\n%s\n---\n", \
                __FILE__, __LINE__, _g ? _g : "(null)", _w); kf_test_case_failed = 1; } } while (0)

/* ---- templates ---- */

static void test_template_language(void) {
    char dir[PATH_MAX];
    if (test_mkdtemp(dir, sizeof dir)) KF_SKIP("no temp folder");
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/part.md", dir);
    FILE *f = fopen(path, "w");
    fputs("[part {{name}}]\n", f);
    fclose(f);
    kf_prompt_var vars[] = {{"name", "N"}, {"empty", ""}, {"unset", NULL}, {"evil", "{{name}}"}};
    char *out = NULL;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_prompt_render_text("a {{name}} b\n{{include part.md}}\n{{#if name}}\nyes\n{{/if}}\n"
                                   "{{#if empty}}no{{/if}}{{#if !unset}}neg{{/if}}|{{evil}}|{{ json }}|"
                                   "{{#if name}}x{{#if unset}}y{{/if}}z{{/if}}",
                                   dir, "t", vars, 4, &out, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_TEXT(out, "a N b\n[part N]\nyes\nneg|{{name}}|{{ json }}|xz");
    free(out);
    rc = kf_prompt_render_text("{{nope}}", dir, "t", vars, 4, &out, &err);
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    KF_CHECK_MSG(strstr(err.msg, "unknown placeholder {{nope}}") != NULL, "%s", err.msg);
    rc = kf_prompt_render_text("{{#if name}}open", dir, "t", vars, 4, &out, &err);
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    rc = kf_prompt_render_text("{{include missing.md}}", dir, "t", vars, 4, &out, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);
    /* Self-inclusion stops at the depth limit. */
    snprintf(path, sizeof path, "%s/loop.md", dir);
    f = fopen(path, "w");
    fputs("{{include loop.md}}", f);
    fclose(f);
    rc = kf_prompt_render(dir, "loop.md", vars, 4, &out, &err);
    KF_CHECK_EQ_INT(rc, KF_E_FORMAT);
    test_rmtree(dir);
}

static void test_prompts_dir_lookup(void) {
    char *d = NULL;
    kf_err err;
    kf_err_clear(&err);
    setenv("KFORGE_PROMPTS", prompts_dir, 1);
    KF_CHECK_EQ_INT(kf_prompts_dir(&d, &err), 0);
    KF_CHECK_STR(d, prompts_dir);
    free(d);
    setenv("KFORGE_PROMPTS", "/nonexistent/kforge-prompts", 1);
    KF_CHECK_EQ_INT(kf_prompts_dir(&d, &err), KF_E_IO);
    KF_CHECK_MSG(strstr(err.msg, "KFORGE_PROMPTS") != NULL, "%s", err.msg);
    unsetenv("KFORGE_PROMPTS");
    /* From build-llm/tests/ the repository's prompts/ is two levels up. */
    KF_CHECK_EQ_INT(kf_prompts_dir(&d, &err), 0);
    KF_CHECK(d && strstr(d, "prompts") != NULL);
    free(d);
    setenv("KFORGE_PROMPTS", prompts_dir, 1);
}

/* ---- the worked example ---- */

static void test_example_answer(void) {
    char *answer = read_repo_file("prompts/examples/cpu_answer.md");
    KF_CHECK(answer != NULL);
    if (!answer) return;
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_answer_to_program(answer, "cpu", "llm:openai:m", &p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_STR(p.target, "cpu");
        KF_CHECK_STR(p.agent, "llm:openai:m");
        KF_CHECK_EQ_INT(p.n_sources, 1);
        KF_CHECK_STR(p.sources[0].file, "kernels.c");
        KF_CHECK(p.sources[0].text && strstr(p.sources[0].text, "void bias_softmax_rows(") != NULL);
        KF_CHECK_EQ_INT(p.n_kernels, 1);
        KF_CHECK_EQ_INT(p.n_bufs, 4);
        KF_CHECK_EQ_INT(p.n_steps, 2);
        kf_graph g;
        memset(&g, 0, sizeof g);
        rc = kf_graph_from_json(example_graph_json, &g, &err);
        KF_CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc == 0) {
            rc = kf_program_validate(&p, &g, &err);
            KF_CHECK_MSG(rc == 0, "the worked example does not validate: %s", err.msg);
            /* The graph shown in the prompt is what kforge would show for it. */
            char *summary = kf_llm_graph_summary(&g);
            char *cpu = read_repo_file("prompts/cpu.md");
            KF_CHECK_MSG(cpu && strstr(cpu, summary) != NULL, "cpu.md's example graph is not:\n%s",
                         summary);
            free(cpu);
            free(summary);
            kf_graph_free(&g);
        }
        /* It compiles with the cpu target's flags. */
        char dir[PATH_MAX];
        if (!test_mkdtemp(dir, sizeof dir)) {
            char src[PATH_MAX + 32], cmd[3 * PATH_MAX];
            snprintf(src, sizeof src, "%s/kernels.c", dir);
            kf_write_file(src, p.sources[0].text, strlen(p.sources[0].text));
            snprintf(cmd, sizeof cmd,
                     "cc -std=gnu11 -O3 -fopenmp -fPIC -fno-fast-math -ffp-contract=off -Wall "
                     "-Werror -Werror=implicit-function-declaration -c '%s' -o '%s/k.o' 2>&1",
                     src, dir);
            KF_CHECK_MSG(system(cmd) == 0, "the worked example does not compile: %s", cmd);
            test_rmtree(dir);
        }
        kf_program_free(&p);
    }
    free(answer);
}

/* The cuda prompt's worked example: parses, validates against the same graph, cuda.md shows
 * that graph, and it compiles under NVRTC where NVRTC can be loaded (else that part skips). */
static void test_example_answer_cuda(void) {
    char *answer = read_repo_file("prompts/examples/cuda_answer.md");
    KF_CHECK(answer != NULL);
    if (!answer) return;
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_llm_answer_to_program(answer, "cuda", "llm:openai:m", &p, &err);
    free(answer);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    KF_CHECK_STR(p.target, "cuda");
    KF_CHECK_EQ_INT(p.n_sources, 1);
    KF_CHECK_STR(p.sources[0].file, "kernels.cu");
    KF_CHECK_EQ_INT(p.n_steps, 2);
    KF_CHECK(p.n_steps == 2 && p.steps[1].grid[0] == 128 && p.steps[1].block[0] == 128);
    kf_graph g;
    memset(&g, 0, sizeof g);
    rc = kf_graph_from_json(example_graph_json, &g, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        rc = kf_program_validate(&p, &g, &err);
        KF_CHECK_MSG(rc == 0, "the cuda worked example does not validate: %s", err.msg);
        char *summary = kf_llm_graph_summary(&g);
        char *cuda = read_repo_file("prompts/cuda.md");
        KF_CHECK_MSG(cuda && strstr(cuda, summary) != NULL, "cuda.md's example graph is not:\n%s",
                     summary);
        KF_CHECK(cuda && strstr(cuda, "{{include examples/cuda_answer.md}}") != NULL);
        free(cuda);
        free(summary);
        kf_graph_free(&g);
    }
    char dir[PATH_MAX];
    if (!test_mkdtemp(dir, sizeof dir)) {
        if (!getenv("KFORGE_CUDA_ARCH")) setenv("KFORGE_CUDA_ARCH", "sm_90", 1);
        const kf_target_ops *t = kf_target_cuda();
        kf_build_opts o;
        memset(&o, 0, sizeof o);
        o.cache_dir = dir;
        o.timeout_s = 120;
        kf_build b;
        memset(&b, 0, sizeof b);
        kf_err_clear(&err);
        rc = t->build(&p, &o, &b, &err);
        if (rc == KF_E_UNAVAILABLE)
            fprintf(stderr, "    (NVRTC compile of the cuda example skipped: %s)\n", err.msg);
        else
            KF_CHECK_MSG(rc == 0, "the cuda worked example does not compile: %s", err.msg);
        kf_build_free(&b);
        test_rmtree(dir);
    }
    kf_program_free(&p);
}

/* ---- answer parsing ---- */

static const char *plan_one =
    "```json\n{\"format\":\"kforge-program/1\",\"target\":\"cuda\",\"agent\":\"me\","
    "\"sources\":[\"k.c\"],"
    "\"kernels\":[{\"name\":\"k\",\"params\":[{\"name\":\"x\",\"kind\":\"ptr\"},"
    "{\"name\":\"y\",\"kind\":\"ptr\"},{\"name\":\"n\",\"kind\":\"i64\"}]}],"
    "\"buffers\":[{\"name\":\"x\",\"role\":\"input\",\"index\":0,\"dtype\":\"f32\",\"shape\":[16]},"
    "{\"name\":\"y\",\"role\":\"output\",\"index\":0,\"dtype\":\"f32\",\"shape\":[16]}],"
    "\"steps\":[{\"op\":\"launch\",\"kernel\":\"k\",\"args\":[\"x\",\"y\",{\"i64\":16}]}]}\n```\n";

static int parse(const char *answer, kf_program *p, kf_err *err) {
    kf_err_clear(err);
    return kf_llm_answer_to_program(answer, "cpu", "llm:openai:m", p, err);
}

static void check_source(const char *answer, const char *want_text) {
    kf_program p;
    kf_err err;
    int rc = parse(answer, &p, &err);
    KF_CHECK_MSG(rc == 0, "%s\nanswer:\n%s", err.msg, answer);
    if (rc) return;
    KF_CHECK_STR(p.target, "cpu");            /* kforge's word, not the model's */
    KF_CHECK_STR(p.agent, "llm:openai:m");
    KF_CHECK_EQ_INT(p.n_sources, 1);
    KF_CHECK_STR(p.sources[0].file, "k.c");
    KF_CHECK_STR(p.sources[0].text, want_text);
    kf_program_free(&p);
}

static void test_parse_headings(void) {
    const char *body = "void k(const float *x, float *y, long n) {}\n";
    const char *forms[] = {
        "Plan:\n%s\nk.c\n```c\n%s```\n",
        "%s\n### k.c\n\n```c\n%s```\n",
        "%s\n**k.c**:\n```c\n%s```\n",
        "%s\n`k.c`\n```\n%s```\n",
        "%s\nFile: k.c\n```c\n%s```\n",
        "%s\n```c k.c\n%s```\n",
        "%s\n```c title=\"k.c\"\n%s```\n",
        "%s\nHere is k.c.\n```c\n%s```\n",
        "%s\n```c\n%s```\n",                     /* one source, one unnamed block */
        "```c\n/* a draft */\n```\n%s\nk.c\n````c\n%s````\n",  /* longer fence; named beats draft */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *a = kf_asprintf(forms[i], plan_one, body);
        check_source(a, body);
        free(a);
    }
}

static void test_parse_two_sources_and_no_list(void) {
    /* No "sources" in the plan: every named block is a source, in order. */
    const char *a =
        "```json\n{\"kernels\":[],\"steps\":[]}\n```\n"
        "util.h\n```c\nstatic inline float sq(float v) { return v * v; }\n```\n"
        "k.c\n```c\nvoid k(void) {}\n```\n";
    kf_program p;
    kf_err err;
    int rc = parse(a, &p, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        KF_CHECK_EQ_INT(p.n_sources, 2);
        KF_CHECK_STR(p.sources[0].file, "util.h");
        KF_CHECK_STR(p.sources[1].file, "k.c");
        KF_CHECK_STR(p.sources[1].text, "void k(void) {}\n");
        kf_program_free(&p);
    }
}

static void test_parse_malformed(void) {
    kf_program p;
    kf_err err;
    KF_CHECK_EQ_INT(parse("", &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "the answer was empty");
    KF_CHECK_EQ_INT(parse("I would write a loop.", &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "the answer has no fenced code blocks: expected a ```json block with "
                          "plan.json and one block per source file");
    KF_CHECK_EQ_INT(parse("k.c\n```c\nvoid k(void) {}\n```\n", &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "no ```json block with plan.json was found among the 1 fenced blocks of "
                          "the answer");
    KF_CHECK_EQ_INT(parse("```json\n{\"steps\": [,]}\n```\n", &p, &err), KF_E_FORMAT);
    KF_CHECK_MSG(strstr(err.msg, "the ```json block is not valid JSON (line 1 of the block") != NULL,
                 "%s", err.msg);
    KF_CHECK_EQ_INT(parse("```json\n[1, 2]\n```\n", &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "the ```json block is not a JSON object");
    char *a = kf_asprintf("%s\nother.c\n```c\nvoid k(void) {}\n```\nmore.c\n```c\n```\n", plan_one);
    KF_CHECK_EQ_INT(parse(a, &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "source 'k.c' listed in plan.json has no fenced block; write the file "
                          "name on the line just before its block");
    free(a);
    KF_CHECK_EQ_INT(parse("```json\n{\"steps\":[],\"sources\":[{\"file\":\"k.c\",\"text\":\"\"}],"
                                 "\"kernals\":[]}\n```\n", &p, &err), KF_E_FORMAT);
    KF_CHECK_MSG(strstr(err.msg, "plan.json could not be read: ") == err.msg &&
                 strstr(err.msg, "kernals") != NULL, "%s", err.msg);
    KF_CHECK_EQ_INT(parse("```json\n{\"steps\":[]}\n```\n", &p, &err), KF_E_FORMAT);
    KF_CHECK_STR(err.msg, "plan.json lists no sources and no fenced block is headed by a file name");
}

/* ---- feedback texts ---- */

#define AGAIN(n) "You have " #n " attempts left.\n" \
    "Answer with the complete corrected program: the ```json block with plan.json and every " \
    "source file in its own fenced block, with the file name on the line just before the block.\n"

static const char *want_malformed =
    "Your answer to attempt 1 of 6 could not be read as a kernel program: no ```json block with "
    "plan.json was found among the 1 fenced blocks of the answer.\n" AGAIN(5);

static const char *want_compile =
    "Attempt 2 of 6 failed to compile (status: compile_error). The compiler said:\n\n```\n"
    "kernels.c:3:5: error: expected ';' before '}' token\n```\n\n" AGAIN(4);

static const char *want_mismatch =
    "Attempt 3 of 6 compiled and ran, but its output is wrong (status: mismatch).\n"
    "Worst element: trial 2, output 0 (buffer 'y'), element 1029 at [2, 5]: got 1.5, expected "
    "2.25.\nThe harness said:\n\n```\nmismatch on trial 2 of 5 (inputs from 'normal'): output 0 "
    "('y') element 1029 [2, 5]: got 1.5, expected 2.25 (allowed error 0.000325); 7 of 65536 "
    "elements differ\n```\n\n"
    "Every element of every output must satisfy |got - expected| <= atol + rtol * |expected| "
    "(1e-4 and 1e-4 for float32) on every trial, with inputs drawn from several distributions, "
    "negative values included. Outputs start filled with NaN, so an element the program never "
    "writes shows up as got nan.\n" AGAIN(3);

static const char *want_crash =
    "Attempt 4 of 6 crashed (status: crashed): the worker was killed by SIGSEGV (invalid memory "
    "access).\nThe harness said:\n\n```\ncrashed: worker killed by SIGSEGV (Segmentation fault) "
    "during run (trial 1 of 5)\n```\n\n"
    "A crash usually means a read or write outside a buffer (check every index against the "
    "buffer's shape and every loop bound), a misaligned vector access, or a write to an input or "
    "param.\n" AGAIN(2);

static const char *want_verified_head =
    "Attempt 5 of 6 is correct: it matched PyTorch on every trial (status: verified).\n"
    "Its time: 0.5000 ms (median; min 0.4500 ms, max 0.7000 ms).\n"
    "PyTorch eager: 1.250 ms, so the speedup over eager is 2.50x.\n";

static const char *want_verified_tail =
    "Now make it faster, keeping it exactly as correct. The fastest verified attempt is kept, so "
    "a slower or wrong answer costs nothing but the attempt.\nThis is your last attempt.\n"
    "Answer with the complete faster program, in the same form: the ```json block with plan.json "
    "and every source file in its own fenced block, with the file name on the line just before "
    "the block.\n";

static const char *want_hint =
    "Your last kernel program moved 10 GB/s (50% of the 20 GB/s this device measured) and "
    "computed 2 GFLOP/s (2% of the 100 GFLOP/s measured). It is far from both limits: look for "
    "poor parallelism, non-contiguous access, missed vectorisation or too little work per thread.";

static void set_result(kf_attempt *a, int number, const kf_program *p, kf_status st,
                       const char *msg) {
    memset(a, 0, sizeof *a);
    a->number = number;
    a->program = p;
    a->result.status = st;
    a->result.message = msg ? kf_strdup(msg) : NULL;
    a->result.trial = -1;
    a->result.output = -1;
    a->result.index = -1;
    a->result.compile_ms = -1;
}

static void fill_attempts(kf_attempt *at, const kf_program *progs[6]) {
    set_result(&at[0], 1, progs[0], KF_ST_INVALID, "the program has 0 input buffers but the graph has 1 inputs");
    set_result(&at[1], 2, progs[1], KF_ST_COMPILE_ERROR,
               "kernels.c:3:5: error: expected ';' before '}' token\n");
    set_result(&at[2], 3, progs[2], KF_ST_MISMATCH,
               "mismatch on trial 2 of 5 (inputs from 'normal'): output 0 ('y') element 1029 "
               "[2, 5]: got 1.5, expected 2.25 (allowed error 0.000325); 7 of 65536 elements "
               "differ");
    at[2].result.trial = 1;
    at[2].result.output = 0;
    at[2].result.index = 1029;
    at[2].result.got = 1.5;
    at[2].result.expected = 2.25;
    set_result(&at[3], 4, progs[3], KF_ST_CRASHED,
               "crashed: worker killed by SIGSEGV (Segmentation fault) during run (trial 1 of 5)");
    at[3].result.signal = 11;
    at[3].result.trial = 0;
    set_result(&at[4], 5, progs[4], KF_ST_VERIFIED, "verified on 5 trials");
    at[4].result.ms = 0.5;
    at[4].result.min_ms = 0.45;
    at[4].result.max_ms = 0.7;
    at[4].result.eager_ms = 1.25;
    set_result(&at[5], 6, progs[5], KF_ST_VERIFIED, "verified on 5 trials");
    at[5].result.ms = 0.4;
}

static void test_feedback_texts(void) {
    char *answer = read_repo_file("prompts/examples/cpu_answer.md");
    kf_program p;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK(answer && kf_llm_answer_to_program(answer, "cpu", "t", &p, &err) == 0);
    free(answer);
    const kf_program *progs[6] = {&p, &p, &p, &p, &p, &p};
    kf_attempt at[6];
    fill_attempts(at, progs);
    char *out = NULL;
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &at[0], "no ```json block with plan.json was "
                                    "found among the 1 fenced blocks of the answer", 6, NULL, 12000,
                                    &out, &err), 0);
    CHECK_TEXT(out, want_malformed);
    free(out);
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &at[1], NULL, 6, NULL, 12000, &out, &err), 0);
    CHECK_TEXT(out, want_compile);
    free(out);
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &at[2], NULL, 6, NULL, 12000, &out, &err), 0);
    CHECK_TEXT(out, want_mismatch);
    free(out);
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &at[3], NULL, 6, NULL, 12000, &out, &err), 0);
    CHECK_TEXT(out, want_crash);
    free(out);
    char *hint = kf_llm_profile_hint(10, 2, 20, 100);
    CHECK_TEXT(hint, want_hint);
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &at[4], NULL, 6, hint, 12000, &out, &err), 0);
    char *want = kf_asprintf("%sProfile: %s\n%s", want_verified_head, want_hint, want_verified_tail);
    CHECK_TEXT(out, want);
    free(want);
    free(out);
    free(hint);
    /* Every status has a template, and a long compiler log is cut. */
    kf_status all[] = {KF_ST_TIMEOUT, KF_ST_OOM, KF_ST_UNSUPPORTED, KF_ST_INVALID, KF_ST_ERROR};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        kf_attempt a;
        set_result(&a, 2, &p, all[i], "details");
        int rc = kf_llm_feedback(prompts_dir, &a, NULL, 5, NULL, 12000, &out, &err);
        KF_CHECK_MSG(rc == 0, "%s: %s", kf_status_name(all[i]), err.msg);
        KF_CHECK(out && strstr(out, kf_status_name(all[i])) && strstr(out, "details") &&
                 strstr(out, "You have 3 attempts left."));
        free(out);
        kf_result_free(&a.result);
    }
    kf_attempt big;
    kf_str log;
    kf_str_init(&log);
    for (int i = 0; i < 2000; i++) kf_str_appendf(&log, "kernels.c:%d:1: error: line %d\n", i + 1, i);
    set_result(&big, 1, &p, KF_ST_COMPILE_ERROR, log.data);
    KF_CHECK_EQ_INT(kf_llm_feedback(prompts_dir, &big, NULL, 5, NULL, 1000, &out, &err), 0);
    KF_CHECK(out && strlen(out) < 2000 && strstr(out, "more characters cut]") &&
             strstr(out, "kernels.c:1:1: error: line 0\n"));
    free(out);
    kf_result_free(&big.result);
    kf_str_free(&log);
    for (int i = 0; i < 6; i++) kf_result_free(&at[i].result);
    kf_program_free(&p);
}

/* ---- the whole loop against the mock server ---- */

static char *profile_cb(void *user, const kf_problem *pb, const kf_attempt *last) {
    int *calls = user;
    (*calls)++;
    return kf_llm_profile_hint(10, 2, 20, 100);
}

static void test_agent_conversation(void) {
    char fx[PATH_MAX];
    test_fixture("agent_loop.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, AGENT_KEY)) KF_SKIP("tool_mock_llm did not start");
    int profile_calls = 0;
    kf_llm_agent_opts o;
    kf_llm_agent_opts_default(&o);
    o.provider.api_key = AGENT_KEY;
    o.provider.base_url = m.base_openai;
    o.provider.price_in_per_m = 1.0;
    o.provider.price_out_per_m = 4.0;
    o.chat.timeout_s = 10;
    o.chat.backoff_s = 0.05;
    o.max_attempts = 6;
    o.extra_context = "The fastest verified CUDA kernel for this problem:\n__global__ void k() {}";
    o.profile_fn = profile_cb;
    o.user = &profile_calls;
    o.prompts_dir = prompts_dir;
    kf_agent *a = NULL;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_agent_llm_new("llm:openai:gpt-test", &o, &a, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) {
        test_mock_stop(&m);
        return;
    }
    KF_CHECK_STR(a->name, "llm:openai:gpt-test");
    KF_CHECK(kf_agent_is_llm(a));
    kf_graph g;
    memset(&g, 0, sizeof g);
    KF_CHECK(kf_graph_from_json(example_graph_json, &g, &err) == 0);
    kf_problem pb = {"problems/level9/linear_softmax.py", example_source, &g, NULL, "cpu"};
    kf_program *progs[6] = {0};
    kf_attempt at[6];
    const char *wants[5] = {want_malformed, want_compile, want_mismatch, want_crash, NULL};
    char *want_verified = kf_asprintf("%sProfile: %s\n%s", want_verified_head, want_hint,
                                      want_verified_tail);
    wants[4] = want_verified;
    for (int turn = 0; turn < 6; turn++) {
        kf_program *cands[4];
        int n = 4;
        if (turn > 0) {
            const kf_program *cp[6];
            for (int i = 0; i < 6; i++) cp[i] = progs[i];
            fill_attempts(at, cp);
        }
        kf_history h = {at, turn};
        kf_err_clear(&err);
        rc = a->propose(a, &pb, &h, cands, &n, &err);
        if (turn > 0)
            for (int i = 0; i < 6; i++) kf_result_free(&at[i].result);
        KF_CHECK_MSG(rc == 0, "turn %d: %s", turn + 1, err.msg);
        KF_CHECK_EQ_INT(n, 1);
        if (rc || n != 1) break;
        progs[turn] = cands[0];
        KF_CHECK_STR(cands[0]->agent, "llm:openai:gpt-test");
        KF_CHECK_STR(cands[0]->target, "cpu");
        KF_CHECK_EQ_INT(test_mock_n_messages(&m, turn + 1), 2 * (turn + 1));
        if (turn == 0) {
            KF_CHECK_EQ_INT(cands[0]->n_sources, 0);  /* malformed: the empty program */
            KF_CHECK(kf_program_validate(cands[0], &g, &err) != 0);
        } else {
            KF_CHECK_EQ_INT(cands[0]->n_sources, 1);
            char role[32];
            char *fb = test_mock_message(&m, turn + 1, -1, role, sizeof role);
            KF_CHECK_STR(role, "user");
            CHECK_TEXT(fb, wants[turn - 1]);
            free(fb);
        }
    }
    /* The first request: system prompt, then the problem with its source, graph and context. */
    char role[32];
    char *sys = test_mock_message(&m, 1, 0, role, sizeof role);
    KF_CHECK_STR(role, "system");
    KF_CHECK(sys && strstr(sys, "You are an expert performance engineer who writes cpu kernels"));
    char *first = test_mock_message(&m, 1, 1, role, sizeof role);
    KF_CHECK_STR(role, "user");
    KF_CHECK(first && strstr(first, "# Your problem: linear_softmax.py\n"));
    KF_CHECK(first && strstr(first, "```python\nimport torch\nimport torch.nn as nn\n"));
    KF_CHECK(first && strstr(first, "  p1 (fc.bias): f32[512]\n"));
    KF_CHECK(first && strstr(first, "## Extra context\n\nThe fastest verified CUDA kernel for this "
                                     "problem:\n__global__ void k() {}\n"));
    KF_CHECK(first && strstr(first, "## The kernel-program format\n\n# The kforge kernel-program "
                                     "format"));
    KF_CHECK(first && !strstr(first, "{{"));  /* every placeholder filled */
    free(sys);
    free(first);
    /* The model's earlier answers are in the conversation as assistant turns. */
    char *asst = test_mock_message(&m, 6, 2, role, sizeof role);
    KF_CHECK_STR(role, "assistant");
    KF_CHECK(asst && strstr(asst, "Here is my plan"));
    free(asst);
    KF_CHECK_EQ_INT(profile_calls, 1);
    /* The budget is spent: no more requests. */
    {
        const kf_program *cp[6];
        for (int i = 0; i < 6; i++) cp[i] = progs[i];
        fill_attempts(at, cp);
        kf_history h = {at, 6};
        kf_program *cands[4];
        int n = 4;
        KF_CHECK_EQ_INT(a->propose(a, &pb, &h, cands, &n, &err), 0);
        KF_CHECK_EQ_INT(n, 0);
        for (int i = 0; i < 6; i++) kf_result_free(&at[i].result);
    }
    KF_CHECK_EQ_INT(test_mock_count(&m), 6);
    /* Records and usage. */
    int nr = 0;
    const kf_llm_attempt_rec *recs = kf_agent_llm_records(a, &nr);
    KF_CHECK_EQ_INT(nr, 6);
    if (nr == 6) {
        KF_CHECK_EQ_INT(recs[0].malformed, 1);
        KF_CHECK_STR(recs[0].parse_error, "no ```json block with plan.json was found among the 1 "
                                          "fenced blocks of the answer");
        KF_CHECK_EQ_INT(recs[1].malformed, 0);
        KF_CHECK(recs[1].parse_error == NULL);
        for (int i = 0; i < 6; i++) KF_CHECK_EQ_INT(recs[i].number, i + 1);
        KF_CHECK_EQ_INT(recs[0].usage.prompt_tokens, 3000);
        KF_CHECK_EQ_INT(recs[5].usage.completion_tokens, 400);
        KF_CHECK_STR(recs[2].problem, "problems/level9/linear_softmax.py");
    }
    kf_llm_usage tot;
    kf_agent_llm_usage(a, &tot);
    KF_CHECK_EQ_INT(tot.prompt_tokens, 24500);
    KF_CHECK_EQ_INT(tot.completion_tokens, 2120);
    KF_CHECK_EQ_INT(tot.calls, 6);
    KF_CHECK_NEAR(tot.cost_usd, 24500 * 1.0 / 1e6 + 2120 * 4.0 / 1e6, 1e-12);
    /* The key is in no request body. */
    for (int i = 1; i <= 6; i++) {
        char *body = test_mock_request(&m, i);
        KF_CHECK(body && !strstr(body, AGENT_KEY));
        free(body);
    }
    /* A new problem starts a new conversation. */
    kf_problem pb2 = pb;
    pb2.path = "problems/other.py";
    kf_history h0 = {NULL, 0};
    kf_program *cands[1];
    int n = 1;
    rc = a->propose(a, &pb2, &h0, cands, &n, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);  /* the script is used up: HTTP 400 */
    KF_CHECK_MSG(strstr(err.msg, "script exhausted") != NULL, "%s", err.msg);
    KF_CHECK_EQ_INT(test_mock_n_messages(&m, 7), 2);
    for (int i = 0; i < 6; i++)
        if (progs[i]) {
            kf_program_free(progs[i]);
            free(progs[i]);
        }
    free(want_verified);
    a->destroy(a);
    kf_graph_free(&g);
    test_mock_stop(&m);
}

/* A failed request leaves no trace in the conversation; a verified attempt ends the agent when
 * asking for a faster one is off. */
static void test_agent_failure_and_stop(void) {
    char fx[PATH_MAX];
    test_fixture("bad_request.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_agent_opts o;
    kf_llm_agent_opts_default(&o);
    o.provider.api_key = AGENT_KEY;
    o.provider.base_url = m.base_anthropic;
    o.chat.backoff_s = 0.05;
    o.ask_faster = 0;
    o.prompts_dir = prompts_dir;
    kf_agent *a = NULL;
    kf_err err;
    kf_err_clear(&err);
    int rc = kf_agent_llm_new("llm:anthropic:claude-test", &o, &a, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) {
        test_mock_stop(&m);
        return;
    }
    kf_problem pb = {"p.py", "x = 1\n", NULL, NULL, "cpu"};
    kf_history h0 = {NULL, 0};
    kf_program *cands[1];
    int n = 1;
    rc = a->propose(a, &pb, &h0, cands, &n, &err);
    KF_CHECK_EQ_INT(rc, KF_E_IO);
    KF_CHECK_EQ_INT(n, 0);
    KF_CHECK_MSG(strstr(err.msg, "HTTP 400") && !strstr(err.msg, AGENT_KEY), "%s", err.msg);
    n = 1;
    rc = a->propose(a, &pb, &h0, cands, &n, &err);
    KF_CHECK_MSG(rc == 0, "%s", err.msg);
    KF_CHECK_EQ_INT(n, 1);
    char *body = test_mock_request(&m, 2);
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    KF_CHECK(root && cJSON_GetArraySize(cJSON_GetObjectItem(root, "messages")) == 1);
    KF_CHECK(root && cJSON_IsString(cJSON_GetObjectItem(root, "system")));
    cJSON_Delete(root);
    free(body);
    if (n == 1) {
        /* "never reached" has no plan: malformed, and the record says so. */
        KF_CHECK_EQ_INT(cands[0]->n_sources, 0);
        kf_attempt at;
        set_result(&at, 1, cands[0], KF_ST_VERIFIED, "verified");
        kf_history h1 = {&at, 1};
        kf_program *more[1];
        int n2 = 1;
        KF_CHECK_EQ_INT(a->propose(a, &pb, &h1, more, &n2, &err), 0);
        KF_CHECK_EQ_INT(n2, 0);
        kf_result_free(&at.result);
        kf_program_free(cands[0]);
        free(cands[0]);
    }
    KF_CHECK_EQ_INT(test_mock_count(&m), 2);
    a->destroy(a);
    test_mock_stop(&m);
}

/* A verified result without a baseline is compared with the latest eager time in the history
 * (callers may time PyTorch once per problem). */
static void test_agent_speedup_from_history(void) {
    char fx[PATH_MAX];
    test_fixture("three_answers.json", fx, sizeof fx);
    test_mock m;
    if (test_mock_start(&m, fx, NULL)) KF_SKIP("tool_mock_llm did not start");
    kf_llm_agent_opts o;
    kf_llm_agent_opts_default(&o);
    o.provider.api_key = AGENT_KEY;
    o.provider.base_url = m.base_openai;
    o.prompts_dir = prompts_dir;
    kf_agent *a = NULL;
    kf_err err;
    kf_err_clear(&err);
    if (kf_agent_llm_new("llm:openai:m", &o, &a, &err)) {
        KF_CHECK_MSG(0, "%s", err.msg);
        test_mock_stop(&m);
        return;
    }
    kf_problem pb = {"p.py", "x = 1\n", NULL, NULL, "cpu"};
    kf_program *progs[3] = {0};
    kf_attempt at[2];
    for (int turn = 0; turn < 3; turn++) {
        kf_history h = {at, turn};
        int n = 1;
        KF_CHECK_EQ_INT(a->propose(a, &pb, &h, &progs[turn], &n, &err), 0);
        KF_CHECK_EQ_INT(n, 1);
        if (n != 1) break;
        if (turn < 2) {
            set_result(&at[turn], turn + 1, progs[turn], KF_ST_VERIFIED, "verified on 5 trials");
            at[turn].result.ms = turn == 0 ? 1.0 : 0.5;
            at[turn].result.eager_ms = turn == 0 ? 2.0 : 0;
        }
    }
    char *fb = test_mock_message(&m, 3, -1, NULL, 0);
    KF_CHECK_MSG(fb && strstr(fb, "Its time: 0.5000 ms (median).\nPyTorch eager: 2.000 ms, so the "
                                  "speedup over eager is 4.00x.\n"), "%s", fb ? fb : "(none)");
    free(fb);
    for (int i = 0; i < 2; i++) kf_result_free(&at[i].result);
    for (int i = 0; i < 3; i++)
        if (progs[i]) {
            kf_program_free(progs[i]);
            free(progs[i]);
        }
    a->destroy(a);
    test_mock_stop(&m);
}

static void test_agent_setup_errors(void) {
    kf_llm_agent_opts o;
    kf_llm_agent_opts_default(&o);
    o.prompts_dir = prompts_dir;
    unsetenv("ANTHROPIC_API_KEY");
    kf_agent *a = NULL;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_agent_llm_new("llm:anthropic:claude-z", &o, &a, &err), KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "ANTHROPIC_API_KEY is not set (needed by agent llm:anthropic:claude-z)");
    KF_CHECK(a == NULL);
    o.provider.api_key = AGENT_KEY;
    o.prompts_dir = "/nonexistent/prompts";
    KF_CHECK_EQ_INT(kf_agent_llm_new("llm:anthropic:claude-z", &o, &a, &err), KF_E_IO);
    KF_CHECK_MSG(strstr(err.msg, "system.md") && !strstr(err.msg, AGENT_KEY), "%s", err.msg);
    /* A target without a prompt file is unsupported, named. */
    o.prompts_dir = prompts_dir;
    KF_CHECK_EQ_INT(kf_agent_llm_new("llm:anthropic:claude-z", &o, &a, &err), 0);
    if (a) {
        kf_problem pb = {"p.py", "x = 1\n", NULL, NULL, "vulkan"};
        kf_history h0 = {NULL, 0};
        kf_program *cands[1];
        int n = 1;
        KF_CHECK_EQ_INT(a->propose(a, &pb, &h0, cands, &n, &err), KF_E_UNSUPPORTED);
        KF_CHECK_MSG(strstr(err.msg, "no LLM prompt for target vulkan") != NULL, "%s", err.msg);
        a->destroy(a);
    }
}

static void test_agent_from_spec(void) {
    kf_agent *a = NULL;
    kf_err err;
    kf_err_clear(&err);
    KF_CHECK_EQ_INT(kf_agent_from_spec("naive", NULL, &a, &err), 0);
    if (a) {
        KF_CHECK_STR(a->name, "naive");
        KF_CHECK(!kf_agent_is_llm(a));
        a->destroy(a);
        a = NULL;
    }
    setenv("OPENAI_API_KEY", AGENT_KEY, 1);
    kf_llm_agent_opts o;
    kf_llm_agent_opts_default(&o);
    o.max_attempts = 3;
    kf_agent_spec_opts so = {&o, NULL};
    KF_CHECK_EQ_INT(kf_agent_from_spec("llm:openai:gpt-4.1?price_in=2&price_out=8", &so, &a, &err), 0);
    if (a) {
        KF_CHECK_STR(a->name, "llm:openai:gpt-4.1");
        KF_CHECK(kf_agent_is_llm(a));
        a->destroy(a);
        a = NULL;
    }
    unsetenv("OPENAI_API_KEY");
    KF_CHECK_EQ_INT(kf_agent_from_spec("llm:openai:gpt-4.1", &so, &a, &err), KF_E_UNAVAILABLE);
    KF_CHECK_STR(err.msg, "OPENAI_API_KEY is not set (needed by agent llm:openai:gpt-4.1)");
    KF_CHECK_EQ_INT(kf_agent_from_spec("gpt-4.1", &so, &a, &err), KF_E_INVALID);
    KF_CHECK_MSG(strstr(err.msg, "unknown agent 'gpt-4.1' (known: naive, search, llm:") != NULL,
                 "%s", err.msg);
    int rc = kf_agent_from_spec("search", NULL, &a, &err);
    KF_CHECK(rc == 0 || rc == KF_E_UNAVAILABLE);
    if (a) a->destroy(a);
}

int main(void) {
    test_repo_path("prompts", prompts_dir, sizeof prompts_dir);
    char *real = realpath(prompts_dir, NULL);
    if (real) {
        snprintf(prompts_dir, sizeof prompts_dir, "%s", real);
        free(real);
    }
    setenv("KFORGE_PROMPTS", prompts_dir, 1);
    kf_err err;
    if (kf_llm_global_init(&err)) return 1;
    KF_RUN(test_template_language);
    KF_RUN(test_prompts_dir_lookup);
    KF_RUN(test_example_answer);
    KF_RUN(test_example_answer_cuda);
    KF_RUN(test_parse_headings);
    KF_RUN(test_parse_two_sources_and_no_list);
    KF_RUN(test_parse_malformed);
    KF_RUN(test_feedback_texts);
    KF_RUN(test_agent_conversation);
    KF_RUN(test_agent_failure_and_stop);
    KF_RUN(test_agent_speedup_from_history);
    KF_RUN(test_agent_setup_errors);
    KF_RUN(test_agent_from_spec);
    kf_llm_global_cleanup();
    return kf_test_report();
}
