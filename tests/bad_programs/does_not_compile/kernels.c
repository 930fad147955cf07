/* does_not_compile: a missing semicolon and an undeclared name. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f
    undeclared_thing(y);
}
