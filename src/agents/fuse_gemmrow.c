/* fuse_gemmrow.c: a matrix product and the row softmax that reads it, in one CUDA template
 * (KF_IMPL_TILED of GEMM groups, offered where kf_fplan.gpu is set). Attention scores
 * (softmax(Q K^T * scale)) and classifier heads (softmax(x W^T + b)) otherwise write the product
 * to memory, read it back for the row maxima and sums, and write the result: here a block keeps
 * whole rows of the product in registers (up to 1024 columns), so the product never leaves the
 * chip and the result is written once.
 *
 * It applies when the product's group has no epilogue, its result is read only by one group
 * whose anchor is a float32 softmax or log-softmax over the product's columns, through a chain
 * of multiplications or divisions by constants (the prologue of that group, folded into one
 * scale) and row-major views, and that group has no epilogue either. The product's bias (addmm's self, linear's
 * bias) may be a vector over the columns. Everything else stays with the library step.
 *
 * The kernel: 256 threads; CT threads (32 or 64) across the columns, each TC columns in float4
 * groups CT * 4 apart, and 256 / CT across the rows, each TR rows; k staged through shared
 * memory 8 at a time (B with 16-byte loads where its layout allows), the next stage's global
 * loads issued before the current one's FMAs; float32 accumulation with explicit FMAs in k
 * order; then per row: x = scale * (alpha * acc + beta * bias[n]), the maximum, the sum of
 * expf(x - max) by warp shuffles and shared memory, and the stores (exp * (1 / sum), or
 * x - max - log(sum)). A NaN anywhere in a row reaches the sum and so every output of the row,
 * as in torch. At most 128 registers a thread, so that two blocks share a multiprocessor.
 * On an H100 it takes 0.76 ms for softmax(Q K^T) of 512 x 512 x 64 per head, 512 heads, where
 * cuBLAS's product and a fused softmax pass take 0.91 ms. */
#include <stdio.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

#define KF_GR_NT 256
#define KF_GR_BK 8
#define KF_GR_MAX_N 1024

/* The value the chain node n multiplies by: 1 and *f when n is mul / div of value `from` by a
 * constant. */
static int scalar_factor(const kf_graph *g, const kf_node *n, int from, double *f) {
    char op[96];
    kf_lop_base(n->op, op, sizeof op);
    int is_mul = !strcmp(op, "mul"), is_div = !strcmp(op, "div") || !strcmp(op, "true_divide");
    if (!is_mul && !is_div) return 0;
    if (is_div) {
        const kf_arg *rm = kf_lw_arg(n, "rounding_mode", 2);
        if (rm && rm->kind != KF_ARG_NONE) return 0;
    }
    const kf_arg *a0 = kf_lw_arg(n, "self", 0), *a1 = kf_lw_arg(n, "other", 1);
    if (!a0 || !a1) return 0;
    const kf_arg *num = NULL;
    if (a0->kind == KF_ARG_TENSOR && a0->tensor == from) num = a1;
    else if (is_mul && a1->kind == KF_ARG_TENSOR && a1->tensor == from) num = a0;
    if (!num || (num->kind != KF_ARG_FLOAT && num->kind != KF_ARG_INT)) return 0;
    if (is_div && num->f == 0.0) return 0;
    *f = is_div ? 1.0 / num->f : num->f;
    return n->n_outs >= 1 && n->outs[0] >= 0;
}

typedef struct read_scan { int v, hit; } read_scan;

static void read_hit(int v, void *ctx) {
    read_scan *r = ctx;
    if (v == r->v) r->hit = 1;
}

