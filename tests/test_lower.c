/* test_lower.c: the naive lowering end to end: graph JSON literals (single quotes stand for
 * double quotes) for single ops and small chains are lowered, validated against the graph,
 * rendered, built with the cpu target, run on guarded slots with data made here, and compared
 * with references computed in plain C; plus buffer planning (views share storage, outputs
 * that are inputs or repeated get copies) and unsupported ops. */
#include "kf_test.h"
#include "agents/kf_agent.h"
#include "agents/lower.h"
#include "core/kf_str.h"
#include "ir/kf_graph.h"
#include "ir/kf_program.h"
#include "targets/kf_target.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char g_cache[64];
static const kf_target_ops *T;

/* ---- running a lowered graph ---- */

typedef struct run {
    kf_graph g;
    kf_program p;
    int lowered;
    kf_slot s[64];
    int ns;
    void *out[16];       /* outputs by graph output index (point into the slots) */
    kf_err err;
} run;

static char *unquote(const char *j) {
    char *s = kf_strdup(j);
    for (char *c = s; *c; c++)
        if (*c == '\'') *c = '"';
    return s;
}

static void run_free(run *r) {
    for (int i = 0; i < r->ns; i++) free(r->s[i].base);
    if (r->lowered) kf_program_free(&r->p);
    kf_graph_free(&r->g);
}

static int graph_param_index(const kf_graph *g, const char *name) {
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->values[g->params[i]].name, name) == 0) return i;
    return -1;
}

/* Lowers json and runs it once with inputs in[i] and params prm[i] (graph order). */
static int run_graph(run *r, const char *json, const void *const *in, const void *const *prm) {
    memset(r, 0, sizeof *r);
    char *js = unquote(json);
    int rc = kf_graph_from_json(js, &r->g, &r->err);
    free(js);
    if (rc) return rc;
    rc = kf_lower_naive(&r->g, "cpu", &r->p, &r->err);
    if (rc) return rc;
    r->lowered = 1;
    rc = kf_program_validate(&r->p, &r->g, &r->err);
    if (rc) return rc;
    r->ns = r->p.n_bufs;
    for (int i = 0; i < r->p.n_bufs; i++) {
        const kf_pbuf *b = &r->p.bufs[i];
        size_t n = b->nbytes;
        unsigned char *base = malloc(n + 2 * KF_GUARD_BYTES);
        memset(base, KF_GUARD_BYTE, KF_GUARD_BYTES);
        memset(base + KF_GUARD_BYTES, KF_POISON_BYTE, n);
        memset(base + KF_GUARD_BYTES + n, KF_GUARD_BYTE, KF_GUARD_BYTES);
        r->s[i] = (kf_slot){base, base + KF_GUARD_BYTES, n};
        if (b->role == KF_BUF_INPUT) memcpy(r->s[i].data, in[b->index], n);
        if (b->role == KF_BUF_PARAM) memcpy(r->s[i].data, prm[graph_param_index(&r->g, b->param)], n);
        if (b->role == KF_BUF_OUTPUT) r->out[b->index] = r->s[i].data;
    }
    kf_build_opts o = {0};
    o.cache_dir = g_cache;
    o.threads = 2;
    o.timeout_s = 120;
    kf_build b = {0};
    rc = T->build(&r->p, &o, &b, &r->err);
    if (rc) {
        if (b.log) fprintf(stderr, "  compiler log:\n%s\n", b.log);
        fprintf(stderr, "  source:\n%s\n", r->p.sources[0].text);
        kf_build_free(&b);
        return rc;
    }
    void *rt = NULL;
    rc = T->open(&r->p, &b, &o, &rt, &r->err);
    if (!rc) rc = T->bind(rt, r->s, r->ns, &r->err);
    for (int i = 0; i < r->ns && !rc; i++) rc = T->upload(rt, i, &r->err);
    if (!rc) rc = T->run(rt, &r->err);
    for (int i = 0; i < r->ns && !rc; i++) rc = T->download(rt, i, &r->err);
    if (rt) T->close(rt);
    kf_build_free(&b);
    return rc;
}

static int guards_ok(const run *r) {
    for (int i = 0; i < r->ns; i++)
        for (size_t j = 0; j < KF_GUARD_BYTES; j++)
            if (r->s[i].base[j] != KF_GUARD_BYTE || r->s[i].data[r->s[i].nbytes + j] != KF_GUARD_BYTE) return 0;
    return 1;
}

/* deterministic data in [-2, 2) */
static void fill(float *x, int n, unsigned seed) {
    unsigned s = seed * 2654435761u + 12345u;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xFFFF) / 16384.0f - 2.0f;
    }
}

/* count of elements outside |a - b| <= tol (1 + |b|) */
static int mismatches(const float *a, const double *b, int n, double tol) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!(fabs((double)a[i] - b[i]) <= tol * (1.0 + fabs(b[i])))) {
            if (bad < 3) fprintf(stderr, "  [%d] got %.7g want %.7g\n", i, (double)a[i], b[i]);
            bad++;
        }
    }
    return bad;
}

