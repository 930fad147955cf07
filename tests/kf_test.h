/* kf_test.h: tiny assertion macros for kforge's C tests. Each tests/test_*.c is one binary:
 * main() calls KF_RUN(test_fn) for each case and returns kf_test_report(). A failed check
 * prints file:line and the expression and marks the case failed; the case goes on. */
#ifndef KF_TEST_H
#define KF_TEST_H

#include <stdio.h>
#include <string.h>
#include <math.h>

static int kf_test_failed_cases, kf_test_cases, kf_test_case_failed;

#define KF_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); kf_test_case_failed = 1; } } while (0)
#define KF_CHECK_MSG(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); kf_test_case_failed = 1; } } while (0)
#define KF_CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
    fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, _a, _b); \
    kf_test_case_failed = 1; } } while (0)
#define KF_CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); if (!_a || !_b || strcmp(_a, _b)) { \
    fprintf(stderr, "  FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a, #b, \
    _a ? _a : "(null)", _b ? _b : "(null)"); kf_test_case_failed = 1; } } while (0)
#define KF_CHECK_NEAR(a, b, tol) do { double _a = (a), _b = (b); if (!(fabs(_a - _b) <= (tol))) { \
    fprintf(stderr, "  FAIL %s:%d: %s ~ %s (%g vs %g)\n", __FILE__, __LINE__, #a, #b, _a, _b); \
    kf_test_case_failed = 1; } } while (0)
/* Skip the rest of a case, with the reason shown. */
#define KF_SKIP(...) do { fprintf(stderr, "  SKIP: "); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); return; } while (0)

#define KF_RUN(fn) do { kf_test_case_failed = 0; kf_test_cases++; \
    fprintf(stderr, "[ RUN ] %s\n", #fn); fn(); \
    if (kf_test_case_failed) { kf_test_failed_cases++; fprintf(stderr, "[FAIL ] %s\n", #fn); } \
    else fprintf(stderr, "[  OK ] %s\n", #fn); } while (0)

static inline int kf_test_report(void) {
    fprintf(stderr, "%d/%d cases passed\n", kf_test_cases - kf_test_failed_cases, kf_test_cases);
    return kf_test_failed_cases ? 1 : 0;
}

#endif
