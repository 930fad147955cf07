// Experiment (session 3, not part of kforge): a direct 2-d convolution, NCHW float32, groups 1,
// dilation 1, every size a compile-time constant (-DN -DCIN -DCOUT -DH -DW -DOH -DOW -DK -DS
// -DPAD; tiling -DCOB -DCO -DPX -DTH -DTW -DCIT). A block computes COB output channels of a
// TH x TW output tile; each thread CO channels x PX consecutive pixels, with the input tile
// and the weights staged in shared memory CIT input channels at a time. Measured against cuDNN
// by dconv_sweep.py (bench/gpu_notes.md, "Level 2's ceiling").
#ifndef S
#define S 1
#endif
#define PG (TH * TW / PX)            // pixel groups per block
#define NT (PG * (COB / CO))         // threads
#define IW_T (TW * S + K - S)
#define IH_T (TH * S + K - S)
#define IW_P (((IW_T + 3) / 4) * 4)
#define TILES_W ((OW + TW - 1) / TW)
#define NIN (PX * S + K - S)

extern "C" __global__ void __launch_bounds__(NT) dconv(const float *__restrict__ x, const float *__restrict__ w,
                                                      const float *__restrict__ bias, float *__restrict__ y) {
    __shared__ __align__(16) float sx[CIT][IH_T][IW_P];
    __shared__ __align__(16) float sw[CIT][K][K][COB];
    const int tile = blockIdx.x;
    const int oy0 = (tile / TILES_W) * TH, ox0 = (tile % TILES_W) * TW;
    const int co0 = blockIdx.y * COB;
    const long n = blockIdx.z;
    const int t = threadIdx.x, pg = t % PG, cg = t / PG;
    const int r = pg / (TW / PX), c = (pg % (TW / PX)) * PX;
    const int iy0 = oy0 * S - PAD, ix0 = ox0 * S - PAD;
    float acc[CO][PX];
#pragma unroll
    for (int i = 0; i < CO; i++)
#pragma unroll
        for (int j = 0; j < PX; j++) acc[i][j] = 0.0f;
    for (int ci0 = 0; ci0 < CIN; ci0 += CIT) {
        for (int i = t; i < CIT * IH_T * IW_T; i += NT) {
            int ci = i / (IH_T * IW_T), rem = i % (IH_T * IW_T);
            int yy = rem / IW_T, xx = rem % IW_T;
            int gy = iy0 + yy, gx = ix0 + xx;
            float v = 0.0f;
            if (ci0 + ci < CIN && gy >= 0 && gy < H && gx >= 0 && gx < W)
                v = x[((n * CIN + ci0 + ci) * H + gy) * (long)W + gx];
            sx[ci][yy][xx] = v;
        }
        for (int i = t; i < COB * CIT * K * K; i += NT) {
            int co = i / (CIT * K * K), rem = i % (CIT * K * K);
            int ci = rem / (K * K), kk = rem % (K * K);
            float v = 0.0f;
            if (co0 + co < COUT && ci0 + ci < CIN) v = w[((long)(co0 + co) * CIN + ci0 + ci) * (K * K) + kk];
            sw[ci][kk / K][kk % K][co] = v;
        }
        __syncthreads();
#pragma unroll
        for (int ci = 0; ci < CIT; ci++) {
#pragma unroll
            for (int ky = 0; ky < K; ky++) {
                float in[NIN];
                const float *row = &sx[ci][r * S + ky][c * S];
#if S == 1 && PX % 4 == 0
#pragma unroll
                for (int j = 0; j < PX; j += 4) {
                    float4 q = *(const float4 *)(row + j);
                    in[j] = q.x; in[j + 1] = q.y; in[j + 2] = q.z; in[j + 3] = q.w;
                }
#pragma unroll
                for (int j = PX; j < NIN; j++) in[j] = row[j];
#else
#pragma unroll
                for (int j = 0; j < NIN; j++) in[j] = row[j];
#endif
#pragma unroll
                for (int kx = 0; kx < K; kx++) {
                    const float *wr = &sw[ci][ky][kx][cg * CO];
#pragma unroll
                    for (int o = 0; o < CO; o += 4) {
                        float4 wv = *(const float4 *)(wr + o);
                        float wa[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
                        for (int q = 0; q < 4; q++)
#pragma unroll
                            for (int p = 0; p < PX; p++) acc[o + q][p] = fmaf(in[p * S + kx], wa[q], acc[o + q][p]);
                    }
                }
            }
        }
        __syncthreads();
    }
    const int oy = oy0 + r;
    if (oy >= OH) return;
#pragma unroll
    for (int o = 0; o < CO; o++) {
        int oc = co0 + cg * CO + o;
        if (oc >= COUT) continue;
        float b = bias ? bias[oc] : 0.0f;
        float *yr = y + ((n * COUT + oc) * OH + oy) * (long)OW + ox0 + c;
#pragma unroll
        for (int p = 0; p < PX; p++)
            if (ox0 + c + p < OW) yr[p] = acc[o][p] + b;
    }
}