#define RUN_OK(r, json, ...) do { int _rc = run_graph(&(r), (json), __VA_ARGS__); \
    KF_CHECK_MSG(_rc == 0, "%s", (r).err.msg); if (_rc) { run_free(&(r)); return; } } while (0)

/* ---- ops ---- */

static void test_addmm_linear(void) {
    enum { M = 5, K = 7, N = 11 };
    float x[M * K], w[N * K], b[N];
    fill(x, M * K, 1);
    fill(w, N * K, 2);
    fill(b, N, 3);
    const char *json =
        "{'inputs':['x'],'params':['w','b'],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[5,7]},'w':{'dtype':'f32','shape':[11,7]},"
        "'b':{'dtype':'f32','shape':[11]},'wt':{'dtype':'f32','shape':[7,11]},"
        "'y':{'dtype':'f32','shape':[5,11]}},"
        "'nodes':[{'op':'aten.t.default','outputs':['wt'],'args':[{'name':'self','tensor':'w'}]},"
        "{'op':'aten.addmm.default','outputs':['y'],'args':[{'name':'self','tensor':'b'},"
        "{'name':'mat1','tensor':'x'},{'name':'mat2','tensor':'wt'},{'name':'beta','float':2.0},"
        "{'name':'alpha','float':0.5}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w, b});
    double ref[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) acc += (double)x[i * K + k] * w[j * K + k];
            ref[i * N + j] = 0.5 * acc + 2.0 * b[j];
        }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, M * N, 1e-5), 0);
    KF_CHECK_EQ_INT(r.p.n_kernels, 2);   /* the transpose is a copy, then the addmm */
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_matmul_broadcast(void) {
    /* [2,1,3,5] @ [4,5,67] -> [2,4,3,67]: broadcast batch dims, column blocks with a tail */
    enum { B0 = 2, B1 = 4, M = 3, K = 5, N = 67 };
    static float a[B0 * M * K], b[B1 * K * N];
    fill(a, B0 * M * K, 31);
    fill(b, B1 * K * N, 32);
    const char *json =
        "{'inputs':['a','b'],'params':[],'outputs':['y'],"
        "'values':{'a':{'dtype':'f32','shape':[2,1,3,5]},'b':{'dtype':'f32','shape':[4,5,67]},"
        "'y':{'dtype':'f32','shape':[2,4,3,67]}},"
        "'nodes':[{'op':'aten.matmul.default','outputs':['y'],'args':[{'name':'self','tensor':'a'},"
        "{'name':'other','tensor':'b'}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){a, b}, NULL);
    static double ref[B0 * B1 * M * N];
    for (int i = 0; i < B0; i++)
        for (int j = 0; j < B1; j++)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++) acc += (double)a[(i * M + m) * K + k] * b[(j * K + k) * N + n];
                    ref[((i * B1 + j) * M + m) * N + n] = acc;
                }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, B0 * B1 * M * N, 1e-5), 0);
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_relu(void) {
    enum { N = 1000 };
    float x[N];
    fill(x, N, 4);
    x[3] = NAN;
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[10,100]},'y':{'dtype':'f32','shape':[10,100]}},"
        "'nodes':[{'op':'aten.relu.default','outputs':['y'],'args':[{'name':'self','tensor':'x'}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    float *y = r.out[0];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (i == 3) continue;
        bad += y[i] != (x[i] > 0 ? x[i] : 0.0f);
    }
    KF_CHECK_EQ_INT(bad, 0);
    KF_CHECK(isnan(y[3]));
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_broadcast_add(void) {
    /* [4,1,3] + alpha * [5,1] -> [4,5,3] */
    float a[12], b[5];
    fill(a, 12, 5);
    fill(b, 5, 6);
    const char *json =
        "{'inputs':['a','b'],'params':[],'outputs':['y'],"
        "'values':{'a':{'dtype':'f32','shape':[4,1,3]},'b':{'dtype':'f32','shape':[5,1]},"
        "'y':{'dtype':'f32','shape':[4,5,3]}},"
        "'nodes':[{'op':'aten.add.Tensor','outputs':['y'],'args':[{'name':'self','tensor':'a'},"
        "{'name':'other','tensor':'b'},{'name':'alpha','int':2}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){a, b}, NULL);
    double ref[60];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 3; k++) ref[(i * 5 + j) * 3 + k] = (double)(a[i * 3 + k] + 2.0f * b[j]);
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, 60, 1e-6), 0);
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_conv2d(void) {
    /* N=2, Cin=4, 9x8 input, Cout=6, 3x3 kernel, stride 2, padding 1, groups 2, bias */
    enum { NB = 2, CI = 4, H = 9, W = 8, CO = 6, KH = 3, KW = 3, G = 2, OH = 5, OW = 4 };
    static float x[NB * CI * H * W], w[CO * (CI / G) * KH * KW], b[CO];
    fill(x, NB * CI * H * W, 7);
    fill(w, CO * (CI / G) * KH * KW, 8);
    fill(b, CO, 9);
    const char *json =
        "{'inputs':['x'],'params':['w','b'],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[2,4,9,8]},'w':{'dtype':'f32','shape':[6,2,3,3]},"
        "'b':{'dtype':'f32','shape':[6]},'y':{'dtype':'f32','shape':[2,6,5,4]}},"
        "'nodes':[{'op':'aten.convolution.default','outputs':['y'],'args':["
        "{'name':'input','tensor':'x'},{'name':'weight','tensor':'w'},{'name':'bias','tensor':'b'},"
        "{'name':'stride','list':[{'int':2},{'int':2}]},{'name':'padding','list':[{'int':1},{'int':1}]},"
        "{'name':'dilation','list':[{'int':1},{'int':1}]},{'name':'transposed','bool':false},"
        "{'name':'output_padding','list':[{'int':0},{'int':0}]},{'name':'groups','int':2}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w, b});
    static double ref[NB * CO * OH * OW];
    for (int n = 0; n < NB; n++)
        for (int oc = 0; oc < CO; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    int g = oc / (CO / G);
                    double acc = b[oc];
                    for (int ic = 0; ic < CI / G; ic++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                int c = g * (CI / G) + ic;
                                acc += (double)x[((n * CI + c) * H + ih) * W + iw] *
                                       w[((oc * (CI / G) + ic) * KH + kh) * KW + kw];
                            }
                    ref[((n * CO + oc) * OH + oh) * OW + ow] = acc;
                }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, NB * CO * OH * OW, 1e-5), 0);
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_conv_transpose1d(void) {
    /* N=1, Cin=2, L=5, Cout=3, K=3, stride 2, padding 1, output_padding 1 -> L_out = 10 */
    enum { CI = 2, L = 5, CO = 3, KK = 3, LO = 10 };
    float x[CI * L], w[CI * CO * KK];
    fill(x, CI * L, 10);
    fill(w, CI * CO * KK, 11);
    const char *json =
        "{'inputs':['x'],'params':['w'],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[1,2,5]},'w':{'dtype':'f32','shape':[2,3,3]},"
        "'y':{'dtype':'f32','shape':[1,3,10]}},"
        "'nodes':[{'op':'aten.convolution.default','outputs':['y'],'args':["
        "{'name':'input','tensor':'x'},{'name':'weight','tensor':'w'},{'name':'bias','none':true},"
        "{'name':'stride','list':[{'int':2}]},{'name':'padding','list':[{'int':1}]},"
        "{'name':'dilation','list':[{'int':1}]},{'name':'transposed','bool':true},"
        "{'name':'output_padding','list':[{'int':1}]},{'name':'groups','int':1}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w});
    double ref[CO * LO] = {0};
    /* scatter form: out[i*s - p + k] += x[i] * w[ci][co][k] */
    for (int ci = 0; ci < CI; ci++)
        for (int i = 0; i < L; i++)
            for (int co = 0; co < CO; co++)
                for (int k = 0; k < KK; k++) {
                    int o = i * 2 - 1 + k;
                    if (o >= 0 && o < LO) ref[co * LO + o] += (double)x[ci * L + i] * w[(ci * CO + co) * KK + k];
                }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, CO * LO, 1e-5), 0);
    run_free(&r);
}