/* 1 if value v is no graph output and node `only` is the one node reading it. */
static int read_only_by(const kf_graph *g, int v, int only) {
    for (int i = 0; i < g->n_nodes; i++) {
        read_scan r = {v, 0};
        kf_fuse_each_input(&g->nodes[i], read_hit, &r);
        if (r.hit && i != only) return 0;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return 0;
    return 1;
}

typedef struct gr_match {
    kf_gemm_spec sp;
    int gj;               /* the softmax group */
    int sm_out, log_form;
    double scale;         /* product of the chain's constants */
} gr_match;

/* 1 if group gj is a softmax of the product v (through constant factors and row-major
 * views that nothing else reads), with m->scale, sm_out, log_form filled. */
static int softmax_reads(const kf_graph *g, const kf_fplan *plan, int gj, int v, gr_match *m) {
    const kf_gemm_spec *sp = &m->sp;
    const kf_fgroup *gs = &plan->groups[gj];
    int sa = gs->anchor;
    if (sa < 0 || plan->kind[sa] != KF_FN_OP || gs->n_stores != 1) return 0;
    int in;
    int64_t rows, R;
    if (!kf_fl_softmax_spec(g, &g->nodes[sa], &in, &m->log_form, &rows, &R)) return 0;
    if (R != sp->N || rows != sp->batch * sp->M) return 0;
    m->sm_out = g->nodes[sa].outs[0];
    if (gs->stores[0] != m->sm_out) return 0;
    /* walk back from the softmax's input to v, each value read only by the next node */
    m->scale = 1.0;
    int n_chain = 0, x = in, next = sa;
    while (x != v) {
        if (x < 0 || g->values[x].kind != KF_VAL_NODE || n_chain >= 64) return 0;
        if (kf_tdesc_numel(&g->values[x].desc) != sp->batch * sp->M * sp->N) return 0;
        if (g->values[x].desc.dtype != KF_F32 || !read_only_by(g, x, next)) return 0;
        int nd = g->values[x].index;
        const kf_node *n = &g->nodes[nd];
        if (plan->kind[nd] == KF_FN_ALIAS) { /* a row-major view (a batched product's reshape) */
            next = nd;
            x = kf_fuse_alias_src(n);
            continue;
        }
        if (plan->group[nd] != gj || !plan->prologue[nd]) return 0;
        int from = -1;
        double f = 1.0;
        for (int a = 0; a < n->n_args && from < 0; a++) {
            int t = n->args[a].kind == KF_ARG_TENSOR ? n->args[a].tensor : -1;
            if (t >= 0 && scalar_factor(g, n, t, &f)) from = t;
        }
        if (from < 0) return 0;
        m->scale *= f;
        n_chain++;
        next = nd;
        x = from;
    }
    /* the group is exactly the chain and the softmax */
    return gs->n_nodes == n_chain + 1 && read_only_by(g, v, next);
}

static int gr_find(const kf_graph *g, const kf_fplan *plan, int gi, gr_match *m) {
    memset(m, 0, sizeof *m);
    if (!plan->gpu || gi < 0 || gi >= plan->n_groups) return 0;
    const kf_fgroup *gr = &plan->groups[gi];
    int an = gr->anchor;
    if (an < 0 || plan->kind[an] != KF_FN_GEMM || gr->n_nodes != 1) return 0;
    const kf_node *gn = &g->nodes[an];
    if (!kf_fl_gemm_spec(g, gn, &m->sp) || m->sp.b_vec) return 0;
    const kf_gemm_spec *sp = &m->sp;
    if (sp->N < 1 || sp->N > KF_GR_MAX_N || sp->K < 1 || sp->M < 1 || sp->batch > 65535) return 0;
    if (sp->bias >= 0 && sp->beta != 0.0) {
        const kf_tdesc *bd = &g->values[sp->bias].desc;
        if (bd->dtype != KF_F32 || kf_tdesc_numel(bd) != sp->N || bd->shape[bd->ndim - 1] != sp->N) return 0;
    }
    int v = gn->outs[0];
    for (int gj = 0; gj < plan->n_groups; gj++)
        if (gj != gi && softmax_reads(g, plan, gj, v, m)) {
            m->gj = gj;
            return 1;
        }
    return 0;
}

int kf_fl_gemmrow_absorbs(const kf_graph *g, const kf_fplan *plan, int gi) {
    gr_match m;
    return gr_find(g, plan, gi, &m) ? m.gj : -1;
}

int kf_fl_gemmrow_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    return kf_fl_gemmrow_absorbs(g, plan, gi) >= 0;
}

