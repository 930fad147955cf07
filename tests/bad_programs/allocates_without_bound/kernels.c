/* allocates_without_bound: allocates and touches 64 MiB blocks forever (the harness owns
 * memory; a candidate may not allocate). When malloc fails, the write through NULL crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void relu(const float *x, float *y, int64_t n) {
    for (;;) {
        char *volatile block = malloc((size_t)64 << 20);
        memset(block, 1, (size_t)64 << 20);
        y[0] = x[0] + (float)block[n];
    }
}
