/* test_search.c: the search agent's rounds and its schedule cache, with the harness's results
 * played back by hand: round 1 proposes the automatic schedule first; later rounds expand
 * the fastest verified candidates and fall back to the unfused plan when nothing verified;
 * the best schedule is written to the cache and a second agent instance starts from it (a
 * cache hit); the budget stops the search. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kf_test.h"
#include "agents/search.h"

static char cache_file[256];

#define T(name, dt, ...) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":[" #__VA_ARGS__ "]}"

/* conv (two implementations to choose from) + relu, then a tiny linear */
static const char graph_json[] =
    "{\"inputs\":[\"x0\"],\"params\":[\"p0\",\"p1\"],\"outputs\":[\"r\"],\"values\":{"
    T("x0", "f32", 2, 4, 12, 12) "," T("p0", "f32", 8, 4, 3, 3) "," T("p1", "f32", 8) ","
    T("y", "f32", 2, 8, 12, 12) "," T("r", "f32", 2, 8, 12, 12) "},\"nodes\":["
    "{\"op\":\"aten.convolution.default\",\"outputs\":[\"y\"],\"args\":[{\"name\":\"input\",\"tensor\":\"x0\"},"
    "{\"name\":\"weight\",\"tensor\":\"p0\"},{\"name\":\"bias\",\"tensor\":\"p1\"},"
    "{\"name\":\"stride\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"padding\",\"list\":[{\"int\":1},{\"int\":1}]},"
    "{\"name\":\"dilation\",\"list\":[{\"int\":1},{\"int\":1}]},{\"name\":\"transposed\",\"bool\":false},"
    "{\"name\":\"output_padding\",\"list\":[{\"int\":0},{\"int\":0}]},{\"name\":\"groups\",\"int\":1}]},"
    "{\"op\":\"aten.relu.default\",\"outputs\":[\"r\"],\"args\":[{\"name\":\"self\",\"tensor\":\"y\"}]}]}";

typedef struct played {
    kf_attempt at[32];
    kf_program *progs[32];
    int n;
} played;

/* Records the candidates of one round with the given statuses and times. */
static void play(played *h, kf_program **c, int n, int round, kf_status st, const double *ms) {
    for (int i = 0; i < n && h->n < 32; i++) {
        kf_attempt *a = &h->at[h->n];
        memset(a, 0, sizeof *a);
        a->number = round;
        a->program = c[i];
        a->result.status = st;
        a->result.ms = ms ? ms[i] : 0;
        h->progs[h->n++] = c[i];
    }
}

static void unplay(played *h) {
    for (int i = 0; i < h->n; i++) {
        kf_program_free(h->progs[i]);
        free(h->progs[i]);
    }
    h->n = 0;
}

static int same_source(const kf_program *a, const kf_program *b) {
    return a->n_sources == 1 && b->n_sources == 1 && strcmp(a->sources[0].text, b->sources[0].text) == 0 &&
           a->n_steps == b->n_steps;
}