static void test_max_pool2d(void) {
    /* [1,2,7,6], kernel 3, stride 2, padding 1 -> [1,2,4,3], values and indices */
    enum { C = 2, H = 7, W = 6, OH = 4, OW = 3 };
    float x[C * H * W];
    fill(x, C * H * W, 12);
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y','i'],"
        "'values':{'x':{'dtype':'f32','shape':[1,2,7,6]},'y':{'dtype':'f32','shape':[1,2,4,3]},"
        "'i':{'dtype':'i64','shape':[1,2,4,3]}},"
        "'nodes':[{'op':'aten.max_pool2d_with_indices.default','outputs':['y','i'],'args':["
        "{'name':'self','tensor':'x'},{'name':'kernel_size','list':[{'int':3},{'int':3}]},"
        "{'name':'stride','list':[{'int':2},{'int':2}]},{'name':'padding','list':[{'int':1},{'int':1}]},"
        "{'name':'dilation','list':[{'int':1},{'int':1}]},{'name':'ceil_mode','bool':false}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    const float *y = r.out[0];
    const int64_t *ix = r.out[1];
    int bad = 0;
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = -INFINITY;
                int64_t bi = -1;
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        float v = x[(c * H + ih) * W + iw];
                        if (v > best || bi < 0) { best = v; bi = ih * W + iw; }
                    }
                int o = (c * OH + oh) * OW + ow;
                bad += y[o] != best || ix[o] != bi;
            }
    KF_CHECK_EQ_INT(bad, 0);
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_softmax_dim1(void) {
    /* [2,5,3] softmax over dim 1 (the inner dim has 3 elements) */
    float x[30];
    fill(x, 30, 13);
    x[4] = 80.0f;   /* large values must not overflow */
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y','z'],"
        "'values':{'x':{'dtype':'f32','shape':[2,5,3]},'y':{'dtype':'f32','shape':[2,5,3]},"
        "'z':{'dtype':'f32','shape':[2,5,3]}},"
        "'nodes':[{'op':'aten._softmax.default','outputs':['y'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dim','int':1},{'name':'half_to_float','bool':false}]},"
        "{'op':'aten._log_softmax.default','outputs':['z'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dim','int':-2},{'name':'half_to_float','bool':false}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    double ref[30], lref[30];
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 3; c++) {
            double m = -INFINITY, s = 0;
            for (int b = 0; b < 5; b++) m = fmax(m, x[(a * 5 + b) * 3 + c]);
            for (int b = 0; b < 5; b++) s += exp(x[(a * 5 + b) * 3 + c] - m);
            for (int b = 0; b < 5; b++) {
                int i = (a * 5 + b) * 3 + c;
                ref[i] = exp(x[i] - m) / s;
                lref[i] = x[i] - m - log(s);
            }
        }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, 30, 1e-5), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], lref, 30, 1e-5), 0);
    run_free(&r);
}