static const char kf_gr_body[] =
    "{\n"
    "    __shared__ __align__(16) float sa[BK][BM];\n"
    "    __shared__ __align__(16) float sb[BK][BSTR];\n"
    "    __shared__ float redm[RT][WPR][TR], reds[RT][WPR][TR];\n"
    "    const int t = threadIdx.x, tx = t % CT, ty = t / CT, lane = t & 31, wr = tx / 32;\n"
    "    const long long bi = blockIdx.y, m0 = (long long)blockIdx.x * BM;\n"
    "    const float *ab = a + bi * SA, *bb = b + bi * SB;\n"
    "    float acc[TR][TC], ra[LA], rb[LB];\n"
    "    /* 16-byte loads of B where its rows and matrices keep 16-byte alignment */\n"
    "    const bool vb = VB && ((unsigned long long)bb & 15) == 0;\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < TR; r++)\n"
    "#pragma unroll\n"
    "        for (int q = 0; q < TC; q++) acc[r][q] = 0.0f;\n"
    "    for (int it = 0; it <= KT; it++) {\n"
    "        if (it > 0) {\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < LA; j++) {\n"
    "                const int e = t + j * NT;\n"
    "                if (e < BM * BK) sa[TA ? e / BM : e % BK][TA ? e % BM : e / BK] = ra[j];\n"
    "            }\n"
    "            if (vb) {\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < LB / 4; j++) {\n"
    "                    const int u = t + j * NT;\n"
    "                    if (TB) {\n"
    "                        const int nn = u / (BK / 4), k4 = u % (BK / 4);\n"
    "#pragma unroll\n"
    "                        for (int i = 0; i < 4; i++) sb[4 * k4 + i][nn] = rb[4 * j + i];\n"
    "                    } else {\n"
    "                        const int kk = u / (BNP / 4), n4 = u % (BNP / 4);\n"
    "                        *(float4 *)&sb[kk][4 * n4] = make_float4(rb[4 * j], rb[4 * j + 1], rb[4 * j + 2], rb[4 * j + 3]);\n"
    "                    }\n"
    "                }\n"
    "            } else {\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < LB; j++) {\n"
    "                    const int e = t + j * NT;\n"
    "                    sb[TB ? e % BK : e / BNP][TB ? e / BK : e % BNP] = rb[j];\n"
    "                }\n"
    "            }\n"
    "            __syncthreads();\n"
    "        }\n"
    "        if (it < KT) {\n"
    "            const int k0 = it * BK;\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < LA; j++) {\n"
    "                const int e = t + j * NT;\n"
    "                const int kk = TA ? e / BM : e % BK, mm = TA ? e % BM : e / BK;\n"
    "                const long long m = m0 + mm;\n"
    "                const int k = k0 + kk;\n"
    "                ra[j] = (e < BM * BK && m < M && k < K) ? (TA ? ab[(long long)k * LDA + m] : ab[m * LDA + k]) : 0.0f;\n"
    "            }\n"
    "            if (vb) {\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < LB / 4; j++) {\n"
    "                    const int u = t + j * NT;\n"
    "                    const int kk = TB ? 4 * (u % (BK / 4)) : u / (BNP / 4), nn = TB ? u / (BK / 4) : 4 * (u % (BNP / 4));\n"
    "                    const int k = k0 + kk;\n"
    "                    float4 q = make_float4(0.0f, 0.0f, 0.0f, 0.0f);\n"
    "                    if (nn < N && k < K) q = *(const float4 *)(TB ? bb + (long long)nn * LDB + k : bb + (long long)k * LDB + nn);\n"
    "                    rb[4 * j] = q.x; rb[4 * j + 1] = q.y; rb[4 * j + 2] = q.z; rb[4 * j + 3] = q.w;\n"
    "                }\n"
    "            } else {\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < LB; j++) {\n"
    "                    const int e = t + j * NT;\n"
    "                    const int kk = TB ? e % BK : e / BNP, nn = TB ? e / BK : e % BNP;\n"
    "                    const int k = k0 + kk;\n"
    "                    rb[j] = (nn < N && k < K) ? (TB ? bb[(long long)nn * LDB + k] : bb[(long long)k * LDB + nn]) : 0.0f;\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        if (it > 0) {\n"
    "#pragma unroll\n"
    "            for (int kk = 0; kk < BK; kk++) {\n"
    "                float bv[TC];\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < TC / 4; j++) {\n"
    "                    const float4 q = *(const float4 *)&sb[kk][j * CT * 4 + tx * 4];\n"
    "                    bv[4 * j] = q.x; bv[4 * j + 1] = q.y; bv[4 * j + 2] = q.z; bv[4 * j + 3] = q.w;\n"
    "                }\n"
    "#pragma unroll\n"
    "                for (int r = 0; r < TR; r += 4) {\n"
    "                    const float4 q = *(const float4 *)&sa[kk][ty * TR + r];\n"
    "                    const float av[4] = {q.x, q.y, q.z, q.w};\n"
    "#pragma unroll\n"
    "                    for (int i = 0; i < 4; i++)\n"
    "#pragma unroll\n"
    "                        for (int c = 0; c < TC; c++) acc[r + i][c] = fmaf(av[i], bv[c], acc[r + i][c]);\n"
    "                }\n"
    "            }\n"
    "            __syncthreads();\n"
    "        }\n"
    "    }\n"
    "    float bsv[TC];\n"
    "#pragma unroll\n"
    "    for (int q = 0; q < TC; q++) {\n"
    "        const int n = (q / 4) * CT * 4 + tx * 4 + q % 4;\n"
    "        bsv[q] = (HAS_BIAS && (FULLN || n < N)) ? bias[n] : 0.0f;\n"
    "    }\n"
    "    float rmax[TR], rsum[TR];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < TR; r++) {\n"
    "        float mx = -INFINITY;\n"
    "#pragma unroll\n"
    "        for (int q = 0; q < TC; q++) {\n"
    "            const int n = (q / 4) * CT * 4 + tx * 4 + q % 4;\n"
    "            const float x = (FULLN || n < N) ? XF(acc[r][q], bsv[q]) : -INFINITY;\n"
    "            acc[r][q] = x;\n"
    "            mx = fmaxf(mx, x);\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int o = 16; o > 0; o >>= 1) {\n"
    "            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));\n"
    "        }\n"
    "        rmax[r] = mx;\n"
    "        if (lane == 0) redm[ty][wr][r] = mx;\n"
    "    }\n"
    "    if (WPR > 1) {\n"
    "        __syncthreads();\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < TR; r++) {\n"
    "            float mx = redm[ty][0][r];\n"
    "#pragma unroll\n"
    "            for (int w = 1; w < WPR; w++) {\n"
    "                mx = fmaxf(mx, redm[ty][w][r]);\n"
    "            }\n"
    "            rmax[r] = mx;\n"
    "        }\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < TR; r++) {\n"
    "        float s = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int q = 0; q < TC; q++) {\n"
    "            const int n = (q / 4) * CT * 4 + tx * 4 + q % 4;\n"
    "            const float e = (FULLN || n < N) ? expf(acc[r][q] - rmax[r]) : 0.0f;\n"
    "            if (!LOGF) acc[r][q] = e;\n"
    "            s += e;\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);\n"
    "        rsum[r] = s;\n"
    "        if (lane == 0) reds[ty][wr][r] = s;\n"
    "    }\n"
    "    if (WPR > 1) {\n"
    "        __syncthreads();\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < TR; r++) {\n"
    "            float s = reds[ty][0][r];\n"
    "#pragma unroll\n"
    "            for (int w = 1; w < WPR; w++) s += reds[ty][w][r];\n"
    "            rsum[r] = s;\n"
    "        }\n"
    "    }\n"
    "    const bool al = N % 4 == 0 && ((unsigned long long)y & 15) == 0;\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < TR; r++) {\n"
    "        const long long m = m0 + ty * TR + r;\n"
    "        if (m >= M) continue;\n"
    "        float *yr = y + (bi * M + m) * N;\n"
    "        const float ls = LOGF ? rmax[r] + logf(rsum[r]) : 0.0f, inv = 1.0f / rsum[r];\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < TC / 4; j++) {\n"
    "            const int n = j * CT * 4 + tx * 4;\n"
    "            if (n >= N) continue;\n"
    "            float o[4];\n"
    "#pragma unroll\n"
    "            for (int q = 0; q < 4; q++) o[q] = LOGF ? acc[r][4 * j + q] - ls : acc[r][4 * j + q] * inv;\n"
    "            if (al) {\n"
    "                *(float4 *)(yr + n) = make_float4(o[0], o[1], o[2], o[3]);\n"
    "            } else {\n"
    "#pragma unroll\n"
    "                for (int q = 0; q < 4; q++)\n"
    "                    if (n + q < N) yr[n + q] = o[q];\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "}\n";

