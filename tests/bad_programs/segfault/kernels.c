/* segfault: writes through a NULL pointer. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    float *volatile nowhere = 0;
    nowhere[n] = x[0];
    y[0] = 0.0f;
}
