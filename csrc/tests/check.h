/* A minimal assertion harness for the C tests: each CHECK names the
 * expression and the line, and main() returns the failure count. */
#ifndef NMB_TEST_CHECK_H
#define NMB_TEST_CHECK_H
#include <stdio.h>
#include <string.h>

static int nmb_test_failures;

#define CHECK(expr)                                                                    \
    do {                                                                               \
        if (!(expr)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);   \
            nmb_test_failures++;                                                       \
        }                                                                              \
    } while (0)

#define CHECK_INT(actual, expected)                                                    \
    do {                                                                               \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                \
        if (a_ != e_) {                                                                \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__,  \
                    #actual, a_, e_);                                                  \
            nmb_test_failures++;                                                       \
        }                                                                              \
    } while (0)

#define CHECK_STR(actual, expected)                                                    \
    do {                                                                               \
        const char *a_ = (actual), *e_ = (expected);                                   \
        if (!a_ || strcmp(a_, e_) != 0) {                                              \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,        \
                    __LINE__, #actual, a_ ? a_ : "(null)", e_);                        \
            nmb_test_failures++;                                                       \
        }                                                                              \
    } while (0)

#define TEST_DONE()                                                                    \
    do {                                                                               \
        if (nmb_test_failures)                                                         \
            fprintf(stderr, "%d check(s) failed\n", nmb_test_failures);                \
        return nmb_test_failures ? 1 : 0;                                              \
    } while (0)
#endif
