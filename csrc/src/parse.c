/* Parsers of the values sysfs, /proc and the environment hold. Each takes
 * untrusted text and must never read past its end: they are fuzz targets. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int hex_run(const char **p, int min_digits, int max_digits, unsigned *out)
{
    const char *s = *p;
    unsigned v = 0;
    int n = 0;
    while (n < max_digits && isxdigit((unsigned char)*s)) {
        int c = tolower((unsigned char)*s);
        v = v * 16 + (unsigned)(isdigit(c) ? c - '0' : c - 'a' + 10);
        s++;
        n++;
    }
    if (n < min_digits)
        return -EINVAL;
    *p = s;
    *out = v;
    return 0;
}

int nmb__parse_pci_address(const char *text, unsigned *domain, unsigned *bus, unsigned *dev,
                           unsigned *fn)
{
    const char *p = text;
    unsigned d, b, v, f;
    /* Domains are 4 hex digits, 5+ behind Intel VMD ("10000:e0:00.0"). */
    if (hex_run(&p, 4, 8, &d) < 0 || *p++ != ':')
        return -EINVAL;
    if (hex_run(&p, 2, 2, &b) < 0 || *p++ != ':')
        return -EINVAL;
    if (hex_run(&p, 2, 2, &v) < 0 || *p++ != '.')
        return -EINVAL;
    if (hex_run(&p, 1, 1, &f) < 0 || *p)
        return -EINVAL;
    if (v > 31 || f > 7)
        return -EINVAL;
    if (domain) *domain = d;
    if (bus) *bus = b;
    if (dev) *dev = v;
    if (fn) *fn = f;
    return 0;
}

int nmb__is_host_bridge_name(const char *name)
{
    const char *p = name;
    unsigned d, b;
    if (strncmp(p, "pci", 3) != 0)
        return 0;
    p += 3;
    if (hex_run(&p, 4, 8, &d) < 0 || *p++ != ':')
        return 0;
    return hex_run(&p, 2, 2, &b) == 0 && *p == '\0';
}

int nmb__parse_state(const char *text)
{
    const char *p = text;
    long v = 0;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        if (v > 255)
            return -EINVAL;
        p++;
    }
    if (*p && *p != ':' && !isspace((unsigned char)*p))
        return -EINVAL;
    return (int)v;
}

/* A decimal number as sysfs prints it ("400", "2.5", "32.0"), read without
 * strtod: strtod follows LC_NUMERIC, so in a program that set a
 * decimal-comma locale (setlocale(LC_ALL, "") under de_DE) "2.5" read as 2
 * and the rest as garbage. No sign, exponent, hex, inf or nan: the kernel
 * writes none. Leading blanks are skipped, as strtod did. -1 when no digit. */
static double parse_decimal(const char *text, const char **end)
{
    const char *p = text;
    double v = 0, frac = 0, den = 1;
    int digits = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    for (; isdigit((unsigned char)*p); p++, digits++)
        if (v < 1e12)
            v = v * 10 + (*p - '0');
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (den < 1e15) /* the fraction once, exactly where it can be: 53.125 */
                frac = frac * 10 + (*p - '0'), den *= 10;
    *end = digits ? p : text;
    return digits ? v + frac / den : -1;
}

double nmb__parse_rate_gbps(const char *text)
{
    const char *end;
    double v = parse_decimal(text, &end);
    if (v < 0 || v > 1e6)
        return -1;
    while (*end == ' ')
        end++;
    if (strncmp(end, "Gb/sec", 6) == 0)
        return v;
    if (strncmp(end, "Mb/sec", 6) == 0)
        return v / 1000.0;
    return -1;
}

double nmb__parse_link_speed(const char *text)
{
    const char *end;
    double v = parse_decimal(text, &end);
    if (!(v > 0) || v > 1e4)
        return 0;
    while (*end == ' ')
        end++;
    return strncmp(end, "GT/s", 4) == 0 ? v : 0;
}

