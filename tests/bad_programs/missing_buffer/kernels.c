/* missing_buffer: the kernel is fine; the plan passes 'z', a buffer it never defines. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
