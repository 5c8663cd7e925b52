/*
 * hm_test.h — the whole "framework" of the C unit tests: a failure counter
 * and CHECK macros that print file:line and the values involved, then carry
 * on (one run reports every failure, not only the first).
 *
 * Each native/tests/test_*.c is one executable: its main() calls its test
 * functions and ends with `return hm_test_finish();`, whose exit status is 0
 * when no check failed (ctest reads that).
 *
 * Header-only and C99: every function is static, so each test file gets its
 * own copy and its own counters.
 */
#ifndef HM_TEST_H
#define HM_TEST_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harmonies/harmonies.h"

/* Helpers a given test file may not use: no -Wunused-function for them. */
#if defined(__GNUC__)
#define HM_TEST_MAYBE_UNUSED __attribute__((unused))
#else
#define HM_TEST_MAYBE_UNUSED
#endif

static int hm_test_checks = 0;
static int hm_test_failures = 0;

HM_TEST_MAYBE_UNUSED static void hm_test_fail_header(const char *file, int line) {
    ++hm_test_failures;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
}

/* The enumerator's name, for messages ("HM_ERR_N_FFT (3)"). */
HM_TEST_MAYBE_UNUSED static const char *hm_test_status_name(int st) {
    static const char *const names[] = {
        "HM_OK",
        "HM_ERR_NULL_ARGUMENT",
        "HM_ERR_SAMPLE_RATE",
        "HM_ERR_N_FFT",
        "HM_ERR_WIN_LENGTH",
        "HM_ERR_HOP_LENGTH",
        "HM_ERR_FMIN",
        "HM_ERR_FMAX",
        "HM_ERR_N_MELS",
        "HM_ERR_EMPTY_MEL_FILTER",
        "HM_ERR_N_MFCC",
        "HM_ERR_DB_PARAMS",
        "HM_ERR_FEATURES",
        "HM_ERR_WORKSPACE_TOO_SMALL",
        "HM_ERR_NOT_INITIALIZED",
        "HM_ERR_OUTPUT_TOO_SMALL",
    };
    if (st < 0 || st >= (int)(sizeof names / sizeof names[0])) return "(unknown status)";
    return names[st];
}