static void test_rounds_and_cache(void) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(graph_json, &g, &err), 0);
    kf_problem pb = {"conv_relu.py", "", &g, NULL, "cpu"};
    kf_search_opts o;
    kf_search_opts_default(&o);
    o.cache_path = cache_file;
    kf_agent *a = NULL;
    KF_CHECK_EQ_INT(kf_agent_search_new(&o, &a, &err), 0);
    if (!a) return;
    KF_CHECK_STR(a->name, "search");
    played h = {0};
    kf_history hist = {h.at, 0};
    kf_program *c[16];
    int n = 16;
    /* round 1: the automatic schedule and one alternative implementation of the conv */
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    KF_CHECK_EQ_INT(n, 2);
    for (int i = 0; i < n; i++) KF_CHECK_EQ_INT(kf_program_validate(c[i], &g, &err), 0);
    KF_CHECK(!same_source(c[0], c[1]));
    /* the second is faster: it must end up in the cache */
    double ms1[2] = {2.0, 1.0};
    play(&h, c, n, 1, KF_ST_VERIFIED, ms1);
    kf_program *winner = c[1];
    hist.n = h.n;
    n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    for (int i = 0; i < n; i++) {
        KF_CHECK_EQ_INT(kf_program_validate(c[i], &g, &err), 0);
        KF_CHECK(!same_source(c[i], h.progs[0]) && !same_source(c[i], h.progs[1]));
    }
    double ms2[16];
    for (int i = 0; i < 16; i++) ms2[i] = 5.0;
    play(&h, c, n, 2, KF_ST_VERIFIED, ms2);
    hist.n = h.n;
    /* rounds go on until nothing new is left or max_candidates were proposed */
    int total = h.n;
    for (int r = 3; r < 8; r++) {
        n = 16;
        KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
        play(&h, c, n, r, KF_ST_VERIFIED, ms2);
        hist.n = h.n;
        total += n;
        if (n == 0) break;
    }
    KF_CHECK(total <= o.max_candidates);
    n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    KF_CHECK_EQ_INT(n, 0);
    /* the cache has the winner's schedule */
    char sig[17];
    kf_search_signature(&g, "cpu", sig);
    char *key = NULL;
    double ms = 0;
    KF_CHECK_EQ_INT(kf_search_cache_get(cache_file, sig, &key, &ms), 1);
    KF_CHECK_NEAR(ms, 1.0, 1e-9);
    /* a second agent instance: cache hit, the winner comes first, then the automatic schedule */
    kf_agent *b = NULL;
    KF_CHECK_EQ_INT(kf_agent_search_new(&o, &b, &err), 0);
    kf_history empty = {NULL, 0};
    n = 16;
    KF_CHECK_EQ_INT(b->propose(b, &pb, &empty, c, &n, &err), 0);
    KF_CHECK(n >= 1);
    if (n >= 1) KF_CHECK(same_source(c[0], winner));
    KF_CHECK_EQ_INT(n, 2);
    if (n == 2) KF_CHECK(same_source(c[1], h.progs[0]));
    for (int i = 0; i < n; i++) {
        kf_program_free(c[i]);
        free(c[i]);
    }
    free(key);
    b->destroy(b);
    a->destroy(a);
    unplay(&h);
    kf_graph_free(&g);
}

static void test_fallback_and_budget(void) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(graph_json, &g, &err), 0);
    kf_problem pb = {"conv_relu.py", "", &g, NULL, "cpu"};
    kf_search_opts o;
    kf_search_opts_default(&o);
    o.cache_path = "";   /* no cache */
    kf_agent *a = NULL;
    KF_CHECK_EQ_INT(kf_agent_search_new(&o, &a, &err), 0);
    played h = {0};
    kf_history hist = {h.at, 0};
    kf_program *c[16];
    int n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    KF_CHECK(n >= 1);
    int first = n;
    play(&h, c, n, 1, KF_ST_MISMATCH, NULL);
    hist.n = h.n;
    /* nothing verified: the one-op-per-kernel plan (conv and relu in two kernels) */
    n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    KF_CHECK(n >= 1);
    int launches = 0;
    for (int i = 0; n >= 1 && i < c[0]->n_steps; i++) launches += c[0]->steps[i].kind == KF_STEP_LAUNCH;
    KF_CHECK(launches >= 2);
    play(&h, c, n, 2, KF_ST_MISMATCH, NULL);
    hist.n = h.n;
    KF_CHECK(h.n > first);
    a->destroy(a);
    unplay(&h);

    /* a spent budget proposes nothing after the first round */
    o.budget_s = 1e-9;
    KF_CHECK_EQ_INT(kf_agent_search_new(&o, &a, &err), 0);
    hist.n = 0;
    n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    play(&h, c, n, 1, KF_ST_VERIFIED, NULL);
    usleep(1000);
    hist.n = h.n;
    n = 16;
    KF_CHECK_EQ_INT(a->propose(a, &pb, &hist, c, &n, &err), 0);
    KF_CHECK_EQ_INT(n, 0);
    a->destroy(a);
    unplay(&h);
    kf_graph_free(&g);
}