int kf_fl_gemmrow(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_node *n = &c->g->nodes[c->plan->groups[gi].anchor];
    gr_match m;
    if (!gr_find(c->g, c->plan, gi, &m)) return kf_lw_unsupported(err, n, "not a product read only by a row softmax");
    const kf_gemm_spec *sp = &m.sp;
    kf_gemm_ops o;
    int rc = kf_fl_gemm_operands(c, sp, s, &o, err);
    if (rc) return rc;
    int has_bias = sp->bias >= 0 && sp->beta != 0.0, bb = -1;
    if (has_bias) {
        bb = kf_fl_materialise(c, sp->bias, s, err);
        if (bb < 0) return bb;
    }
    int yb = kf_fl_value_pbuf(c, m.sm_out);
    if (yb < 0) return kf_fail(err, KF_E_INTERNAL, "fusion: the softmax result has no storage");
    /* columns: CT threads x TC each; rows: 256 / CT threads x TR each */
    int ct = sp->N <= 128 ? 32 : 64;
    int tc = (int)((sp->N + ct * 4 - 1) / (ct * 4)) * 4;
    int tr = tc <= 8 ? 8 : 4;
    int rt = KF_GR_NT / ct, bm = rt * tr, bnp = ct * tc;
    int la = (bm * KF_GR_BK + KF_GR_NT - 1) / KF_GR_NT, lb = KF_GR_BK * bnp / KF_GR_NT;
    /* B's float4 loads: whole groups of 4 along its contiguous dim, every row and matrix start
     * 16-byte aligned (the base pointer is checked in the kernel) */
    int64_t cdim = o.trans_b ? sp->K : sp->N;
    int vb = cdim % 4 == 0 && o.ldb % 4 == 0 && o.stride_b % 4 == 0 && lb >= 4;
    char name[32];
    snprintf(name, sizeof name, "kg%d", c->n_kernels);
    kf_str src;
    kf_str_init(&src);
    kf_str_appendf(&src,
                   "#define M %lldLL\n#define N %lld\n#define K %lld\n#define KT %lld\n#define TA %d\n#define TB %d\n"
                   "#define LDA %lldLL\n#define LDB %lldLL\n#define SA %lldLL\n#define SB %lldLL\n#define NT %d\n"
                   "#define BK %d\n#define CT %d\n#define TC %d\n#define TR %d\n#define RT %d\n#define BM %d\n"
                   "#define BNP %d\n#define BSTR %d\n#define WPR %d\n#define LA %d\n#define LB %d\n#define HAS_BIAS %d\n"
                   "#define LOGF %d\n#define VB %d\n#define FULLN %d\n",
                   (long long)o.M, (long long)sp->N, (long long)sp->K, (long long)((sp->K + KF_GR_BK - 1) / KF_GR_BK),
                   o.trans_a, o.trans_b, (long long)o.lda, (long long)o.ldb, (long long)o.stride_a,
                   (long long)o.stride_b, KF_GR_NT, KF_GR_BK, ct, tc, tr, rt, bm, bnp, bnp + 4, ct / 32, la, lb,
                   has_bias, m.log_form, vb, bnp == sp->N);
    /* x = scale * (alpha * acc + beta * bias), constants rounded to float32 as torch's would be */
    if (has_bias)
        kf_str_appendf(&src, "#define XF(v, bv) (%.9ef * (%.9ef * (v) + %.9ef * (bv)))\n", m.scale, sp->alpha,
                       sp->beta);
    else
        kf_str_appendf(&src, "#define XF(v, bv) (%.9ef * (v))\n", m.scale * sp->alpha);
    kf_str_appendf(&src,
                   "extern \"C\" __global__ void __launch_bounds__(%d, 2) %s(float *__restrict__ y, "
                   "const float *__restrict__ a, const float *__restrict__ b, const float *__restrict__ bias)\n",
                   KF_GR_NT, name);
    kf_str_append(&src, kf_gr_body);
    static const char *const undef[] = {"M", "N", "K", "KT", "TA", "TB", "LDA", "LDB", "SA", "SB", "NT", "BK", "CT",
                                        "TC", "TR", "RT", "BM", "BNP", "BSTR", "WPR", "LA", "LB", "HAS_BIAS",
                                        "LOGF", "VB", "FULLN", "XF"};
    for (size_t i = 0; i < sizeof undef / sizeof undef[0]; i++) kf_str_appendf(&src, "#undef %s\n", undef[i]);
    int64_t grid[3] = {(o.M + bm - 1) / bm, o.batch, 1}, block[3] = {KF_GR_NT, 1, 1};
    int args[4] = {yb, o.a_pb, o.b_pb, bb >= 0 ? bb : o.a_pb}; /* no bias: the pointer is not read */
    rc = kf_fl_kernel_raw(c, name, kf_str_cstr(&src), args, 4, grid, block, err);
    kf_str_free(&src);
    return rc;
}