int nmb__parse_link_layer(const char *text)
{
    if (strncmp(text, "InfiniBand", 10) == 0)
        return NMB_LINK_INFINIBAND;
    if (strncmp(text, "Ethernet", 8) == 0)
        return NMB_LINK_ETHERNET;
    return NMB_LINK_UNSPECIFIED;
}

int nmb__status_field(const char *status, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    const char *line = status;
    while (line && *line) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strcspn(v, "\n");
            if (n >= len)
                return -ERANGE;
            memcpy(out, v, n);
            out[n] = '\0';
            nmb__rstrip(out);
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -ENOENT;
}

long long nmb__parse_meminfo_total(const char *text)
{
    const char *p = strstr(text, "MemTotal:");
    if (!p)
        return -1;
    p += 9;
    char *end;
    long long kb = strtoll(p, &end, 10);
    if (end == p || kb < 0 || kb > (1LL << 50))
        return -1;
    return kb * 1024;
}

/* One entry, trimmed, into buf; "" when the entry is empty. */
static size_t next_entry(const char **p, char *buf, size_t len)
{
    const char *s = *p;
    size_t n = strcspn(s, ",");
    const char *a = s, *b = s + n;
    while (a < b && isspace((unsigned char)*a))
        a++;
    while (b > a && isspace((unsigned char)b[-1]))
        b--;
    size_t m = (size_t)(b - a);
    if (m >= len) {
        buf[0] = '\0';
        *p = s;
        return (size_t)-1; /* too long to be a GPU index or UUID */
    }
    memcpy(buf, a, m);
    buf[m] = '\0';
    *p = s[n] ? s + n + 1 : s + n;
    return n;
}

/* A bad CUDA_VISIBLE_DEVICES: -EINVAL with a detail that quotes it, and
 * nmb_last_error_variable() naming it. */
#define CVD "CUDA_VISIBLE_DEVICES"
#define bad_cvd(...) nmb__fail_env(CVD, -EINVAL, __VA_ARGS__)

int nmb__parse_cuda_visible(const char *text, const char *const *uuids, int num, int *order)
{
    const char *p = text;
    int count = 0;
    char entry[128];
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0; /* CUDA_VISIBLE_DEVICES="" hides every GPU */
    for (;;) {
        if (next_entry(&p, entry, sizeof entry) == (size_t)-1)
            return bad_cvd(CVD " entry '%.40s...' is too long to name a GPU", p);
        int found = -1;
        if (!entry[0])
            return bad_cvd(CVD "='%.200s': empty entry", text);
        if (isdigit((unsigned char)entry[0]) || entry[0] == '-' || entry[0] == '+') {
            char *end;
            errno = 0;
            long v = strtol(entry, &end, 10);
            if (*end || errno)
                return bad_cvd(CVD " entry '%s' is not a GPU index or UUID", entry);
            if (v < 0 || v >= num)
                return bad_cvd(CVD " entry '%s' names no GPU (this machine has %d)", entry, num);
            found = (int)v;
        } else if (strncmp(entry, "MIG-", 4) == 0) {
            return bad_cvd(CVD " entry '%s' is a MIG instance; numabind places whole GPUs", entry);
        } else if (strncmp(entry, "GPU-", 4) == 0) {
            size_t n = strlen(entry);
            int known = 0;
            for (int i = 0; i < num; i++) {
                if (!uuids || !uuids[i])
                    continue;
                known++;
                if (strncmp(uuids[i], entry, n) == 0) {
                    if (found >= 0)
                        return bad_cvd(CVD " entry '%s' matches more than one GPU", entry);
                    found = i;
                }
            }
            if (found < 0)
                return bad_cvd(CVD " entry '%s' names no GPU%s",
                               entry, known ? "" : " (no GPU UUIDs are known here: NVML is absent)");
        } else {
            return bad_cvd(CVD " entry '%s' is not a GPU index or UUID", entry);
        }
        for (int i = 0; i < count; i++)
            if (order[i] == found)
                return bad_cvd(CVD " entry '%s' repeats a GPU", entry);
        if (count >= num)
            return bad_cvd(CVD "='%.200s' lists more GPUs than exist", text);
        order[count++] = found;
        if (!*p)
            break;
    }
    return count;
}