static void test_layer_norm(void) {
    /* [3,4,8] normalised over the last dim, outputs y, mean [3,4,1], rstd [3,4,1] */
    enum { R = 12, D = 8 };
    float x[R * D], w[D], b[D];
    fill(x, R * D, 14);
    fill(w, D, 15);
    fill(b, D, 16);
    const char *json =
        "{'inputs':['x'],'params':['w','b'],'outputs':['y','m','s'],"
        "'values':{'x':{'dtype':'f32','shape':[3,4,8]},'w':{'dtype':'f32','shape':[8]},"
        "'b':{'dtype':'f32','shape':[8]},'y':{'dtype':'f32','shape':[3,4,8]},"
        "'m':{'dtype':'f32','shape':[3,4,1]},'s':{'dtype':'f32','shape':[3,4,1]}},"
        "'nodes':[{'op':'aten.native_layer_norm.default','outputs':['y','m','s'],'args':["
        "{'name':'input','tensor':'x'},{'name':'normalized_shape','list':[{'int':8}]},"
        "{'name':'weight','tensor':'w'},{'name':'bias','tensor':'b'},{'name':'eps','float':1e-5}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w, b});
    double ref[R * D], mref[R], sref[R];
    for (int i = 0; i < R; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < D; j++) m += x[i * D + j];
        m /= D;
        for (int j = 0; j < D; j++) v += (x[i * D + j] - m) * (x[i * D + j] - m);
        v /= D;
        double rs = 1.0 / sqrt(v + 1e-5);
        mref[i] = m;
        sref[i] = rs;
        for (int j = 0; j < D; j++) ref[i * D + j] = (x[i * D + j] - m) * rs * w[j] + b[j];
    }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, R * D, 1e-5), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], mref, R, 1e-6), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[2], sref, R, 1e-5), 0);
    run_free(&r);
}

static void test_sum_keepdim(void) {
    /* sum over dims [0, 2] of [3,4,5] with keepdim -> [1,4,1]; mean over dim 1 -> [3,5] */
    float x[60];
    fill(x, 60, 17);
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['s','m'],"
        "'values':{'x':{'dtype':'f32','shape':[3,4,5]},'s':{'dtype':'f32','shape':[1,4,1]},"
        "'m':{'dtype':'f32','shape':[3,5]}},"
        "'nodes':[{'op':'aten.sum.dim_IntList','outputs':['s'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dim','list':[{'int':0},{'int':-1}]},{'name':'keepdim','bool':true},{'name':'dtype','none':true}]},"
        "{'op':'aten.mean.dim','outputs':['m'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dim','list':[{'int':1}]},{'name':'keepdim','bool':false},{'name':'dtype','none':true}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    double s[4] = {0}, m[15] = {0};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 5; c++) {
                s[b] += x[(a * 4 + b) * 5 + c];
                m[a * 5 + c] += x[(a * 4 + b) * 5 + c] / 4.0;
            }
    KF_CHECK_EQ_INT(mismatches(r.out[0], s, 4, 1e-6), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], m, 15, 1e-6), 0);
    run_free(&r);
}

