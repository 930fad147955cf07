// gemmrow_drv.cu: times a rendered fused product + softmax kernel (fuse_gemmrow.c) standalone on
// level2/8's shapes (512 heads, 512 x 64 by 64 x 512, scale 1/8) with a 256 MiB flush before each
// of 20 timed runs, and checks one row against float64. The kernel file comes from
//   KFORGE_CUDA_ARCH=sm_90 build/tests/tool_search_render -l -k 'P0;T11.0.0.0.0;K11.0.0.0.0' -t cuda \
//     problems_gpu/level2/8_bmm_scale_softmax.py | sed -n '/^---- kernels.cu/,$p' | tail -n +2 \
//     | sed 's/^typedef .*int[0-9]*_t;$//' | sed '1i #include <stdint.h>' > k.cu
//   nvcc -O3 -arch=sm_90 -DKFILE='"k.cu"' -DGBM=32 -o gemmrow gemmrow_drv.cu && ./gemmrow
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include KFILE
int main() {
    const int B = 512, M = 512, N = 512, K = 64;
    size_t na = (size_t)B * M * K, nb = (size_t)B * N * K, ny = (size_t)B * M * N;
    std::vector<float> ha(na), hb(nb);
    srand(1);
    for (auto &v : ha) v = (rand() / (float)RAND_MAX) * 2 - 1;
    for (auto &v : hb) v = (rand() / (float)RAND_MAX) * 2 - 1;
    float *a, *b, *y, *flush;
    cudaMalloc(&a, na * 4); cudaMalloc(&b, nb * 4); cudaMalloc(&y, ny * 4); cudaMalloc(&flush, 256 << 20);
    cudaMemcpy(a, ha.data(), na * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(b, hb.data(), nb * 4, cudaMemcpyHostToDevice);
    dim3 grid((M + GBM - 1) / GBM, B), block(256);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    std::vector<float> ts;
    for (int i = 0; i < 25; i++) {
        cudaMemset(flush, i, 256 << 20);
        cudaEventRecord(e0);
        kg0<<<grid, block>>>(y, a, b, a);
        cudaEventRecord(e1); cudaEventSynchronize(e1);
        float ms; cudaEventElapsedTime(&ms, e0, e1); if (i >= 5) ts.push_back(ms);
    }
    std::sort(ts.begin(), ts.end());
    printf("%s: median %.3f ms min %.3f err %s\n", KFILE, ts[ts.size() / 2], ts[0], cudaGetErrorString(cudaGetLastError()));
    std::vector<float> hy(N);
    cudaMemcpy(hy.data(), y + (size_t)(7 * M + 5) * N, N * 4, cudaMemcpyDeviceToHost);
    double mx = -1e30, s = 0, bad = 0; std::vector<double> r(N);
    for (int n = 0; n < N; n++) { double acc = 0; for (int k = 0; k < K; k++) acc += (double)ha[(size_t)(7 * M + 5) * K + k] * hb[(size_t)(7 * N + n) * K + k]; r[n] = acc * 0.125; mx = fmax(mx, r[n]); }
    for (int n = 0; n < N; n++) s += exp(r[n] - mx);
    for (int n = 0; n < N; n++) bad = fmax(bad, fabs(exp(r[n] - mx) / s - hy[n]));
    printf("  max abs err row: %.3g\n", bad);
    return 0;
}
