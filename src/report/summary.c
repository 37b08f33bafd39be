#include "report.h"

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
