/* modifies_input: a correct ReLU that then overwrites its input with zeros. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    float *xw = (float *)x;
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    for (int64_t i = 0; i < n; i++) xw[i] = 0.0f;
}
