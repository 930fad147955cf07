/* returns_nan: a correct ReLU except that element 37 is NaN. */
#include <math.h>
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    if (n > 37) y[37] = NAN;
}