static void test_batch_norm_train(void) {
    /* [2,3,2,2] batch statistics per channel, biased variance */
    enum { NB = 2, C = 3, S = 4 };
    float x[NB * C * S], w[C], b[C], rm[C] = {0}, rv[C] = {1, 1, 1};
    fill(x, NB * C * S, 18);
    fill(w, C, 19);
    fill(b, C, 20);
    const char *json =
        "{'inputs':['x'],'params':['w','b','rm','rv'],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[2,3,2,2]},'w':{'dtype':'f32','shape':[3]},"
        "'b':{'dtype':'f32','shape':[3]},'rm':{'dtype':'f32','shape':[3]},'rv':{'dtype':'f32','shape':[3]},"
        "'y':{'dtype':'f32','shape':[2,3,2,2]},'sm':{'dtype':'f32','shape':[3]},'si':{'dtype':'f32','shape':[3]}},"
        "'nodes':[{'op':'aten.native_batch_norm.default','outputs':['y','sm','si'],'args':["
        "{'name':'input','tensor':'x'},{'name':'weight','tensor':'w'},{'name':'bias','tensor':'b'},"
        "{'name':'running_mean','tensor':'rm'},{'name':'running_var','tensor':'rv'},"
        "{'name':'training','bool':true},{'name':'momentum','float':0.1},{'name':'eps','float':1e-5}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w, b, rm, rv});
    double ref[NB * C * S];
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int n = 0; n < NB; n++)
            for (int s = 0; s < S; s++) m += x[(n * C + c) * S + s];
        m /= NB * S;
        for (int n = 0; n < NB; n++)
            for (int s = 0; s < S; s++) v += pow(x[(n * C + c) * S + s] - m, 2);
        v /= NB * S;
        for (int n = 0; n < NB; n++)
            for (int s = 0; s < S; s++) {
                int i = (n * C + c) * S + s;
                ref[i] = (x[i] - m) / sqrt(v + 1e-5) * w[c] + b[c];
            }
    }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, NB * C * S, 1e-5), 0);
    run_free(&r);
}

static void test_cross_entropy(void) {
    /* log_softmax over classes, then nll_loss_forward with mean reduction and ignore_index */
    enum { NB = 4, C = 5 };
    float x[NB * C];
    int64_t t[NB] = {1, 4, -100, 0};
    fill(x, NB * C, 21);
    const char *json =
        "{'inputs':['x','t'],'params':[],'outputs':['l'],"
        "'values':{'x':{'dtype':'f32','shape':[4,5]},'t':{'dtype':'i64','shape':[4]},"
        "'ls':{'dtype':'f32','shape':[4,5]},'l':{'dtype':'f32','shape':[]},'tw':{'dtype':'f32','shape':[]}},"
        "'nodes':[{'op':'aten._log_softmax.default','outputs':['ls'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dim','int':1},{'name':'half_to_float','bool':false}]},"
        "{'op':'aten.nll_loss_forward.default','outputs':['l','tw'],'args':[{'name':'self','tensor':'ls'},"
        "{'name':'target','tensor':'t'},{'name':'weight','none':true},{'name':'reduction','int':1},"
        "{'name':'ignore_index','int':-100}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x, t}, NULL);
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < NB; n++) {
        if (t[n] == -100) continue;
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) m = fmax(m, x[n * C + c]);
        for (int c = 0; c < C; c++) s += exp(x[n * C + c] - m);
        sum -= x[n * C + t[n]] - m - log(s);
        cnt++;
    }
    double ref = sum / cnt;
    KF_CHECK_EQ_INT(mismatches(r.out[0], &ref, 1, 1e-5), 0);
    run_free(&r);
}

static void test_permute_cat(void) {
    /* y = cat([permute(x, [2,0,1]), x2], dim 0); views in between share storage */
    float x[24], x2[24];
    fill(x, 24, 22);
    fill(x2, 24, 23);
    const char *json =
        "{'inputs':['x','x2'],'params':[],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[2,3,4]},'x2':{'dtype':'f32','shape':[24]},"
        "'p':{'dtype':'f32','shape':[4,2,3]},'v':{'dtype':'f32','shape':[4,2,3]},"
        "'y':{'dtype':'f32','shape':[8,2,3]}},"
        "'nodes':[{'op':'aten.permute.default','outputs':['p'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'dims','list':[{'int':2},{'int':0},{'int':1}]}]},"
        "{'op':'aten.view.default','outputs':['v'],'args':[{'name':'self','tensor':'x2'},"
        "{'name':'size','list':[{'int':4},{'int':2},{'int':3}]}]},"
        "{'op':'aten.cat.default','outputs':['y'],'args':[{'name':'tensors','list':[{'tensor':'p'},{'tensor':'v'}]},"
        "{'name':'dim','int':0}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x, x2}, NULL);
    double ref[48];
    for (int c = 0; c < 4; c++)
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++) ref[(c * 2 + a) * 3 + b] = x[(a * 3 + b) * 4 + c];
    for (int i = 0; i < 24; i++) ref[24 + i] = x2[i];
    KF_CHECK_EQ_INT(mismatches(r.out[0], ref, 48, 0), 0);
    KF_CHECK_EQ_INT(r.p.n_kernels, 2);   /* permute copy and cat; the view is free */
    run_free(&r);
}