static void test_signature_and_cache_file(void) {
    kf_graph g1, g2;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(graph_json, &g1, &err), 0);
    /* the same graph with another image size */
    char *other = kf_strdup(graph_json);
    char *p = other ? strstr(other, "2, 4, 12, 12") : NULL;
    KF_CHECK(p != NULL);
    if (p) p[0] = '3';
    char s1[17], s2[17], s3[17];
    kf_search_signature(&g1, "cpu", s1);
    kf_search_signature(&g1, "cpu", s3);
    KF_CHECK_STR(s1, s3);
    kf_search_signature(&g1, "cuda", s3);
    KF_CHECK(strcmp(s1, s3) != 0);
    int rc2 = kf_graph_from_json(other, &g2, &err);
    KF_CHECK_EQ_INT(rc2, 0);
    if (rc2 == 0) {
        kf_search_signature(&g2, "cpu", s2);
        KF_CHECK(strcmp(s1, s2) != 0);
        kf_graph_free(&g2);
    }
    free(other);
    /* put/get: faster replaces, slower does not, other signatures are kept */
    char path[300];
    snprintf(path, sizeof path, "%s.2", cache_file);
    unlink(path);
    char *key = NULL;
    double ms = 0;
    KF_CHECK_EQ_INT(kf_search_cache_get(path, "abc", &key, &ms), 0);
    KF_CHECK_EQ_INT(kf_search_cache_put(path, "abc", "P0;K12.0.0.0.0", 3.0, &err), 0);
    KF_CHECK_EQ_INT(kf_search_cache_put(path, "def", "P1;K12.0.0.0.0", 1.0, &err), 0);
    KF_CHECK_EQ_INT(kf_search_cache_put(path, "abc", "P0;K02.0.0.0.0", 5.0, &err), 0);
    KF_CHECK_EQ_INT(kf_search_cache_get(path, "abc", &key, &ms), 1);
    KF_CHECK_STR(key, "P0;K12.0.0.0.0");
    free(key);
    KF_CHECK_EQ_INT(kf_search_cache_put(path, "abc", "P0;K11.0.0.0.0", 2.0, &err), 0);
    KF_CHECK_EQ_INT(kf_search_cache_get(path, "abc", &key, &ms), 1);
    KF_CHECK_STR(key, "P0;K11.0.0.0.0");
    KF_CHECK_NEAR(ms, 2.0, 1e-9);
    free(key);
    KF_CHECK_EQ_INT(kf_search_cache_get(path, "def", &key, &ms), 1);
    KF_CHECK_STR(key, "P1;K12.0.0.0.0");
    free(key);
    KF_CHECK(kf_search_cache_put(path, "abc", "bad\tkey", 1.0, &err) != 0);
    unlink(path);
    kf_graph_free(&g1);
}

static void test_space_keys(void) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(graph_json, &g, &err), 0);
    kf_search_space sp;
    KF_CHECK_EQ_INT(kf_search_space_init(&sp, &g, &err), 0);
    KF_CHECK_EQ_INT(sp.plans[0].n_groups, 1);   /* conv + relu fused */
    KF_CHECK_EQ_INT(sp.plans[1].n_groups, 2);   /* unfused */
    kf_gsched *d = kf_search_default(&sp, 0);
    char *key = kf_search_key(&sp, 0, d);
    int plan = -1;
    kf_gsched *s = NULL;
    KF_CHECK_EQ_INT(kf_search_key_parse(&sp, key, &plan, &s), 0);
    KF_CHECK_EQ_INT(plan, 0);
    if (s) KF_CHECK_EQ_INT(s[0].impl, d[0].impl);
    char *again = s ? kf_search_key(&sp, plan, s) : NULL;
    KF_CHECK_STR(again, key);
    free(again);
    free(s);
    /* keys that do not fit: wrong plan, group count, implementation */
    KF_CHECK(kf_search_key_parse(&sp, "P2;K12.0.0.0.0", &plan, &s) != 0);
    KF_CHECK(kf_search_key_parse(&sp, "P0;K12.0.0.0.0;K12.0.0.0.0", &plan, &s) != 0);
    KF_CHECK(kf_search_key_parse(&sp, "P0;L12.0.0.0.0", &plan, &s) != 0);   /* no gemm here */
    KF_CHECK(kf_search_key_parse(&sp, "garbage", &plan, &s) != 0);
    char **nb = NULL;
    int n = 0;
    KF_CHECK_EQ_INT(kf_search_neighbours(&sp, key, 1, &nb, &n), 0);
    KF_CHECK(n >= 1);
    for (int i = 0; i < n; i++) {
        KF_CHECK(strcmp(nb[i], key) != 0);
        kf_program p;
        KF_CHECK_EQ_INT(kf_search_build(&sp, nb[i], &p, &err), 0);
        kf_program_free(&p);
        free(nb[i]);
    }
    free(nb);
    free(key);
    free(d);
    kf_search_space_free(&sp);
    kf_graph_free(&g);
}

