/* good_openmp: a correct ReLU, y = max(x, 0), over OpenMP threads. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