static void test_avg_pool2d(void) {
    /* [1,1,6,6], kernel 3, stride 2, padding 1, ceil_mode -> [1,1,4,4]; count_include_pad on
     * (first output) and off (second) */
    enum { H = 6, O = 4 };
    float x[H * H];
    fill(x, H * H, 25);
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['a','b'],"
        "'values':{'x':{'dtype':'f32','shape':[1,1,6,6]},'a':{'dtype':'f32','shape':[1,1,4,4]},"
        "'b':{'dtype':'f32','shape':[1,1,4,4]}},"
        "'nodes':[{'op':'aten.avg_pool2d.default','outputs':['a'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'kernel_size','list':[{'int':3},{'int':3}]},{'name':'stride','list':[{'int':2},{'int':2}]},"
        "{'name':'padding','list':[{'int':1},{'int':1}]},{'name':'ceil_mode','bool':true},"
        "{'name':'count_include_pad','bool':true},{'name':'divisor_override','none':true}]},"
        "{'op':'aten.avg_pool2d.default','outputs':['b'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'kernel_size','list':[{'int':3},{'int':3}]},{'name':'stride','list':[{'int':2},{'int':2}]},"
        "{'name':'padding','list':[{'int':1},{'int':1}]},{'name':'ceil_mode','bool':true},"
        "{'name':'count_include_pad','bool':false},{'name':'divisor_override','none':true}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    double ra[O * O], rb[O * O];
    for (int oh = 0; oh < O; oh++)
        for (int ow = 0; ow < O; ow++) {
            /* torch: the window end is capped at size + padding before it is clipped */
            int h0 = oh * 2 - 1, w0 = ow * 2 - 1;
            int h1 = h0 + 3 < H + 1 ? h0 + 3 : H + 1, w1 = w0 + 3 < H + 1 ? w0 + 3 : H + 1;
            int psize = (h1 - h0) * (w1 - w0);
            h0 = h0 < 0 ? 0 : h0;
            w0 = w0 < 0 ? 0 : w0;
            h1 = h1 > H ? H : h1;
            w1 = w1 > H ? H : w1;
            double sum = 0;
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++) sum += x[ih * H + iw];
            ra[oh * O + ow] = sum / psize;
            rb[oh * O + ow] = sum / ((h1 - h0) * (w1 - w0));
        }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ra, O * O, 1e-6), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], rb, O * O, 1e-6), 0);
    /* the corner windows really differ between the two modes */
    KF_CHECK(ra[0] != rb[0]);
    run_free(&r);
}

static void test_slice_scatter_select(void) {
    /* y = slice_scatter(x, s, dim 1, start 1, end 5, step 2); z = select(y, 0, 1) */
    float x[12], src[6];
    fill(x, 12, 26);
    fill(src, 6, 27);
    const char *json =
        "{'inputs':['x','s'],'params':[],'outputs':['y','z'],"
        "'values':{'x':{'dtype':'f32','shape':[3,4]},'s':{'dtype':'f32','shape':[3,2]},"
        "'y':{'dtype':'f32','shape':[3,4]},'z':{'dtype':'f32','shape':[4]}},"
        "'nodes':[{'op':'aten.slice_scatter.default','outputs':['y'],'args':[{'name':'self','tensor':'x'},"
        "{'name':'src','tensor':'s'},{'name':'dim','int':1},{'name':'start','int':1},{'name':'end','int':5},"
        "{'name':'step','int':2}]},"
        "{'op':'aten.select.int','outputs':['z'],'args':[{'name':'self','tensor':'y'},{'name':'dim','int':0},"
        "{'name':'index','int':-2}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x, src}, NULL);
    double ry[12], rz[4];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) ry[i * 4 + j] = (j == 1 || j == 3) ? src[i * 2 + j / 2] : x[i * 4 + j];
    for (int j = 0; j < 4; j++) rz[j] = ry[4 + j];
    KF_CHECK_EQ_INT(mismatches(r.out[0], ry, 12, 0), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], rz, 4, 0), 0);
    run_free(&r);
}

static void test_group_norm(void) {
    /* [2,4,3] with 2 groups, affine; outputs y and mean [2,2] */
    enum { NB = 2, C = 4, S = 3, G = 2 };
    float x[NB * C * S], w[C], b[C];
    fill(x, NB * C * S, 28);
    fill(w, C, 29);
    fill(b, C, 30);
    const char *json =
        "{'inputs':['x'],'params':['w','b'],'outputs':['y','m'],"
        "'values':{'x':{'dtype':'f32','shape':[2,4,3]},'w':{'dtype':'f32','shape':[4]},"
        "'b':{'dtype':'f32','shape':[4]},'y':{'dtype':'f32','shape':[2,4,3]},"
        "'m':{'dtype':'f32','shape':[2,2]},'s':{'dtype':'f32','shape':[2,2]}},"
        "'nodes':[{'op':'aten.native_group_norm.default','outputs':['y','m','s'],'args':["
        "{'name':'input','tensor':'x'},{'name':'weight','tensor':'w'},{'name':'bias','tensor':'b'},"
        "{'name':'N','int':2},{'name':'C','int':4},{'name':'HxW','int':3},{'name':'group','int':2},"
        "{'name':'eps','float':1e-5}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, (const void *[]){w, b});
    double ry[NB * C * S], rm[NB * G];
    int cpg = C / G;
    for (int n = 0; n < NB; n++)
        for (int g = 0; g < G; g++) {
            const float *p = x + (n * C + g * cpg) * S;
            double m = 0, v = 0;
            for (int i = 0; i < cpg * S; i++) m += p[i];
            m /= cpg * S;
            for (int i = 0; i < cpg * S; i++) v += (p[i] - m) * (p[i] - m);
            v /= cpg * S;
            rm[n * G + g] = m;
            for (int i = 0; i < cpg * S; i++) {
                int c = g * cpg + i / S;
                ry[(n * C + g * cpg) * S + i] = (p[i] - m) / sqrt(v + 1e-5) * w[c] + b[c];
            }
        }
    KF_CHECK_EQ_INT(mismatches(r.out[0], ry, NB * C * S, 1e-5), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], rm, NB * G, 1e-6), 0);
    run_free(&r);
}

