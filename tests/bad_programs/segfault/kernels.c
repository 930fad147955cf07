/* segfault: writes through a NULL pointer (volatile, so the compiler keeps the write). */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    volatile float *volatile nowhere = 0;
    nowhere[n] = x[0];
    y[0] = 0.0f;
}
