/* fuse_convtile.c: a shared-memory tiled direct convolution for GPU targets (KF_IMPL_TILED of
 * CONV groups, offered where kf_fplan.gpu is set). It is a CUDA kernel template, not kernel IR:
 * every size is a compile-time constant of the one problem. A block computes 16, 32 or 48
 * output channels (the schedule's block field, kf_fl_convtile_cob) of an 8 x 32 output tile of
 * one image; each thread 8 (12 for 48) channels x 4 consecutive pixels; the input tile (with its halo, zero outside the image) and the weights are staged in
 * shared memory 8 input channels at a time, the input rows read with float4 loads. Accumulation
 * is float32 with explicit fused multiply-adds, in input-channel then kernel-row then
 * kernel-column order. The bias, when the convolution has one, is added at the store; the
 * group's elementwise epilogue follows as one kernel over the result (as after a library
 * step).
 *
 * On an H100 a first version of this template beat cuDNN's float32 convolution only where
 * channels are few (16 -> 32 channels: 1.2-1.45x; 3 -> 32: 1.7x) and lost on 64 channels and
 * more (bench/gpu_notes.md), so it is offered for groups 1, 2-d, stride 1, dilation 1, at most
 * 64 input channels; the search measures it against the library step. */
#include <stdio.h>
#include <string.h>
#include "agents/fuse.h"
#include "agents/lower.h"

#define KF_CT_CO 8   /* output channels per thread (12 for 48 per block) */
#define KF_CT_PX 4   /* consecutive output pixels per thread */
#define KF_CT_TW 32  /* output tile width */
#define KF_CT_CIT 8  /* input channels staged per round */

int kf_fl_convtile_ok(const kf_graph *g, const kf_fplan *plan, int gi) {
    if (!plan->gpu) return 0;
    int an = plan->groups[gi].anchor;
    if (an < 0 || plan->kind[an] != KF_FN_CONV) return 0;
    kf_conv_attr a;
    if (!kf_fl_conv_attr(g, &g->nodes[an], &a)) return 0;
    if (a.transposed || a.groups != 1 || a.nsd != 2 || a.Cin > 64 || a.Cout < KF_CT_CO) return 0;
    for (int j = 0; j < 2; j++)
        if (a.stride[j] != 1 || a.dil[j] != 1 || a.Kd[j] > 7 || a.O[j] < 1) return 0;
    if (a.N > 65535 || (double)a.N * a.Cin * a.I[0] * a.I[1] > 2e9 || (double)a.N * a.Cout * a.O[0] * a.O[1] > 2e9)
        return 0;
    return 1;
}

/* Output channels per block: the schedule's block field when it is 16, 32 or 48, else 16 for
 * up to 16 output channels, 48 for exactly 48, 32 otherwise (a partial block is masked). */
int kf_fl_convtile_cob(int64_t cout, int want) {
    if (want == 16 || want == 32 || want == 48) return want;
    return cout <= 16 ? 16 : cout == 48 ? 48 : 32;
}

