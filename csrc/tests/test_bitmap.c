/* Bitmaps and the kernel's list and mask forms. */
#include "check.h"
#include "internal.h"

static void round_trip(const char *list)
{
    nmb_bitmap_t s;
    char buf[256];
    CHECK_INT(nmb_bitmap_parse_list(&s, list), 0);
    nmb_bitmap_format_list(&s, buf, sizeof buf);
    CHECK_STR(buf, list);
}

int main(void)
{
    nmb_bitmap_t s, t;
    char buf[16];

    round_trip("0-3,8,10-11");
    round_trip("0-55,112-167");
    round_trip("8191");
    round_trip("");

    CHECK_INT(nmb_bitmap_parse_list(&s, "0-3\n"), 0);
    CHECK_INT(nmb_bitmap_count(&s), 4);
    CHECK_INT(nmb_bitmap_parse_list(&s, "\n"), 0);
    CHECK(nmb_bitmap_iszero(&s));
    CHECK_INT(nmb_bitmap_parse_list(&s, "3-1"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_list(&s, "8192"), -ERANGE);
    CHECK_INT(nmb_bitmap_parse_list(&s, "99999999999999999999"), -ERANGE);
    CHECK_INT(nmb_bitmap_parse_list(&s, "1,,2"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_list(&s, "a"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_list(&s, "1-"), -EINVAL);
    CHECK(nmb_bitmap_iszero(&s)); /* a failed parse leaves the set empty */

    CHECK_INT(nmb_bitmap_parse_mask(&s, "00000000,000000ff\n"), 0);
    CHECK_INT(nmb_bitmap_parse_list(&t, "0-7"), 0);
    CHECK(nmb_bitmap_equal(&s, &t));
    CHECK_INT(nmb_bitmap_parse_mask(&s, "1,00000000"), 0);
    CHECK_INT(nmb_bitmap_next(&s, 0), 32);
    CHECK_INT(nmb_bitmap_parse_mask(&s, "0xf0"), 0);
    CHECK_INT(nmb_bitmap_next(&s, 0), 4);
    CHECK_INT(nmb_bitmap_parse_mask(&s, "xyz"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_mask(&s, ",ff"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_mask(&s, ""), -EINVAL);
    /* Each group holds its own 32 bits, whatever its width, as the kernel
     * reads it (found by csrc/fuzz/fuzz_cpumask: "1,2" was read as 0x12). */
    CHECK_INT(nmb_bitmap_parse_mask(&s, "1,2"), 0);
    CHECK_INT(nmb_bitmap_parse_list(&t, "1,32"), 0);
    CHECK(nmb_bitmap_equal(&s, &t));
    CHECK_INT(nmb_bitmap_parse_mask(&s, "ff,1"), 0);
    CHECK_INT(nmb_bitmap_parse_list(&t, "0,32-39"), 0);
    CHECK(nmb_bitmap_equal(&s, &t));
    CHECK_INT(nmb_bitmap_parse_mask(&s, "123456789"), 0); /* one number: bits 0, 3, 4, ... 32 */
    CHECK_INT(nmb_bitmap_next(&s, 30), 32);
    CHECK_INT(nmb_bitmap_last(&s), 32);
    CHECK_INT(nmb_bitmap_parse_list(&t, "0,63-64"), 0);
    CHECK_INT(nmb_bitmap_last(&t), 64);
    CHECK_INT(nmb_bitmap_parse_list(&t, "0-63"), 0);
    CHECK_INT(nmb_bitmap_last(&t), 63);
    CHECK_INT(nmb_bitmap_set(&t, NMB_BITMAP_BITS - 1), 0);
    CHECK_INT(nmb_bitmap_last(&t), NMB_BITMAP_BITS - 1);
    nmb_bitmap_zero(&t);
    CHECK_INT(nmb_bitmap_last(&t), -1);
    CHECK_INT(nmb_bitmap_parse_mask(&s, "1,123456789"), -EINVAL); /* a 9-digit group */
    CHECK_INT(nmb_bitmap_parse_mask(&s, "ff,,1"), -EINVAL);
    CHECK_INT(nmb_bitmap_parse_mask(&s, "ff,"), -EINVAL);

    CHECK_INT(nmb_bitmap_set(&s, -1), -EINVAL);
    CHECK_INT(nmb_bitmap_set(&s, NMB_BITMAP_BITS), -EINVAL);
    CHECK_INT(nmb_bitmap_isset(&s, NMB_BITMAP_BITS), 0);

    /* Formatting reports the full length and never writes a partial piece. */
    CHECK_INT(nmb_bitmap_parse_list(&s, "0-3,100-200,300"), 0);
    int need = nmb_bitmap_format_list(&s, buf, 12);
    CHECK_INT(need, (int)strlen("0-3,100-200,300"));
    CHECK_STR(buf, "0-3,100-200");
    CHECK_INT(nmb_bitmap_format_list(&s, buf, 4), need);
    CHECK_STR(buf, "0-3");

    nmb_bitmap_parse_list(&s, "0-7");
    nmb_bitmap_parse_list(&t, "4-11");
    nmb_bitmap_t u;
    nmb_bitmap_and(&u, &s, &t);
    nmb_bitmap_format_list(&u, buf, sizeof buf);
    CHECK_STR(buf, "4-7");
    nmb_bitmap_andnot(&u, &s, &t);
    nmb_bitmap_format_list(&u, buf, sizeof buf);
    CHECK_STR(buf, "0-3");
    nmb_bitmap_or(&u, &s, &t);
    CHECK_INT(nmb_bitmap_count(&u), 12);
    CHECK(nmb_bitmap_is_subset(&s, &u));
    CHECK(!nmb_bitmap_is_subset(&u, &s));
    CHECK(nmb_bitmap_intersects(&s, &t));
    TEST_DONE();
}
