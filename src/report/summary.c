#include "report.h"

#include <string.h>
#include <time.h>

/* nresults counts the busbw figures folded into avg_busbw (one per placement
 * that ran), which is what a running mean needs: nccl-tests averages the
 * out-of-place and the in-place busbw of every row alike. */
static void add_half(struct cb_summary *s, const struct cb_result_half *h, size_t bytes)
{
    if (h->nwrong > 0) {   /* wrong elements count even without a throughput figure */
        s->total_wrong += h->nwrong;
        s->failed_checks++;
    }
    if (!h->ran)
        return;
    s->nresults++;
    s->avg_busbw += (h->busbw - s->avg_busbw) / s->nresults;
    if (s->nresults == 1 || h->busbw > s->peak_busbw) {
        s->peak_busbw = h->busbw;
        s->peak_bytes = bytes;
    }
}

void cb_summary_add(struct cb_summary *s, const struct cb_result *r)
{
    int first = s->nresults == 0;
    add_half(s, &r->oop, r->bytes);
    add_half(s, &r->ip, r->bytes);
    /* the largest size's out-of-place figure; in-place when only that ran */
    const struct cb_result_half *h = r->oop.ran ? &r->oop : r->ip.ran ? &r->ip : NULL;
    if (h && (first || r->bytes > s->largest_bytes)) {
        s->largest_busbw = h->busbw;
        s->largest_bytes = r->bytes;
    }
}

void cb_utc_now(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

void cb_cycles_add(struct cb_cycles *c, const struct cb_summary *s)
{
    struct cb_cycle *e = &c->recent[c->next];
    e->index = c->done++;
    e->s = *s;
    cb_utc_now(e->end_time, sizeof e->end_time);
    c->next = (c->next + 1) % CB_CYCLE_WINDOW;
    if (c->n < CB_CYCLE_WINDOW)
        c->n++;
}

const struct cb_cycle *cb_cycles_at(const struct cb_cycles *c, int i)
{
    int oldest = (c->next - c->n + CB_CYCLE_WINDOW) % CB_CYCLE_WINDOW;
    return &c->recent[(oldest + i) % CB_CYCLE_WINDOW];
}
