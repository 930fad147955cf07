/* writes_nothing: returns without touching y, so y keeps the harness's poison. */
#include <stdint.h>

void relu(const float *x, float *y, int64_t n) {
    (void)x;
    (void)y;
    (void)n;
}
