/* See json_writer.h. */
#include "json_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cb_jw_init(struct cb_jw *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
}

void cb_jw_init_nccl(struct cb_jw *w, FILE *f)
{
    cb_jw_init(w, f);
    w->nccl = 1;
}

int cb_jw_done(struct cb_jw *w)
{
    fputc('\n', w->f);
    return !w->broken && w->depth == 0 && !w->after_key;
}

static void newline_indent(struct cb_jw *w)
{
    if (w->nccl)
        return;
    fprintf(w->f, "\n%*s", 2 * w->depth, "");
}

/* Separator and layout before a value; `block` says the value is an object. */
static void before_value(struct cb_jw *w, int block)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0)
        return;
    struct cb_jw_level *l = &w->level[w->depth - 1];
    if (l->close == '}') {   /* a value in an object needs a key first */
        w->broken = 1;
        return;
    }
    if (l->count++ > 0)
        fputc(',', w->f);
    if (block)
        l->multiline = 1;
    if (l->multiline)
        newline_indent(w);
}

static void put_string(const struct cb_jw *w, const char *s);

void cb_jw_key(struct cb_jw *w, const char *key)
{
    struct cb_jw_level *l = w->depth > 0 ? &w->level[w->depth - 1] : NULL;
    if (!l || l->close != '}' || w->after_key) {
        w->broken = 1;
        return;
    }
    if (l->count++ > 0)
        fputc(',', w->f);
    newline_indent(w);
    put_string(w, key);
    fputs(w->nccl ? ":" : ": ", w->f);
    w->after_key = 1;
}

void cb_jw_open(struct cb_jw *w, char open)
{
    /* objects, and arrays inside arrays (per-rank samples), start on their own line */
    int in_array = w->depth > 0 && w->level[w->depth - 1].close == ']';
    before_value(w, open == '{' || in_array);
    if (w->depth == CB_JW_MAX_DEPTH) {
        w->broken = 1;
        return;
    }
    fputc(open, w->f);
    w->level[w->depth++] = (struct cb_jw_level){open == '{' ? '}' : ']', 0, open == '{'};
}

void cb_jw_close(struct cb_jw *w)
{
    if (w->depth == 0 || w->after_key) {
        w->broken = 1;
        return;
    }
    struct cb_jw_level l = w->level[--w->depth];
    if (l.multiline && l.count > 0)
        newline_indent(w);
    fputc(l.close, w->f);
}

/* Length of the valid UTF-8 sequence at s, 0 if invalid (overlongs,
 * surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)   /* also stops at the terminating NUL */
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void put_escaped_char(FILE *f, unsigned char c)
{
    switch (c) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\b': fputs("\\b", f); break;
    case '\f': fputs("\\f", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
        if (c < 0x20 || c == 0x7F)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/* Valid UTF-8 passes through; a byte that is not (argv from a Latin-1
 * shell, say) becomes U+FFFD so the file still parses. */
static void put_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        size_t len = utf8_sequence(p);
        if (len == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (len == 1) {
            put_escaped_char(f, *p++);
        } else {
            fwrite(p, 1, len, f);
            p += len;
        }
    }
    fputc('"', f);
}

/* nccl-tests' escaping: ASCII only, '/' escaped, a byte past 0x7e as
 * U+FFFD (so a UTF-8 character becomes one U+FFFD per byte, as there). */
static void put_ascii_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '/')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p < 0x80 ? *p : 0xfffd);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_string(const struct cb_jw *w, const char *s)
{
    if (w->nccl)
        put_ascii_escaped(w->f, s);
    else
        put_escaped(w->f, s);
}

void cb_jw_null(struct cb_jw *w)
{
    before_value(w, 0);
    fputs("null", w->f);
}

void cb_jw_string(struct cb_jw *w, const char *s)
{
    if (!s) {
        cb_jw_null(w);
        return;
    }
    before_value(w, 0);
    put_string(w, s);
}

void cb_jw_int(struct cb_jw *w, long long v)
{
    before_value(w, 0);
    fprintf(w->f, "%lld", v);
}

void cb_jw_size(struct cb_jw *w, size_t v)
{
    before_value(w, 0);
    fprintf(w->f, "%zu", v);
}

void cb_jw_bool(struct cb_jw *w, int v)
{
    before_value(w, 0);
    fputs(v ? "true" : "false", w->f);
}

/* The shortest of %.15g..%.17g that reads back exactly (nccl-tests: "%f");
 * JSON has no NaN or Inf. */
void cb_jw_double(struct cb_jw *w, double v)
{
    if (w->nccl && isnan(v)) {
        cb_jw_string(w, "nan");
        return;
    }
    if (!isfinite(v)) {
        cb_jw_null(w);
        return;
    }
    char buf[352];   /* "%f" of DBL_MAX is 316 characters */
    if (w->nccl)
        snprintf(buf, sizeof buf, "%f", v);
    for (int prec = 15; prec <= 17 && !w->nccl; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    before_value(w, 0);
    fputs(buf, w->f);
}

void cb_jw_doubles(struct cb_jw *w, const double *v, size_t n)
{
    cb_jw_open(w, '[');
    for (size_t i = 0; i < n; i++)
        cb_jw_double(w, v[i]);
    cb_jw_close(w);
}

void cb_jw_kv_string(struct cb_jw *w, const char *k, const char *v) { cb_jw_key(w, k); cb_jw_string(w, v); }
void cb_jw_kv_int(struct cb_jw *w, const char *k, long long v) { cb_jw_key(w, k); cb_jw_int(w, v); }
void cb_jw_kv_size(struct cb_jw *w, const char *k, size_t v) { cb_jw_key(w, k); cb_jw_size(w, v); }
void cb_jw_kv_double(struct cb_jw *w, const char *k, double v) { cb_jw_key(w, k); cb_jw_double(w, v); }
void cb_jw_kv_bool(struct cb_jw *w, const char *k, int v) { cb_jw_key(w, k); cb_jw_bool(w, v); }

