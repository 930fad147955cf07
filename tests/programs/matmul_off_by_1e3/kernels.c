/* matmul_off_by_1e3: the double-accumulating y = x @ w of matmul_double_acc, with 1e-3 added
 * to element [3, 5]: wrong against the float32 and the float64 reference alike. */
#include <stdint.h>

void matmul(const float *x, const float *w, float *y, int64_t m, int64_t k, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) acc += (double)x[i * k + p] * (double)w[p * n + j];
            y[i * n + j] = (float)acc;
        }
    if (m > 3 && n > 5) y[3 * n + 5] += 1e-3f;
}