/* On cuda the default and its neighbours are GPU choices: the convolution through im2col +
 * gemm (the library), GPU knobs in the key (threads per block, rows), every point lowers
 * to CUDA with launch geometry, and no point carries CPU transforms. */
static void test_space_cuda(void) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(graph_json, &g, &err), 0);
    kf_search_space sp;
    KF_CHECK_EQ_INT(kf_search_space_init(&sp, &g, &err), 0);
    snprintf(sp.target, sizeof sp.target, "cuda");
    KF_CHECK(kf_search_gpu(&sp));
    kf_gsched *d = kf_search_default(&sp, 0);
    KF_CHECK(d != NULL);
    if (!d) return;
    KF_CHECK_EQ_INT(d[0].impl, KF_IMPL_IM2COL);
    KF_CHECK_EQ_INT(d[0].gpu, 1);
    KF_CHECK_EQ_INT(d[0].vec, 1); /* 16-byte accesses where the renderer can */
    char *key = kf_search_key(&sp, 0, d);
    KF_CHECK_STR(key, "P0;I11.0.0.0.0");
    int plan = -1;
    kf_gsched *s = NULL;
    KF_CHECK_EQ_INT(kf_search_key_parse(&sp, key, &plan, &s), 0);
    if (s) KF_CHECK_EQ_INT(s[0].gpu, 1);
    free(s);
    char **nb = NULL;
    int n = 0, blocks = 0, novec = 0;
    KF_CHECK_EQ_INT(kf_search_neighbours(&sp, key, 1, &nb, &n), 0);
    for (int i = 0; i < n; i++) {
        blocks += strstr(nb[i], ".512") != NULL || strstr(nb[i], ".1024") != NULL || strstr(nb[i], ".128") != NULL;
        novec += strncmp(nb[i], "P0;I10.", 7) == 0; /* the minor neighbour without 16-byte accesses */
        kf_program p;
        KF_CHECK_EQ_INT(kf_search_build(&sp, nb[i], &p, &err), 0);
        KF_CHECK_STR(p.target, "cuda");
        KF_CHECK(p.n_sources == 1 && strstr(p.sources[0].file, ".cu") != NULL);
        /* no OpenMP or CPU vector-math constants in GPU programs */
        KF_CHECK(strstr(p.sources[0].text, "omp") == NULL && strstr(p.sources[0].text, "kconsts") == NULL);
        int block512 = 0;
        for (int j = 0; j < p.n_steps; j++)
            if (p.steps[j].kind == KF_STEP_LAUNCH && p.steps[j].block[0] == 512) block512 = 1;
        if (strstr(nb[i], ".512")) KF_CHECK_MSG(block512, "%s", nb[i]);
        kf_program_free(&p);
        free(nb[i]);
    }
    KF_CHECK(blocks >= 3);
    KF_CHECK_EQ_INT(novec, 1);
    free(nb);
    free(key);
    free(d);
    kf_search_space_free(&sp);
    kf_graph_free(&g);
}

/* softmax(bmm(q, k^T) * 0.25) on cuda: the product fused with its softmax (fuse_gemmrow.c) is the
 * first neighbour, its program is one kernel (no gemm step, no buffer for the product); not
 * offered when the product is also an output or the chain has a tensor operand. */