/* CHECK(cond): a boolean condition. */
#define CHECK(cond)                                                                     \
    do {                                                                                \
        ++hm_test_checks;                                                               \
        if (!(cond)) {                                                                  \
            hm_test_fail_header(__FILE__, __LINE__);                                    \
            fprintf(stderr, "%s\n", #cond);                                             \
        }                                                                               \
    } while (0)

/* CHECK_INT(a, b): two integers (any integer type) are equal. */
#define CHECK_INT(a, b)                                                                 \
    do {                                                                                \
        long long hm_a_ = (long long)(a), hm_b_ = (long long)(b);                       \
        ++hm_test_checks;                                                               \
        if (hm_a_ != hm_b_) {                                                           \
            hm_test_fail_header(__FILE__, __LINE__);                                    \
            fprintf(stderr, "%s == %s: got %lld, expected %lld\n", #a, #b, hm_a_, hm_b_); \
        }                                                                               \
    } while (0)

/* CHECK_STATUS(expr, expected): an hm_status, printed by name. */
#define CHECK_STATUS(expr, expected)                                                    \
    do {                                                                                \
        int hm_got_ = (int)(expr), hm_want_ = (int)(expected);                          \
        ++hm_test_checks;                                                               \
        if (hm_got_ != hm_want_) {                                                      \
            hm_test_fail_header(__FILE__, __LINE__);                                    \
            fprintf(stderr, "%s: got %s (%d), expected %s (%d)\n", #expr,               \
                    hm_test_status_name(hm_got_), hm_got_, hm_test_status_name(hm_want_), \
                    hm_want_);                                                          \
        }                                                                               \
    } while (0)

/* CHECK_NEAR(got, want, tol): |got - want| <= tol, NaN never passes. The
 * caller states the reason for tol beside the call. */
#define CHECK_NEAR(got, want, tol)                                                      \
    do {                                                                                \
        double hm_g_ = (double)(got), hm_w_ = (double)(want), hm_t_ = (double)(tol);    \
        ++hm_test_checks;                                                               \
        if (!(fabs(hm_g_ - hm_w_) <= hm_t_)) {                                          \
            hm_test_fail_header(__FILE__, __LINE__);                                    \
            fprintf(stderr, "%s ~ %s: got %.17g, expected %.17g, |diff| %.3g > tol %.3g\n", \
                    #got, #want, hm_g_, hm_w_, fabs(hm_g_ - hm_w_), hm_t_);             \
        }                                                                               \
    } while (0)

/* CHECK_REL(got, want, rtol): |got - want| <= rtol * |want|. */
#define CHECK_REL(got, want, rtol) CHECK_NEAR(got, want, (rtol) * fabs((double)(want)))

/* CHECK_MSG(cond, fmt, ...): a condition with a printf-style explanation,
 * for checks inside loops where the index matters. */
#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        ++hm_test_checks;                                                               \
        if (!(cond)) {                                                                  \
            hm_test_fail_header(__FILE__, __LINE__);                                    \
            fprintf(stderr, "%s: ", #cond);                                             \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

/* CHECK_MEM(a, b, bytes): bit-for-bit equality; reports the first differing
 * float when the buffers hold floats (bytes a multiple of 4). */
#define CHECK_MEM(a, b, bytes) hm_test_check_mem(__FILE__, __LINE__, #a, #b, (a), (b), (bytes))

HM_TEST_MAYBE_UNUSED static void hm_test_check_mem(const char *file, int line, const char *an,
                                                  const char *bn, const void *a, const void *b,
                                                  size_t bytes) {
    ++hm_test_checks;
    if (memcmp(a, b, bytes) != 0) {
        size_t i;
        hm_test_fail_header(file, line);
        fprintf(stderr, "%s and %s differ (%zu bytes compared)", an, bn, bytes);
        if (bytes % sizeof(float) == 0) {
            const float *fa = (const float *)a, *fb = (const float *)b;
            size_t n = bytes / sizeof(float), bad = 0, first = 0;
            for (i = 0; i < n; ++i) {
                if (memcmp(fa + i, fb + i, sizeof(float)) != 0) {
                    if (bad == 0) first = i;
                    ++bad;
                }
            }
            fprintf(stderr, ": %zu floats differ, first at [%zu]: %.9g vs %.9g", bad, first,
                    (double)fa[first], (double)fb[first]);
        }
        fputc('\n', stderr);
    }
}

/* Print the tally; the exit status for main(). */
HM_TEST_MAYBE_UNUSED static int hm_test_finish_named(const char *name) {
    if (hm_test_failures == 0) {
        printf("%s: all %d checks passed\n", name, hm_test_checks);
        return 0;
    }
    printf("%s: %d of %d checks FAILED\n", name, hm_test_failures, hm_test_checks);
    return 1;
}
#define hm_test_finish() hm_test_finish_named(__FILE__)

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Unit roundoff of float: 2^-24. */
#define HM_TEST_U32 ((double)FLT_EPSILON / 2.0)

/* A deterministic generator (Knuth's MMIX LCG): the same numbers on every
 * platform, so a failing case can be replayed. */
typedef struct hm_test_rng {
    uint64_t state;
} hm_test_rng;

HM_TEST_MAYBE_UNUSED static uint32_t hm_test_rng_u32(hm_test_rng *r) {
    r->state = r->state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->state >> 32);
}

/* Uniform in [-1, 1), exactly representable in float (24 random bits). */
HM_TEST_MAYBE_UNUSED static float hm_test_rng_uniform(hm_test_rng *r) {
    return (float)((int32_t)(hm_test_rng_u32(r) >> 8) - (1 << 23)) / (float)(1 << 23);
}

/* The float one unit in the last place above |x| (for tolerances in ulps). */
HM_TEST_MAYBE_UNUSED static double hm_test_ulp(float x) {
    float a = fabsf(x);
    return (double)nextafterf(a, INFINITY) - (double)a;
}

#endif /* HM_TEST_H */