static const char kf_ct_body[] =
    "{\n"
    "    __shared__ __align__(16) float sx[CIT][IH_T][IW_P];\n"
    "    __shared__ __align__(16) float sw[CIT][KH][KW][COB];\n"
    "    const int tile = blockIdx.x;\n"
    "    const int oy0 = (tile / TILES_W) * TH, ox0 = (tile % TILES_W) * TW;\n"
    "    const int co0 = blockIdx.y * COB;\n"
    "    const long long n = blockIdx.z;\n"
    "    const int t = threadIdx.x, pg = t % PG, cg = t / PG;\n"
    "    const int r = pg / (TW / PX), c = (pg % (TW / PX)) * PX;\n"
    "    const int iy0 = oy0 - PADH, ix0 = ox0 - PADW;\n"
    "    float acc[CO][PX];\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < CO; i++)\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < PX; j++) acc[i][j] = 0.0f;\n"
    "    for (int ci0 = 0; ci0 < CIN; ci0 += CIT) {\n"
    "        for (int i = t; i < CIT * IH_T * IW_T; i += NT) {\n"
    "            const int ci = i / (IH_T * IW_T), rem = i % (IH_T * IW_T);\n"
    "            const int yy = rem / IW_T, xx = rem % IW_T, gy = iy0 + yy, gx = ix0 + xx;\n"
    "            float v = 0.0f;\n"
    "            if (ci0 + ci < CIN && gy >= 0 && gy < H && gx >= 0 && gx < W)\n"
    "                v = x[((n * CIN + ci0 + ci) * H + gy) * (long long)W + gx];\n"
    "            sx[ci][yy][xx] = v;\n"
    "        }\n"
    "        for (int i = t; i < COB * CIT * KH * KW; i += NT) {\n"
    "            const int co = i / (CIT * KH * KW), rem = i % (CIT * KH * KW);\n"
    "            const int ci = rem / (KH * KW), kk = rem % (KH * KW);\n"
    "            float v = 0.0f;\n"
    "            if (co0 + co < COUT && ci0 + ci < CIN) v = w[((long long)(co0 + co) * CIN + ci0 + ci) * (KH * KW) + kk];\n"
    "            sw[ci][kk / KW][kk % KW][co] = v;\n"
    "        }\n"
    "        __syncthreads();\n"
    "#pragma unroll\n"
    "        for (int ci = 0; ci < CIT; ci++) {\n"
    "#pragma unroll\n"
    "            for (int ky = 0; ky < KH; ky++) {\n"
    "                float in[NIN];\n"
    "                const float *row = &sx[ci][r + ky][c];\n"
    "#pragma unroll\n"
    "                for (int j = 0; j < PX; j += 4) {\n"
    "                    const float4 q = *(const float4 *)(row + j);\n"
    "                    in[j] = q.x; in[j + 1] = q.y; in[j + 2] = q.z; in[j + 3] = q.w;\n"
    "                }\n"
    "#pragma unroll\n"
    "                for (int j = PX; j < NIN; j++) in[j] = row[j];\n"
    "#pragma unroll\n"
    "                for (int kx = 0; kx < KW; kx++) {\n"
    "                    const float *wr = &sw[ci][ky][kx][cg * CO];\n"
    "#pragma unroll\n"
    "                    for (int o = 0; o < CO; o += 4) {\n"
    "                        const float4 wv = *(const float4 *)(wr + o);\n"
    "                        const float wa[4] = {wv.x, wv.y, wv.z, wv.w};\n"
    "#pragma unroll\n"
    "                        for (int q = 0; q < 4; q++)\n"
    "#pragma unroll\n"
    "                            for (int p = 0; p < PX; p++) acc[o + q][p] = fmaf(in[p + kx], wa[q], acc[o + q][p]);\n"
    "                    }\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "        __syncthreads();\n"
    "    }\n"
    "    const int oy = oy0 + r;\n"
    "    if (oy >= OH) return;\n"
    "#pragma unroll\n"
    "    for (int o = 0; o < CO; o++) {\n"
    "        const int oc = co0 + cg * CO + o;\n"
    "        if (oc >= COUT) continue;\n"
    "        const float b = HAS_BIAS ? bias[oc] : 0.0f;\n"
    "        float *yr = y + ((n * COUT + oc) * OH + oy) * (long long)OW + ox0 + c;\n"
    "#pragma unroll\n"
    "        for (int p = 0; p < PX; p++)\n"
    "            if (ox0 + c + p < OW) yr[p] = HAS_BIAS ? acc[o][p] + b : acc[o][p];\n"
    "    }\n"
    "}\n";

