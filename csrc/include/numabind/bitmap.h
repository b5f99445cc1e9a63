/* numabind: fixed-size bitmaps for CPU sets and NUMA node sets.
 *
 * A bitmap holds NMB_BITMAP_BITS bits (8192, Linux's largest NR_CPUS), so it
 * needs no allocation and can be copied by assignment. The same type holds
 * CPU sets and node sets.
 */
#ifndef NUMABIND_BITMAP_H
#define NUMABIND_BITMAP_H

#include "numabind/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NMB_BITMAP_BITS 8192
#define NMB_BITMAP_WORDS (NMB_BITMAP_BITS / 64)

typedef struct nmb_bitmap {
    uint64_t words[NMB_BITMAP_WORDS];
} nmb_bitmap_t;

NMB_EXPORT void nmb_bitmap_zero(nmb_bitmap_t *set);
/* Adds / removes bit `bit`; returns 0, or -EINVAL when bit is outside
 * [0, NMB_BITMAP_BITS). */
NMB_EXPORT int nmb_bitmap_set(nmb_bitmap_t *set, int bit);
NMB_EXPORT int nmb_bitmap_clear(nmb_bitmap_t *set, int bit);
/* 1 when set, 0 when not (or out of range). */
NMB_EXPORT int nmb_bitmap_isset(const nmb_bitmap_t *set, int bit);
NMB_EXPORT int nmb_bitmap_count(const nmb_bitmap_t *set);
NMB_EXPORT int nmb_bitmap_iszero(const nmb_bitmap_t *set);
NMB_EXPORT int nmb_bitmap_equal(const nmb_bitmap_t *a, const nmb_bitmap_t *b);
/* 1 when every bit of `sub` is in `super`. */
NMB_EXPORT int nmb_bitmap_is_subset(const nmb_bitmap_t *sub, const nmb_bitmap_t *super);
NMB_EXPORT int nmb_bitmap_intersects(const nmb_bitmap_t *a, const nmb_bitmap_t *b);
/* The lowest set bit >= `from`, or -1 when none. Iterate with
 * for (i = nmb_bitmap_next(s, 0); i >= 0; i = nmb_bitmap_next(s, i + 1)). */
NMB_EXPORT int nmb_bitmap_next(const nmb_bitmap_t *set, int from);
/* The highest set bit, or -1 when none (an array indexed by the set's
 * members needs this many plus one entries). */
NMB_EXPORT int nmb_bitmap_last(const nmb_bitmap_t *set);
/* out = a & b, a | b, a & ~b. `out` may alias either input. */
NMB_EXPORT void nmb_bitmap_and(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b);
NMB_EXPORT void nmb_bitmap_or(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b);
NMB_EXPORT void nmb_bitmap_andnot(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b);

/* Parses a kernel list ("0-3,8,10-11", "" or "\n" for empty; surrounding
 * white space allowed). Returns 0, or -EINVAL (bad syntax, a descending
 * range) / -ERANGE (a number >= NMB_BITMAP_BITS), leaving `out` zeroed. */
NMB_EXPORT int nmb_bitmap_parse_list(nmb_bitmap_t *out, const char *text);
/* Parses a kernel hex mask ("ff,00000000"; 32-bit groups of 1 to 8 hex
 * digits separated by commas, most significant first, each group holding
 * its own 32 bits as the kernel reads them: "1,2" is bits 32 and 1), or one
 * run of hex digits without commas; an optional 0x. Errors as above. */
NMB_EXPORT int nmb_bitmap_parse_mask(nmb_bitmap_t *out, const char *text);
/* Writes the list form ("0-3,8") into buf (NUL-terminated, truncated to
 * len). Returns the length the full text needs, excluding the NUL, as
 * snprintf does. */
NMB_EXPORT int nmb_bitmap_format_list(const nmb_bitmap_t *set, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* NUMABIND_BITMAP_H */
