/* `collbench tune`'s file of cost-model terms: "key value" lines, # comments. */
#include "model.h"

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

static int parse_line(char *line, struct cb_cost *c)
{
    char key[64], val[64];
    if (sscanf(line, "%63s %63s", key, val) != 2)
        return -1;
    char *end;
    double v = strtod(val, &end);
    if (strcmp(key, "transport") == 0)
        return 0;
    if (*end)
        return -1;
    if (strcmp(key, "nranks") == 0)
        c->nranks = (int)v;
    else if (strcmp(key, "alpha_us") == 0)
        c->alpha_s = v * 1e-6;
    else if (strcmp(key, "beta_ns_per_byte") == 0)
        c->beta_s = v * 1e-9;
    else if (strcmp(key, "chunk_bytes") == 0)
        c->chunk_bytes = (size_t)v;
    else if (strncmp(key, "gamma_ns_per_byte.", 18) == 0 && cb_type_parse(key + 18) >= 0)
        c->gamma_s[cb_type_parse(key + 18)] = v * 1e-9;
    else
        return -1;
    return v >= 0 ? 0 : -1;
}

cb_status cb_cost_load(const char *path, struct cb_cost *c)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cb_log_error("cannot read the cost-model file %s: run `mpirun -np N collbench tune -o %s` first", path, path);
        return CB_EUSAGE;
    }
    char line[256];
    int lineno = 0;
    memset(c, 0, sizeof *c);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (parse_line(line, c) != 0) {
            cb_log_error("%s:%d: cannot read '%.*s': expected 'key value' as `collbench tune` writes",
                         path, lineno, (int)strcspn(line, "\n"), line);
            fclose(f);
            return CB_EUSAGE;
        }
    }
    fclose(f);
    c->valid = c->alpha_s > 0 || c->beta_s > 0;
    if (!c->valid)
        cb_log_error("%s has no alpha_us or beta_ns_per_byte: rerun `collbench tune`", path);
    return c->valid ? CB_OK : CB_EUSAGE;
}