/* ---- reuse by a fusing agent: emitters and builders through the kf_lw hooks ---- */

typedef struct fuse_ctx { int x_value, mid_value, x_buf, y_buf; const kf_graph *g; } fuse_ctx;

static int fuse_value_buf(kf_lw *w, int value, int writes) {
    fuse_ctx *c = w->user;
    if (value == c->x_value) return c->x_buf;
    if (value == w->n->outs[0]) return c->y_buf;
    return -1;
}

/* the intermediate (relu's output) is computed in place from x instead of loaded */
static kir_expr *fuse_load(kf_lw *w, int value, kir_expr *idx) {
    fuse_ctx *c = w->user;
    if (value != c->mid_value) return NULL;
    const kf_node *relu = &c->g->nodes[0];
    const kf_lop *l = kf_lop_find(relu->op);
    kir_expr *x = kir_load(w->k, c->x_buf, idx);
    return l && l->ew ? l->ew(w->k, relu, &x) : NULL;
}

static void test_fusion_hooks(void) {
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[8]},'r':{'dtype':'f32','shape':[8]},'y':{'dtype':'f32','shape':[8]}},"
        "'nodes':[{'op':'aten.relu.default','outputs':['r'],'args':[{'name':'self','tensor':'x'}]},"
        "{'op':'aten.sigmoid.default','outputs':['y'],'args':[{'name':'self','tensor':'r'}]}]}";
    char *js = unquote(json);
    kf_graph g;
    kf_err err = {0};
    KF_CHECK(kf_graph_from_json(js, &g, &err) == 0);
    free(js);
    kir_kernel *k = kir_kernel_new("fused");
    fuse_ctx c = {kf_graph_find(&g, "x"), kf_graph_find(&g, "r"), -1, -1, &g};
    c.y_buf = kir_add_buf(k, "y", KF_F32, 1);
    c.x_buf = kir_add_buf(k, "x", KF_F32, 0);
    kf_lw w;
    memset(&w, 0, sizeof w);
    w.k = k;
    w.g = &g;
    w.n = &g.nodes[1];
    kf_lop_base(w.n->op, w.op, sizeof w.op);
    w.value_buf = fuse_value_buf;
    w.load_hook = fuse_load;
    w.user = &c;
    const kf_lop *l = kf_lop_find("aten.sigmoid.default");
    KF_CHECK(l && l->kind == KF_LOP_EW);
    KF_CHECK_STR(w.op, "sigmoid");
    KF_CHECK(kf_lop_find("aten.relu_.default") == kf_lop_find("aten.relu.default"));
    KF_CHECK(kf_lop_find("aten.frobnicate.default") == NULL);
    if (l) KF_CHECK_MSG(kf_lw_build_ew(&w, l, &err) == 0, "%s", err.msg);
    KF_CHECK_EQ_INT(k->n_bufs, 2);   /* no buffer for the intermediate */
    kf_str src;
    kf_str_init(&src);
    KF_CHECK_MSG(kir_render_c(&k, 1, &src, &err) == 0, "%s", err.msg);
    const char *body = strstr(kf_str_cstr(&src), "void fused");
    KF_CHECK(body && strstr(body, "kf_max_f32") && strstr(body, "expf"));
    kf_str_free(&src);
    kir_kernel_free(k);
    kf_graph_free(&g);
}

/* ---- planning ---- */

static void test_outputs_need_copies(void) {
    /* outputs: the input itself, a view of a computed value, and that value again */
    float x[6];
    fill(x, 6, 24);
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['x','v','e'],"
        "'values':{'x':{'dtype':'f32','shape':[2,3]},'e':{'dtype':'f32','shape':[2,3]},"
        "'v':{'dtype':'f32','shape':[6]}},"
        "'nodes':[{'op':'aten.exp.default','outputs':['e'],'args':[{'name':'self','tensor':'x'}]},"
        "{'op':'aten.view.default','outputs':['v'],'args':[{'name':'self','tensor':'e'},"
        "{'name':'size','list':[{'int':6}]}]}]}";
    run r;
    RUN_OK(r, json, (const void *[]){x}, NULL);
    double ex[6], xs[6];
    for (int i = 0; i < 6; i++) {
        ex[i] = exp((double)x[i]);
        xs[i] = x[i];
    }
    KF_CHECK_EQ_INT(mismatches(r.out[0], xs, 6, 0), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[1], ex, 6, 1e-6), 0);
    KF_CHECK_EQ_INT(mismatches(r.out[2], ex, 6, 1e-6), 0);
    int copies = 0, scratch = 0;
    for (int i = 0; i < r.p.n_steps; i++) copies += r.p.steps[i].kind == KF_STEP_COPY;
    for (int i = 0; i < r.p.n_bufs; i++) scratch += r.p.bufs[i].role == KF_BUF_SCRATCH;
    KF_CHECK_EQ_INT(copies, 2);
    KF_CHECK_EQ_INT(scratch, 0);
    KF_CHECK_EQ_INT(r.p.n_kernels, 1);
    KF_CHECK(guards_ok(&r));
    run_free(&r);
}

