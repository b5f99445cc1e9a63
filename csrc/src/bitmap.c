/* Fixed-size bitmaps and the kernel's two text forms of them. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void nmb_bitmap_zero(nmb_bitmap_t *set)
{
    memset(set, 0, sizeof *set);
}

int nmb_bitmap_set(nmb_bitmap_t *set, int bit)
{
    if (bit < 0 || bit >= NMB_BITMAP_BITS)
        return -EINVAL;
    set->words[bit / 64] |= UINT64_C(1) << (bit % 64);
    return 0;
}

int nmb_bitmap_clear(nmb_bitmap_t *set, int bit)
{
    if (bit < 0 || bit >= NMB_BITMAP_BITS)
        return -EINVAL;
    set->words[bit / 64] &= ~(UINT64_C(1) << (bit % 64));
    return 0;
}

int nmb_bitmap_isset(const nmb_bitmap_t *set, int bit)
{
    if (bit < 0 || bit >= NMB_BITMAP_BITS)
        return 0;
    return (set->words[bit / 64] >> (bit % 64)) & 1;
}

int nmb_bitmap_count(const nmb_bitmap_t *set)
{
    int n = 0;
    /* Most words are zero (224 CPUs fill 4 of 128): skip them, since
     * without -mpopcnt each count is a call into libgcc. */
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        if (set->words[i])
            n += __builtin_popcountll(set->words[i]);
    return n;
}

int nmb_bitmap_iszero(const nmb_bitmap_t *set)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        if (set->words[i])
            return 0;
    return 1;
}

int nmb_bitmap_equal(const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

int nmb_bitmap_is_subset(const nmb_bitmap_t *sub, const nmb_bitmap_t *super)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        if (sub->words[i] & ~super->words[i])
            return 0;
    return 1;
}

int nmb_bitmap_intersects(const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        if (a->words[i] & b->words[i])
            return 1;
    return 0;
}

int nmb_bitmap_next(const nmb_bitmap_t *set, int from)
{
    if (from < 0)
        from = 0;
    for (int w = from / 64; w < NMB_BITMAP_WORDS; w++) {
        uint64_t word = set->words[w];
        if (w == from / 64)
            word &= ~UINT64_C(0) << (from % 64);
        if (word)
            return w * 64 + __builtin_ctzll(word);
    }
    return -1;
}

int nmb_bitmap_last(const nmb_bitmap_t *set)
{
    for (int w = NMB_BITMAP_WORDS - 1; w >= 0; w--)
        if (set->words[w])
            return w * 64 + 63 - __builtin_clzll(set->words[w]);
    return -1;
}

void nmb_bitmap_and(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        out->words[i] = a->words[i] & b->words[i];
}

void nmb_bitmap_or(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        out->words[i] = a->words[i] | b->words[i];
}

void nmb_bitmap_andnot(nmb_bitmap_t *out, const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    for (int i = 0; i < NMB_BITMAP_WORDS; i++)
        out->words[i] = a->words[i] & ~b->words[i];
}

/* Reads a decimal number at *p without overflow; advances *p. */
static int parse_uint(const char **p, long *out)
{
    const char *s = *p;
    long v = 0;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    while (isdigit((unsigned char)*s)) {
        if (v >= NMB_BITMAP_BITS)
            return -ERANGE; /* keep reading would only grow it */
        v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int nmb_bitmap_parse_list(nmb_bitmap_t *out, const char *text)
{
    const char *p = text;
    int err;
    nmb_bitmap_zero(out);
    if (!text)
        return -EINVAL;
    while (isspace((unsigned char)*p))
        p++;
    while (*p && !isspace((unsigned char)*p)) {
        long lo, hi;
        if ((err = parse_uint(&p, &lo)) < 0)
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if ((err = parse_uint(&p, &hi)) < 0)
                goto bad;
            /* The kernel's "0-7:2/4" stride form is not produced by sysfs. */
        }
        if (lo >= NMB_BITMAP_BITS || hi >= NMB_BITMAP_BITS) {
            err = -ERANGE;
            goto bad;
        }
        if (hi < lo) {
            err = -EINVAL;
            goto bad;
        }
        for (long i = lo; i <= hi; i++)
            nmb_bitmap_set(out, (int)i);
        if (*p == ',')
            p++;
        else if (*p && !isspace((unsigned char)*p)) {
            err = -EINVAL;
            goto bad;
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p) {
        err = -EINVAL;
        goto bad;
    }
    return 0;
bad:
    nmb_bitmap_zero(out);
    return err;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int nmb_bitmap_parse_mask(nmb_bitmap_t *out, const char *text)
{
    const char *start, *end;
    nmb_bitmap_zero(out);
    if (!text)
        return -EINVAL;
    start = text;
    while (isspace((unsigned char)*start))
        start++;
    if (start[0] == '0' && (start[1] == 'x' || start[1] == 'X'))
        start += 2;
    end = start + strlen(start);
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    if (end == start)
        return -EINVAL;
    /* The syntax first, so that a malformed mask is -EINVAL wherever the
     * fault is: groups of 1 to 8 hex digits between single commas (the
     * kernel's 32-bit groups), or one run of digits without commas. */
    int commas = memchr(start, ',', (size_t)(end - start)) != NULL;
    size_t run = 0;
    for (const char *p = start; p < end; p++) {
        if (*p == ',') {
            if (!run)
                return -EINVAL;
            run = 0;
        } else if (hexval(*p) < 0 || (++run > 8 && commas)) {
            return -EINVAL;
        }
    }
    if (!run)
        return -EINVAL;
    /* Least significant digit last: group g (counted from the right) holds
     * bits 32g..32g+31, whatever its width ("1,00000002" is bits 32 and 1,
     * as the kernel reads it, not 0x100000002 >> 4 digits). */
    int group = 0;
    long digit = 0;
    for (const char *p = end; p > start; p--) {
        if (p[-1] == ',') {
            group++;
            digit = 0;
            continue;
        }
        int v = hexval(p[-1]);
        for (int k = 0; k < 4; k++) {
            if (!(v >> k & 1))
                continue;
            long bit = 32L * group + 4 * digit + k;
            if (bit >= NMB_BITMAP_BITS) {
                nmb_bitmap_zero(out);
                return -ERANGE;
            }
            nmb_bitmap_set(out, (int)bit);
        }
        digit++;
    }
    return 0;
}

int nmb_bitmap_format_list(const nmb_bitmap_t *set, char *buf, size_t len)
{
    size_t used = 0;
    int total = 0, truncated = 0;
    char piece[32];
    if (buf && len)
        buf[0] = '\0';
    for (int lo = nmb_bitmap_next(set, 0); lo >= 0;) {
        int hi = lo;
        while (hi + 1 < NMB_BITMAP_BITS && nmb_bitmap_isset(set, hi + 1))
            hi++;
        int n = hi > lo ? snprintf(piece, sizeof piece, "%s%d-%d", total ? "," : "", lo, hi)
                        : snprintf(piece, sizeof piece, "%s%d", total ? "," : "", lo);
        if (buf && !truncated && used + (size_t)n < len) {
            memcpy(buf + used, piece, (size_t)n + 1);
            used += (size_t)n;
        } else {
            truncated = 1; /* never write a later piece after a dropped one */
        }
        total += n;
        lo = nmb_bitmap_next(set, hi + 1);
    }
    return total;
}
