/* CPU and node lists ("0-3,8,10-11"): nmb_bitmap_parse_list against an
 * independent reference of the documented grammar, and the list printer
 * (full and truncated) against the parser. */
#include <ctype.h>

#include "reference.h"

/* The documented grammar: optional white space, then entries "N" or "N-M"
 * (N <= M < NMB_BITMAP_BITS) separated by single commas, an optional
 * trailing comma, optional white space. Empty (or only white space) is the
 * empty set. Returns 0 or -1. */
static int reference(const char *s, nmb_bitmap_t *out)
{
    nmb_bitmap_zero(out);
    size_t a, b;
    fuzz_trim(s, &a, &b);
    if (a == b)
        return 0;
    if (s[b - 1] == ',')
        b--; /* one trailing comma */
    size_t i = a;
    for (;;) {
        long lo = 0, hi;
        size_t d = 0;
        while (i < b && isdigit((unsigned char)s[i])) {
            if (lo < 100000)
                lo = lo * 10 + (s[i] - '0');
            i++, d++;
        }
        if (!d)
            return -1;
        hi = lo;
        if (i < b && s[i] == '-') {
            i++;
            d = 0;
            hi = 0;
            while (i < b && isdigit((unsigned char)s[i])) {
                if (hi < 100000)
                    hi = hi * 10 + (s[i] - '0');
                i++, d++;
            }
            if (!d)
                return -1;
        }
        if (lo >= NMB_BITMAP_BITS || hi >= NMB_BITMAP_BITS || hi < lo)
            return -1;
        for (long c = lo; c <= hi; c++)
            nmb_bitmap_set(out, (int)c);
        if (i == b)
            return 0;
        if (s[i] != ',')
            return -1;
        i++;
        if (i == b)
            return -1; /* ",," or ", " before the end */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parsed p;
    if (!fuzz_parse_both(&p, data, size, nmb_bitmap_parse_list, reference))
        return 0;
    nmb_bitmap_t again;
    FUZZ_ASSERT((p.err == 0) == (p.ref == 0));
    if (p.err < 0) {
        FUZZ_ASSERT(nmb_bitmap_iszero(&p.got)); /* a failed parse leaves the set empty */
        free(p.s);
        return 0;
    }
    FUZZ_ASSERT(nmb_bitmap_equal(&p.got, &p.want));

    /* Printing gives the length it needs and text that parses back. */
    static char buf[NMB_BITMAP_BITS * 6];
    int need = nmb_bitmap_format_list(&p.got, buf, sizeof buf);
    FUZZ_ASSERT(need >= 0 && (size_t)need < sizeof buf && strlen(buf) == (size_t)need);
    FUZZ_ASSERT(nmb_bitmap_parse_list(&again, buf) == 0 && nmb_bitmap_equal(&again, &p.got));

    /* A short buffer: a prefix ending on a whole entry, always terminated. */
    char small[48];
    size_t len = size % sizeof small;
    memset(small, 'X', sizeof small);
    FUZZ_ASSERT(nmb_bitmap_format_list(&p.got, len ? small : NULL, len) == need);
    if (len) {
        size_t k = strlen(small);
        FUZZ_ASSERT(k < len && strncmp(small, buf, k) == 0);
        FUZZ_ASSERT(k == 0 || buf[k] == '\0' || buf[k] == ',');
        FUZZ_ASSERT(nmb_bitmap_parse_list(&again, small) == 0 && nmb_bitmap_is_subset(&again, &p.got));
    }
    free(p.s);
    return 0;
}