int kf_fl_convtile(kf_fl *c, int gi, const kf_gsched *s, kf_err *err) {
    const kf_fgroup *gr = &c->plan->groups[gi];
    const kf_node *n = &c->g->nodes[gr->anchor];
    kf_conv_attr a;
    if (!kf_fl_convtile_ok(c->g, c->plan, gi) || !kf_fl_conv_attr(c->g, n, &a))
        return kf_lw_unsupported(err, n, "not a convolution the tiled kernel takes");
    int xb = kf_fl_materialise(c, a.x, s, err);
    if (xb < 0) return xb;
    int wb = kf_fl_materialise(c, a.w, s, err);
    if (wb < 0) return wb;
    int bb = -1;
    if (a.bias >= 0) {
        bb = kf_fl_materialise(c, a.bias, s, err);
        if (bb < 0) return bb;
    }
    int yb = kf_fl_gemm_out(c, gi);
    if (yb < 0) return kf_fail(err, KF_E_NOMEM, "fusion: out of memory");
    int cob = kf_fl_convtile_cob(a.Cout, s->block), co = cob == 48 ? 12 : 8, th = s->tile == 4 ? 4 : 8;
    int threads = (th * KF_CT_TW / KF_CT_PX) * (cob / co);
    int64_t tiles = ((a.O[0] + th - 1) / th) * ((a.O[1] + KF_CT_TW - 1) / KF_CT_TW);
    char name[32];
    snprintf(name, sizeof name, "kc%d", c->n_kernels);
    kf_str src;
    kf_str_init(&src);
    int64_t iwt = KF_CT_TW + a.Kd[1] - 1, iht = th + a.Kd[0] - 1;
    kf_str_appendf(&src,
                   "#define CIN %lld\n#define COUT %lld\n#define H %lld\n#define W %lld\n#define OH %lld\n"
                   "#define OW %lld\n#define KH %lld\n#define KW %lld\n#define PADH %lld\n#define PADW %lld\n"
                   "#define COB %d\n#define CO %d\n#define PX %d\n#define TH %d\n#define TW %d\n#define CIT %d\n"
                   "#define PG %d\n#define NT %d\n#define IW_T %lld\n#define IH_T %lld\n#define IW_P %lld\n"
                   "#define TILES_W %lld\n#define NIN %lld\n#define HAS_BIAS %d\n",
                   (long long)a.Cin, (long long)a.Cout, (long long)a.I[0], (long long)a.I[1], (long long)a.O[0],
                   (long long)a.O[1], (long long)a.Kd[0], (long long)a.Kd[1], (long long)a.pad[0], (long long)a.pad[1],
                   cob, co, KF_CT_PX, th, KF_CT_TW, KF_CT_CIT, th * KF_CT_TW / KF_CT_PX, threads,
                   (long long)iwt, (long long)iht, (long long)((iwt + 3) / 4 * 4),
                   (long long)((a.O[1] + KF_CT_TW - 1) / KF_CT_TW), (long long)(KF_CT_PX + a.Kd[1] - 1), bb >= 0);
    kf_str_appendf(&src,
                   "extern \"C\" __global__ void __launch_bounds__(%d) %s(float *__restrict__ y, "
                   "const float *__restrict__ x, const float *__restrict__ w, const float *__restrict__ bias)\n",
                   threads, name);
    kf_str_append(&src, kf_ct_body);
    static const char *const undef[] = {"CIN", "COUT", "H", "W", "OH", "OW", "KH", "KW", "PADH", "PADW", "COB", "CO",
                                        "PX", "TH", "TW", "CIT", "PG", "NT", "IW_T", "IH_T", "IW_P", "TILES_W", "NIN",
                                        "HAS_BIAS"};
    for (size_t i = 0; i < sizeof undef / sizeof undef[0]; i++) kf_str_appendf(&src, "#undef %s\n", undef[i]);
    int64_t grid[3] = {tiles, (a.Cout + cob - 1) / cob, a.N}, block[3] = {threads, 1, 1};
    int args[4] = {yb, xb, wb, bb >= 0 ? bb : xb}; /* no bias: the pointer is not read */
    int rc = kf_fl_kernel_raw(c, name, kf_str_cstr(&src), args, 4, grid, block, err);
    kf_str_free(&src);
    if (rc) return rc;
    int out = n->outs[0];
    if (!kf_fl_has_epilogue(c, gi) && (!c->plan->stored[out] || kf_fl_value_pbuf(c, out) == yb)) return 0;
    return kf_fl_ew_loop(c, gi, yb, -1, NULL, 0.0, s, err);
}
