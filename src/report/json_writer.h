/* A small streaming JSON emitter (no dependency), shared by every JSON file
 * collbench writes (-J, pairs -J, nccl-tests' -J layout): layout,
 * separators, string escaping (invalid UTF-8 becomes U+FFFD so the file
 * still parses) and numbers that read back exactly (NaN and Inf, which JSON
 * lacks, become null). The nccl-tests dialect (cb_jw_init_nccl) writes as
 * nccl-tests does, for its analysis tools: compact, ASCII only with '/'
 * escaped, doubles as "%f" and NaN as the string "nan". Misuse
 * (a value where a key is due, nesting too deep) marks the writer broken
 * instead of writing invalid JSON: check cb_jw_done before keeping the file. */
#ifndef CB_JSON_WRITER_H
#define CB_JSON_WRITER_H

#include <stddef.h>
#include <stdio.h>

#define CB_JW_MAX_DEPTH 16

struct cb_jw_level {
    char close;      /* '}' or ']' */
    int count;       /* values (or keys) written so far */
    int multiline;   /* objects always; arrays once they hold an object */
};

struct cb_jw {
    FILE *f;
    int depth;
    struct cb_jw_level level[CB_JW_MAX_DEPTH];
    int after_key;   /* the next value completes a "key": pair */
    int broken;      /* nesting went wrong: a bug, the file must not be kept */
    int nccl;        /* nccl-tests' dialect */
};

void cb_jw_init(struct cb_jw *w, FILE *f);
void cb_jw_init_nccl(struct cb_jw *w, FILE *f);
/* Every object and array closed, nothing misused; ends the document with a newline. */
int cb_jw_done(struct cb_jw *w);

void cb_jw_open(struct cb_jw *w, char open);   /* '{' or '[' */
void cb_jw_close(struct cb_jw *w);
void cb_jw_key(struct cb_jw *w, const char *key);
void cb_jw_null(struct cb_jw *w);
void cb_jw_string(struct cb_jw *w, const char *s);   /* NULL: null */
void cb_jw_int(struct cb_jw *w, long long v);
void cb_jw_size(struct cb_jw *w, size_t v);
void cb_jw_bool(struct cb_jw *w, int v);
void cb_jw_double(struct cb_jw *w, double v);
void cb_jw_doubles(struct cb_jw *w, const double *v, size_t n);

/* key/value shorthands */
void cb_jw_kv_string(struct cb_jw *w, const char *k, const char *v);
void cb_jw_kv_int(struct cb_jw *w, const char *k, long long v);
void cb_jw_kv_size(struct cb_jw *w, const char *k, size_t v);
void cb_jw_kv_double(struct cb_jw *w, const char *k, double v);
void cb_jw_kv_bool(struct cb_jw *w, const char *k, int v);

#endif