static void test_unsupported(void) {
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[4]},'y':{'dtype':'f32','shape':[4]}},"
        "'nodes':[{'op':'aten.frobnicate.default','outputs':['y'],'args':[{'name':'self','tensor':'x'}]}]}";
    char *js = unquote(json);
    kf_graph g;
    kf_err err = {0};
    KF_CHECK(kf_graph_from_json(js, &g, &err) == 0);
    free(js);
    kf_program p;
    int rc = kf_lower_naive(&g, "cpu", &p, &err);
    KF_CHECK_EQ_INT(rc, KF_E_UNSUPPORTED);
    KF_CHECK_MSG(strstr(err.msg, "unsupported op: aten.frobnicate.default") != NULL, "%s", err.msg);
    /* the agent reports the same */
    kf_agent *a = NULL;
    KF_CHECK(kf_agent_naive_new(&a, &err) == 0);
    kf_problem pb = {0};
    pb.graph = &g;
    pb.target = "cpu";
    kf_program *cands[2] = {NULL, NULL};
    int n = 2;
    rc = a->propose(a, &pb, NULL, cands, &n, &err);
    KF_CHECK_EQ_INT(rc, KF_E_UNSUPPORTED);
    KF_CHECK_EQ_INT(n, 0);
    a->destroy(a);
    kf_graph_free(&g);
}

static void test_agent_proposes_once(void) {
    const char *json =
        "{'inputs':['x'],'params':[],'outputs':['y'],"
        "'values':{'x':{'dtype':'f32','shape':[4]},'y':{'dtype':'f32','shape':[4]}},"
        "'nodes':[{'op':'aten.sigmoid.default','outputs':['y'],'args':[{'name':'self','tensor':'x'}]}]}";
    char *js = unquote(json);
    kf_graph g;
    kf_err err = {0};
    KF_CHECK(kf_graph_from_json(js, &g, &err) == 0);
    free(js);
    kf_agent *a = NULL;
    KF_CHECK(kf_agent_naive_new(&a, &err) == 0);
    KF_CHECK_STR(a->name, "naive");
    kf_problem pb = {0};
    pb.graph = &g;
    pb.target = "cpu";
    kf_program *cands[2] = {NULL, NULL};
    int n = 2;
    KF_CHECK(a->propose(a, &pb, NULL, cands, &n, &err) == 0);
    KF_CHECK_EQ_INT(n, 1);
    if (n == 1) {
        KF_CHECK_STR(cands[0]->agent, "naive");
        KF_CHECK_EQ_INT(cands[0]->n_sources, 1);
        KF_CHECK(kf_program_validate(cands[0], &g, &err) == 0);
        kf_attempt at = {0};
        at.number = 1;
        at.program = cands[0];
        kf_history h = {&at, 1};
        int n2 = 2;
        KF_CHECK(a->propose(a, &pb, &h, cands + 1, &n2, &err) == 0);
        KF_CHECK_EQ_INT(n2, 0);
        kf_program_free(cands[0]);
        free(cands[0]);
    }
    a->destroy(a);
    kf_graph_free(&g);
}

int main(void) {
    T = kf_target_cpu();
    kf_err err = {0};
    if (!T || T->available(&err) != 0) {
        fprintf(stderr, "SKIP: cpu target unavailable: %s\n", err.msg);
        return 0;
    }
    /* mkdtemp's template: the prefix, then six 'X' */
    size_t len = (size_t)snprintf(g_cache, sizeof g_cache, "/tmp/kf_test_lower_");
    memset(g_cache + len, 'X', 6);
    g_cache[len + 6] = '\0';
    if (!mkdtemp(g_cache)) {
        perror("mkdtemp");
        return 1;
    }
    KF_RUN(test_addmm_linear);
    KF_RUN(test_matmul_broadcast);
    KF_RUN(test_relu);
    KF_RUN(test_broadcast_add);
    KF_RUN(test_conv2d);
    KF_RUN(test_conv_transpose1d);
    KF_RUN(test_max_pool2d);
    KF_RUN(test_softmax_dim1);
    KF_RUN(test_layer_norm);
    KF_RUN(test_sum_keepdim);
    KF_RUN(test_batch_norm_train);
    KF_RUN(test_cross_entropy);
    KF_RUN(test_permute_cat);
    KF_RUN(test_avg_pool2d);
    KF_RUN(test_slice_scatter_select);
    KF_RUN(test_group_norm);
    KF_RUN(test_outputs_need_copies);
    KF_RUN(test_fusion_hooks);
    KF_RUN(test_unsupported);
    KF_RUN(test_agent_proposes_once);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_cache);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_cache);
    return kf_test_report();
}
