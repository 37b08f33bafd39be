/* libFuzzer harness: the benchmark's command line. The input is split into
 * arguments at NUL and newline bytes; a parse must end in CB_OK or
 * CB_EUSAGE, and an accepted command line must be self-consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/options.h"
#include "harness/sizes.h"

#define MAX_ARGS 24

static void check_accepted(const struct cb_options *o)
{
    struct cb_sizes s = {o->min_bytes, o->max_bytes, o->step_bytes, o->step_factor};
    size_t n;
    char why[256];
    if (o->min_bytes > o->max_bytes || cb_sizes_check(&s, &n, why, sizeof why) != 0 || o->ntypes < 1 ||
        o->ntypes > CB_NTYPES || o->nops < 1 || o->nops > CB_NOPS || o->nalgos < 1 || o->nalgos > CB_MAX_COMPARED ||
        o->iters < 1 || o->timeout_s < 1 || o->tcfg.timeout_ms != o->timeout_s * 1000)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *argv[MAX_ARGS + 2];
    int argc = 0;
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    argv[argc++] = "collbench";
    for (char *p = buf; argc <= MAX_ARGS && p <= buf + size;) {
        size_t n = strcspn(p, "\n");
        p[n] = 0;
        argv[argc++] = p;
        p += n + 1;
    }
    argv[argc] = NULL;
    struct cb_options o;
    int report = size > 0 && (data[0] & 1);   /* the messages' formatting is fuzzed too */
    cb_status st = cb_options_parse(argc, argv, &o, report);
    if (st != CB_OK && st != CB_EUSAGE)
        abort();
    if (st == CB_OK && !o.show_help)
        check_accepted(&o);
    free(buf);
    return 0;
}
