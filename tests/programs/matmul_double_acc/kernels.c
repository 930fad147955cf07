/* matmul_double_acc: y = x @ w for tests/problems/matmul_cancel.py, every dot product
 * accumulated in double and rounded once: more accurate than PyTorch's float32 sum. */
#include <stdint.h>

void matmul(const float *x, const float *w, float *y, int64_t m, int64_t k, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) acc += (double)x[i * k + p] * (double)w[p * n + j];
            y[i * n + j] = (float)acc;
        }
}
