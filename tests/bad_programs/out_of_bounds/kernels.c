/* out_of_bounds: a correct ReLU that also writes 4 elements past the end of y. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    for (int64_t i = n; i < n + 4; i++) y[i] = 0.0f;
}
