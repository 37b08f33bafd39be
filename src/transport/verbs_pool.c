/* The slots a rank's shared-slot connections draw from (struct cb_peer's
 * shared_slots): one pool per device context, in chunks of a FIFO's worth
 * of slots, each chunk registered once. A receiver takes a slot when it
 * clears the sender for a message it expects and gives it back when the
 * message is released; a sender takes one to stage a message it does not
 * lend and gives it back when the write completed. So the pool is as large
 * as the most slots in use at once: what is in flight, not peers x slots.
 * An algorithm reserves what it holds at most once its connections are
 * made (one chunk of exactly that); past that the pool grows a FIFO's
 * worth at a time when empty, and it never shrinks (registration is slow;
 * a run repeats the same pattern), bounded by the memlock limit. */
#include "verbs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vpool_chunk {
    struct vpool_chunk *next;
    char *mem;
    struct ibv_mr *mr;
    struct vslot slots[];
};

/* A chunk of n slots, registered. */
static cb_status add_chunk(struct vctx *t, int n, const struct cb_peer *peer)
{
    size_t bytes = vb_page_round((size_t)n * t->cfg.slot_bytes);
    cb_status st = vb_check_memlock(t, bytes, "the shared receive pool", peer);
    if (st)
        return st;
    struct vpool_chunk *k = calloc(1, sizeof *k + (size_t)n * sizeof k->slots[0]);
    if (!k || posix_memalign((void **)&k->mem, 4096, bytes)) {
        cb_log_error("verbs: out of memory for %zu more bytes of the shared receive pool", bytes);
        st = CB_ENOMEM;
        goto free_chunk;
    }
    k->mr = ibv_reg_mr(t->pd, k->mem, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | vb_data_access(t));
    if (!k->mr) {
        cb_log_error("verbs: %s:%d: registering %zu more bytes of the shared receive pool failed: %s (ulimit -l?)",
                     t->dev, t->port, bytes, strerror(errno));
        st = CB_EDEVICE;
        goto free_chunk;
    }
    for (int i = 0; i < n; i++) {
        k->slots[i] = (struct vslot){k->mem + (size_t)i * t->cfg.slot_bytes, k->mr->lkey, k->mr->rkey, t->pool_free};
        t->pool_free = &k->slots[i];
    }
    k->next = t->pool;
    t->pool = k;
    t->pool_slots += n;
    t->pool_bytes += bytes;
    t->registered += bytes;
    return CB_OK;

free_chunk:
    if (k)
        free(k->mem);
    free(k);
    return st;
}

/* What is missing in one chunk (verbs.c's pool geometry counts the same). */
cb_status vb_pool_reserve(struct vctx *t, int slots)
{
    cb_status st = t->pool_slots < slots ? add_chunk(t, slots - t->pool_slots, NULL) : CB_OK;
    t->pool_reserved = slots > t->pool_reserved ? slots : t->pool_reserved;
    return st;
}

cb_status vb_pool_take(struct vctx *t, const struct cb_peer *peer, struct vslot **out)
{
    cb_status st = CB_OK;
    if (!t->pool_free) {
        if (t->pool_reserved)
            cb_log_info("verbs: %s:%d on %s: the shared slot pool grows past the %d slots reserved for the "
                        "algorithm to %d (more slots in flight at once than it counts): registered inside a "
                        "run", t->dev, t->port, t->cfg.host, t->pool_reserved, t->pool_slots + t->cfg.nslots);
        st = add_chunk(t, t->cfg.nslots, peer);
    }
    if (st)
        return st;
    *out = t->pool_free;
    t->pool_free = (*out)->next_free;
    return CB_OK;
}

void vb_pool_give(struct vctx *t, struct vslot *s)
{
    s->next_free = t->pool_free;
    t->pool_free = s;
}

void vb_pool_destroy(struct vctx *t)
{
    while (t->pool) {
        struct vpool_chunk *k = t->pool;
        t->pool = k->next;
        ibv_dereg_mr(k->mr);
        free(k->mem);
        free(k);
    }
    t->registered -= t->pool_bytes;
    t->pool_bytes = 0;
    t->pool_slots = 0;
    t->pool_free = NULL;
}