#define GR_JSON(outs, other)                                                                                   \
    "{\"inputs\":[\"q\",\"k\"],\"params\":[\"c\"],\"outputs\":[" outs "],\"values\":{"                        \
    T("q", "f32", 2, 8, 16) "," T("k", "f32", 2, 12, 16) "," T("c", "f32", 1) "," T("kt", "f32", 2, 16, 12) "," \
    T("s", "f32", 2, 8, 12) "," T("m", "f32", 2, 8, 12) "," T("o", "f32", 2, 8, 12) "},\"nodes\":["             \
    "{\"op\":\"aten.transpose.int\",\"outputs\":[\"kt\"],\"args\":[{\"name\":\"self\",\"tensor\":\"k\"},"       \
    "{\"name\":\"dim0\",\"int\":1},{\"name\":\"dim1\",\"int\":2}]},"                                             \
    "{\"op\":\"aten.bmm.default\",\"outputs\":[\"s\"],\"args\":[{\"name\":\"self\",\"tensor\":\"q\"},"          \
    "{\"name\":\"mat2\",\"tensor\":\"kt\"}]},"                                                                   \
    "{\"op\":\"aten.mul.Tensor\",\"outputs\":[\"m\"],\"args\":[{\"name\":\"self\",\"tensor\":\"s\"},"           \
    "{\"name\":\"other\"," other "}]},"                                                                          \
    "{\"op\":\"aten._softmax.default\",\"outputs\":[\"o\"],\"args\":[{\"name\":\"self\",\"tensor\":\"m\"},"     \
    "{\"name\":\"dim\",\"int\":-1},{\"name\":\"half_to_float\",\"bool\":false}]}]}"

/* 1 if some neighbour of the default point of json on cuda fuses the product (a T key); the
 * first neighbour's program is checked when it is one. */
static int gemmrow_offered(const char *json) {
    kf_graph g;
    kf_err err;
    KF_CHECK_EQ_INT(kf_graph_from_json(json, &g, &err), 0);
    kf_search_space sp;
    KF_CHECK_EQ_INT(kf_search_space_init(&sp, &g, &err), 0);
    kf_search_space_set_target(&sp, "cuda", 0);
    kf_gsched *d = kf_search_default(&sp, 0);
    char *key = d ? kf_search_key(&sp, 0, d) : NULL;
    char **nb = NULL;
    int n = 0, offered = 0;
    KF_CHECK(key != NULL);
    if (key) KF_CHECK_EQ_INT(kf_search_neighbours(&sp, key, 1, &nb, &n), 0);
    for (int i = 0; i < n; i++) offered += strncmp(nb[i], "P0;T", 4) == 0;
    if (offered) {
        KF_CHECK_MSG(strncmp(nb[0], "P0;T", 4) == 0, "first neighbour %s", nb[0]);
        kf_program p;
        KF_CHECK_EQ_INT(kf_search_build(&sp, nb[0], &p, &err), 0);
        int launches = 0, gemms = 0, scratch = 0;
        for (int j = 0; j < p.n_steps; j++) {
            launches += p.steps[j].kind == KF_STEP_LAUNCH;
            gemms += p.steps[j].kind == KF_STEP_GEMM;
        }
        for (int j = 0; j < p.n_bufs; j++) scratch += p.bufs[j].role == KF_BUF_SCRATCH;
        KF_CHECK_EQ_INT(launches, 1);
        KF_CHECK_EQ_INT(gemms, 0);
        KF_CHECK_EQ_INT(scratch, 0);
        KF_CHECK(strstr(p.sources[0].text, "kg0(") != NULL);
        kf_program_free(&p);
    }
    for (int i = 0; i < n; i++) free(nb[i]);
    free(nb);
    free(key);
    free(d);
    kf_search_space_free(&sp);
    kf_graph_free(&g);
    return offered > 0;
}

static void test_space_gemm_softmax(void) {
    KF_CHECK(gemmrow_offered(GR_JSON("\"o\"", "\"float\":0.25")));
    KF_CHECK(!gemmrow_offered(GR_JSON("\"o\",\"s\"", "\"float\":0.25")));  /* the product is an output */
    KF_CHECK(!gemmrow_offered(GR_JSON("\"o\"", "\"tensor\":\"c\"")));      /* not a constant factor */
}

int main(void) {
    snprintf(cache_file, sizeof cache_file, "/tmp/kf_test_search_%ld.tsv", (long)getpid());
    unlink(cache_file);
    KF_RUN(test_space_keys);
    KF_RUN(test_space_cuda);
    KF_RUN(test_space_gemm_softmax);
    KF_RUN(test_signature_and_cache_file);
    KF_RUN(test_rounds_and_cache);
    KF_RUN(test_fallback_and_budget);
    unlink(cache_file);
    return kf_test_report();
}
