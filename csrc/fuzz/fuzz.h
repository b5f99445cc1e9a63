/* Shared by numabind's fuzz targets.
 *
 * Every target is built two ways from the same source:
 *   - with libFuzzer (clang -fsanitize=fuzzer,address,undefined), by
 *     tools/fuzz.sh and the CI stage, to search for inputs;
 *   - with replay.c's main(), by ctest in the normal (ASan+UBSan) build, to
 *     run the seed corpus (csrc/fuzz/corpus/<target>) and every input that
 *     ever crashed a target (csrc/fuzz/regressions/<target>) on each commit.
 *
 * A target aborts (FUZZ_ASSERT) when a parser breaks one of its documented
 * promises, so that a wrong answer counts as a crash, not only a memory
 * error. */
#ifndef NMB_FUZZ_H
#define NMB_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FUZZ_ASSERT(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a NUL-terminated string (an embedded NUL ends it early, as
 * it would in a file read by the core or in an environment value). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The last error names something: a failing call always leaves a detail,
 * and it is a terminated string within nmb_last_error's buffer. */
static inline void fuzz_error_named(void)
{
    const char *e = nmb_last_error();
    FUZZ_ASSERT(e != NULL);
    FUZZ_ASSERT(strlen(e) < 1024);
}

#endif
