/* The parsers of single sysfs and /proc values, each run on every input:
 * port state and physical state ("4: ACTIVE"), rate ("400 Gb/sec (4X
 * NDR)"), PCIe link speed ("32.0 GT/s PCIe"), link layer, a node's meminfo
 * MemTotal, a /proc/self/status field, PCI addresses and host-bridge
 * directory names. Each must stay inside its input and give an answer in
 * its documented range. */
#include <ctype.h>
#include <math.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *s = fuzz_cstr(data, size);

    int state = nmb__parse_state(s);
    FUZZ_ASSERT(state == -EINVAL || (state >= 0 && state <= 255));
    if (state >= 0) {
        const char *p = s;
        while (isspace((unsigned char)*p))
            p++;
        FUZZ_ASSERT(strtol(p, NULL, 10) == state);
    }

    double rate = nmb__parse_rate_gbps(s);
    FUZZ_ASSERT(rate == -1 || (rate >= 0 && rate <= 1e6 && !isnan(rate)));
    if (rate >= 0)
        FUZZ_ASSERT(strstr(s, "b/sec") != NULL);

    double speed = nmb__parse_link_speed(s);
    FUZZ_ASSERT(speed == 0 || (speed > 0 && speed <= 1e4));
    if (speed > 0)
        FUZZ_ASSERT(strstr(s, "GT/s") != NULL);

    int layer = nmb__parse_link_layer(s);
    FUZZ_ASSERT(layer == NMB_LINK_UNSPECIFIED || layer == NMB_LINK_INFINIBAND || layer == NMB_LINK_ETHERNET);

    long long mem = nmb__parse_meminfo_total(s);
    FUZZ_ASSERT(mem == -1 || (mem >= 0 && mem % 1024 == 0));
    if (mem >= 0)
        FUZZ_ASSERT(strstr(s, "MemTotal:") != NULL);

    /* A status field, into a buffer of a size the input picks. */
    char out[300];
    size_t len = size ? 1 + data[0] % (sizeof out - 1) : 1;
    memset(out, 'X', sizeof out);
    static const char *const keys[] = {"Cpus_allowed_list", "Mems_allowed_list", "Cpus_allowed"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        int err = nmb__status_field(s, keys[k], out, len);
        FUZZ_ASSERT(err == 0 || err == -ENOENT || err == -ERANGE);
        if (err == 0) {
            size_t n = strlen(out);
            FUZZ_ASSERT(n < len && !memchr(out, '\n', n));
            FUZZ_ASSERT(n == 0 || !strchr(" \t\r", out[n - 1])); /* trimmed as nmb__rstrip trims */
            FUZZ_ASSERT(strstr(s, keys[k]) != NULL);
        }
    }

    /* PCI addresses: what parses prints back to the same parts. */
    unsigned d, b, v, f;
    if (nmb__parse_pci_address(s, &d, &b, &v, &f) == 0) {
        char again[64];
        unsigned d2, b2, v2, f2;
        FUZZ_ASSERT(b <= 0xff && v <= 31 && f <= 7);
        snprintf(again, sizeof again, "%04x:%02x:%02x.%x", d, b, v, f);
        FUZZ_ASSERT(nmb__parse_pci_address(again, &d2, &b2, &v2, &f2) == 0);
        FUZZ_ASSERT(d == d2 && b == b2 && v == v2 && f == f2);
        FUZZ_ASSERT(strlen(s) >= 12 && strlen(s) <= 16);
    }
    if (nmb__is_host_bridge_name(s))
        FUZZ_ASSERT(strncmp(s, "pci", 3) == 0 && strchr(s, ':') != NULL);

    /* rstrip trims only trailing white space, in place. */
    size_t before = strlen(s);
    nmb__rstrip(s);
    size_t after = strlen(s);
    FUZZ_ASSERT(after <= before);
    FUZZ_ASSERT(after == 0 || !strchr("\n \t\r", s[after - 1]));
    free(s);
    return 0;
}
