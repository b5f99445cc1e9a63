/* Hex CPU masks ("ff,00000000", local_cpus, cpumap): nmb_bitmap_parse_mask
 * against an independent reference of the kernel's format (comma-separated
 * 32-bit groups, most significant first, as lib/bitmap.c's bitmap_parse
 * reads them), and against the list form of the same set. */
#include <ctype.h>

#include "reference.h"

static int hexdigit(int c)
{
    return isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* The documented format: optional white space and "0x"; then either one
 * run of hex digits (a plain number, as taskset writes it) or groups of 1 to
 * 8 hex digits separated by single commas, the last group holding bits
 * 0-31, the one before it 32-63, ...; optional white space. A set bit at or
 * above NMB_BITMAP_BITS is -ERANGE. Returns 0, -EINVAL or -ERANGE. */
static int reference_(const char *s, nmb_bitmap_t *out)
{
    nmb_bitmap_zero(out);
    size_t a, b;
    fuzz_trim(s, &a, &b);
    if (b - a >= 2 && s[a] == '0' && (s[a + 1] == 'x' || s[a + 1] == 'X'))
        a += 2;
    if (a == b)
        return -EINVAL;
    int commas = memchr(s + a, ',', b - a) != NULL;
    int group = 0, range = 0;
    size_t end = b;
    for (;;) {
        size_t start = end;
        while (start > a && s[start - 1] != ',')
            start--;
        if (start == end || (commas && end - start > 8))
            return -EINVAL;
        for (size_t i = start; i < end; i++)
            if (hexdigit((unsigned char)s[i]) < 0)
                return -EINVAL;
        /* digit k from the right of this group holds bits 32*group + 4k .. +3 */
        for (size_t k = 0; k < end - start; k++) {
            int v = hexdigit((unsigned char)s[end - 1 - k]);
            for (int j = 0; j < 4; j++) {
                if (!(v >> j & 1))
                    continue;
                long bit = 32L * group + 4L * (long)k + j;
                if (bit >= NMB_BITMAP_BITS)
                    range = 1;
                else
                    nmb_bitmap_set(out, (int)bit);
            }
        }
        if (start == a)
            break;
        end = start - 1; /* skip the comma */
        if (end == a)
            return -EINVAL; /* a leading comma */
        group++;
    }
    if (range) {
        nmb_bitmap_zero(out);
        return -ERANGE;
    }
    return 0;
}

static int reference(const char *s, nmb_bitmap_t *out)
{
    int err = reference_(s, out);
    if (err < 0)
        nmb_bitmap_zero(out); /* as documented: a failed parse leaves the set empty */
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parsed p;
    if (!fuzz_parse_both(&p, data, size, nmb_bitmap_parse_mask, reference))
        return 0;
    nmb_bitmap_t again;
    if (p.err < 0)
        FUZZ_ASSERT(nmb_bitmap_iszero(&p.got));
    FUZZ_ASSERT(p.err == p.ref);
    FUZZ_ASSERT(nmb_bitmap_equal(&p.got, &p.want));
    if (p.err == 0) {
        /* The same set through the list form. */
        static char buf[NMB_BITMAP_BITS * 6];
        nmb_bitmap_format_list(&p.got, buf, sizeof buf);
        FUZZ_ASSERT(nmb_bitmap_parse_list(&again, buf) == 0 && nmb_bitmap_equal(&again, &p.got));
    }
    free(p.s);
    return 0;
}
