#include "checked.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strto* skip leading spaces and take a sign: refuse both up front. */
static int starts_like_a_number(const char *s, int allow_minus)
{
    return s && (isdigit((unsigned char)*s) || (allow_minus && *s == '-' && isdigit((unsigned char)s[1])) ||
                 (*s == '.' && isdigit((unsigned char)s[1])));
}

int cb_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (!starts_like_a_number(s, lo < 0) || *s == '.')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cb_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!starts_like_a_number(s, 0) || *s == '.')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > UINT64_MAX)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int cb_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!starts_like_a_number(s, lo < 0))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

void cb_escape(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    if (len == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char one[5];
        int w = *p >= 0x20 && *p < 0x7f ? snprintf(one, sizeof one, "%c", *p) : snprintf(one, sizeof one, "\\x%02x", *p);
        if (n + (size_t)w + 1 > len) {
            if (len > 4)
                memcpy(dst + (n + 4 <= len ? n : len - 4), "...", 4);
            else
                dst[n] = 0;
            return;
        }
        memcpy(dst + n, one, (size_t)w);
        n += (size_t)w;
    }
    dst[n] = 0;
}
