/* `collbench tune`'s file of cost-model terms: "key value" lines, # comments. */
#include "model.h"
#include "core/checked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cb_status cb_cost_save(FILE *f, const struct cb_cost *c, const char *transport)
{
    fprintf(f, "# collbench tune: cost-model terms for --algo auto (COLLBENCH_TUNE_FILE=this file)\n");
    fprintf(f, "transport %s\nnranks %d\nalpha_us %.6g\nbeta_ns_per_byte %.6g\nchunk_bytes %zu\n", transport,
            c->nranks, c->alpha_s * 1e6, c->beta_s * 1e9, c->chunk_bytes);
    for (int t = 0; t < CB_NTYPES; t++)
        if (c->gamma_s[t] > 0)
            fprintf(f, "gamma_ns_per_byte.%s %.6g\n", cb_type_name((cb_type)t), c->gamma_s[t] * 1e9);
    return ferror(f) ? CB_ESYS : CB_OK;
}

/* Bounds of the values: a file beyond them was not written by `collbench
 * tune` on any machine, and inf, nan or 1e30 would make every prediction
 * meaningless (or the rank count overflow an int). */
#define COST_FILE_MAX_BYTES (64 * 1024)
#define COST_LINE_MAX 256
#define COST_TERM_MAX 1e6              /* us per step, ns per byte */
#define COST_CHUNK_MAX (1L << 30)

/* One value into its field; why[] says what is wrong. */
static int parse_value(const char *key, const char *val, struct cb_cost *c, char *why, size_t len)
{
    double v;
    long l;
    int t = strncmp(key, "gamma_ns_per_byte.", 18) == 0 ? cb_type_parse(key + 18) : -1;
    if (strcmp(key, "transport") == 0)
        return 0;
    if (strcmp(key, "nranks") == 0) {
        if (cb_parse_long(val, 1, CB_MODEL_MAX_RANKS, &l) == 0)
            return c->nranks = (int)l, 0;
        return snprintf(why, len, "nranks must be an integer from 1 to %d", CB_MODEL_MAX_RANKS), -1;
    }
    if (strcmp(key, "chunk_bytes") == 0) {
        if (cb_parse_long(val, 0, COST_CHUNK_MAX, &l) == 0)
            return c->chunk_bytes = (size_t)l, 0;
        return snprintf(why, len, "chunk_bytes must be an integer from 0 to %ld", COST_CHUNK_MAX), -1;
    }
    double *dst = strcmp(key, "alpha_us") == 0 ? &c->alpha_s : strcmp(key, "beta_ns_per_byte") == 0 ? &c->beta_s
                  : t >= 0 ? &c->gamma_s[t] : NULL;
    if (!dst)
        return snprintf(why, len, "unknown key"), -1;
    if (cb_parse_double(val, 0, COST_TERM_MAX, &v) != 0)
        return snprintf(why, len, "the value must be a finite number from 0 to %g", COST_TERM_MAX), -1;
    *dst = v * (dst == &c->alpha_s ? 1e-6 : 1e-9);
    return 0;
}

/* "key value", blanks around either; nothing after. */
static int parse_line(const char *line, size_t n, struct cb_cost *c, char *why, size_t len)
{
    char key[64], val[64];
    size_t i = 0, k, v;
    if (n >= COST_LINE_MAX)
        return snprintf(why, len, "line longer than %d characters", COST_LINE_MAX), -1;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    for (k = 0; i < n && line[i] != ' ' && line[i] != '\t' && k < sizeof key - 1; i++)
        key[k++] = line[i];
    key[k] = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    for (v = 0; i < n && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && v < sizeof val - 1; i++)
        val[v++] = line[i];
    val[v] = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (k == 0 || v == 0 || i < n || memchr(line, 0, n))
        return snprintf(why, len, "expected 'key value'"), -1;
    return parse_value(key, val, c, why, len);
}

static int is_blank_or_comment(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    return i == n || line[i] == '#';
}

cb_status cb_cost_parse(const char *text, size_t len, const char *name, struct cb_cost *c, int report)
{
    char shown[160], where[160], why[128];
    int lineno = 0;
    memset(c, 0, sizeof c[0]);
    for (size_t at = 0; at < len;) {
        const char *line = text + at, *nl = memchr(line, '\n', len - at);
        size_t n = nl ? (size_t)(nl - line) : len - at;
        at += n + 1;
        lineno++;
        if (is_blank_or_comment(line, n) && !memchr(line, 0, n))
            continue;
        if (parse_line(line, n, c, why, sizeof why) != 0) {
            char raw[COST_LINE_MAX + 1];
            size_t m = n < COST_LINE_MAX ? n : COST_LINE_MAX;
            memcpy(raw, line, m);
            raw[m] = 0;   /* an embedded NUL ends what is shown; the line is refused all the same */
            cb_escape(shown, sizeof shown, raw);
            cb_escape(where, sizeof where, name);
            if (report)
                cb_log_error("%s:%d: %s: '%s' is not a line `collbench tune` writes; rerun it", where, lineno, why,
                             shown);
            return CB_EUSAGE;
        }
    }
    c->valid = c->alpha_s > 0 || c->beta_s > 0;
    if (!c->valid && report) {
        cb_escape(where, sizeof where, name);
        cb_log_error("%s has no alpha_us or beta_ns_per_byte above 0: rerun `collbench tune`", where);
    }
    return c->valid ? CB_OK : CB_EUSAGE;
}

cb_status cb_cost_load(const char *path, struct cb_cost *c)
{
    char where[160];
    cb_escape(where, sizeof where, path);
    FILE *f = fopen(path, "r");
    if (!f) {
        cb_log_error("cannot read the cost-model file %s: run `mpirun -np N collbench tune -o %s` first", where, where);
        return CB_EUSAGE;
    }
    char *text = malloc(COST_FILE_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, COST_FILE_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!text)
        return CB_ENOMEM;
    cb_status st = CB_EUSAGE;
    if (n > COST_FILE_MAX_BYTES)
        cb_log_error("%s is larger than %d bytes: not a file `collbench tune` writes", where, COST_FILE_MAX_BYTES);
    else
        st = cb_cost_parse(text, n, path, c, 1);
    free(text);
    return st;
}
