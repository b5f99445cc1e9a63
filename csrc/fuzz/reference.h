/* Shared by the fuzz targets that check a bitmap parser against an
 * independent reference of its documented grammar (fuzz_cpulist,
 * fuzz_cpumask): one input through both, and the white space that both
 * grammars allow around the text. */
#ifndef NMB_FUZZ_REFERENCE_H
#define NMB_FUZZ_REFERENCE_H

#include <ctype.h>

#include "fuzz.h"

/* S without its leading and trailing white space: the characters from *A
 * up to (not including) *B. */
static inline void fuzz_trim(const char *s, size_t *a, size_t *b)
{
    *a = 0, *b = strlen(s);
    while (*a < *b && isspace((unsigned char)s[*a]))
        (*a)++;
    while (*b > *a && isspace((unsigned char)s[*b - 1]))
        (*b)--;
}

/* One input, as the parser and the reference read it. */
struct fuzz_parsed {
    char *s;           /* the input as a string (fuzz_cstr); the caller frees it */
    nmb_bitmap_t got;  /* the parser's set */
    nmb_bitmap_t want; /* the reference's set */
    int err;           /* the parser's answer */
    int ref;           /* the reference's answer */
};

/* Reads the input with PARSE (nmb_bitmap_parse_list, _mask) and with
 * REFERENCE, and checks that PARSE answers 0, -EINVAL or -ERANGE. Returns 0
 * for an input over 64 KiB, which is not read (nothing to free), else 1. */
static inline int fuzz_parse_both(struct fuzz_parsed *p, const uint8_t *data, size_t size,
                                  int (*parse)(nmb_bitmap_t *out, const char *text),
                                  int (*reference)(const char *s, nmb_bitmap_t *out))
{
    if (size > 65536)
        return 0;
    p->s = fuzz_cstr(data, size);
    p->err = parse(&p->got, p->s);
    p->ref = reference(p->s, &p->want);
    FUZZ_ASSERT(p->err == 0 || p->err == -EINVAL || p->err == -ERANGE);
    return 1;
}

#endif
