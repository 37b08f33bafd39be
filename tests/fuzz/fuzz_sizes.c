/* libFuzzer harness: the size parser and the sweep. Input: "MIN MAX STEP
 * FACTOR" as text. Every sweep the check accepts must go up from MIN, stay
 * at or below MAX, and have as many sizes as the check said. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/options.h"
#include "harness/sizes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[256], *save = NULL, *tok[4] = {0};
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1, count, got = 0;
    memcpy(text, data, n);
    text[n] = 0;
    for (int i = 0; i < 4; i++)
        tok[i] = strtok_r(i ? NULL : text, " ", &save);
    struct cb_sizes s = {0};
    if (!tok[0] || !tok[1] || cb_parse_size(tok[0], &s.min_bytes) || cb_parse_size(tok[1], &s.max_bytes))
        return 0;
    if (tok[2] && cb_parse_size(tok[2], &s.step_bytes))
        return 0;
    if (tok[3])
        s.step_factor = strtod(tok[3], NULL);
    char why[256];
    if (cb_sizes_check(&s, &count, why, sizeof why) != 0)
        return 0;
    size_t size_now = s.min_bytes, prev = 0;
    for (int more = 1; more; more = cb_sizes_next(&s, size_now, &size_now)) {
        if (size_now > s.max_bytes || (got > 0 && size_now <= prev) || ++got > count)
            abort();
        prev = size_now;
    }
    if (got != count)
        abort();
    return 0;
}
