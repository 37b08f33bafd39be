/* Collective buffers registered with the device (alloc_shared), so that a
 * send whose source stays unchanged (send_lend) is RDMA-written
 * straight from the user's buffer (no copy into a staging slot), and a
 * receive that only copies out can offer its destination (recv_offer) for
 * the peer to write into (no copy out of the receive slot). Registered
 * once, when the harness allocates its buffers, never in the timed loop. A
 * buffer the memlock limit or the device will not register is still handed
 * out; its sends then go through the staging slots as usual. */
#include "verbs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Register [base, base + bytes) with this device, or warn once that it could not be. */
static struct vwindow *add_window(struct vctx *t, void *base, size_t bytes)
{
    struct vwindow *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->base = base;
    w->bytes = bytes;
    errno = 0;
    if (vb_memlock_room(t, bytes))
        w->mr = ibv_reg_mr(t->pd, w->base, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | vb_data_access(t));
    if (w->mr)
        t->registered += bytes;
    else if (!t->window_warned++)
        cb_log_warn("verbs: %s:%d: a %zu-byte buffer could not be registered (%s): its data is copied into the "
                    "staging slots (raise `ulimit -l` to avoid it)", t->dev, t->port, bytes,
                    errno ? strerror(errno) : "memlock limit");
    w->next = t->windows;
    t->windows = w;
    return w;
}

void *vb_alloc_shared(void *tctx, size_t bytes)
{
    struct vctx *t = tctx;
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    struct vwindow *w = add_window(t, base, bytes);
    if (!w) {
        munmap(base, bytes);
        return NULL;
    }
    w->owns_memory = 1;
    return base;
}

void vb_window_register(struct vctx *t, void *base, size_t bytes)
{
    add_window(t, base, bytes);   /* without it, sends from this buffer go through the staging slots */
}

void vb_free_shared(void *tctx, void *p)
{
    struct vctx *t = tctx;
    for (struct vwindow **link = &t->windows; *link; link = &(*link)->next) {
        struct vwindow *w = *link;
        if (w->base != p)
            continue;
        *link = w->next;
        if (w->mr) {
            ibv_dereg_mr(w->mr);
            t->registered -= w->bytes;
        }
        if (w->owns_memory)
            munmap(w->base, w->bytes);
        free(w);
        return;
    }
}

const struct ibv_mr *vb_window_mr(const struct vctx *t, const void *p, size_t n)
{
    const char *c = p;
    for (const struct vwindow *w = t->windows; w; w = w->next)
        if (w->mr && c >= (const char *)w->base && c + n <= (const char *)w->base + w->bytes)
            return w->mr;
    return NULL;
}
