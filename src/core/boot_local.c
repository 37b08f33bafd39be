/* The in-process bootstrap: a mailbox per (sender, receiver) pair, FIFO like
 * MPI's matching of one tag on one communicator. */
#include "boot_local.h"
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct letter {
    struct letter *next;
    size_t bytes;
    char data[];
};

struct mailbox {
    struct letter *head, *tail;
};

struct cb_boot_world {
    int n;
    pthread_mutex_t lock;
    pthread_cond_t posted;
    struct mailbox *boxes;   /* [from * n + to] */
};

cb_status cb_boot_world_create(int n, struct cb_boot_world **out)
{
    struct cb_boot_world *w = calloc(1, sizeof *w);
    pthread_condattr_t attr;
    if (!w)
        return CB_ENOMEM;
    w->n = n;
    w->boxes = calloc((size_t)n * (size_t)n, sizeof *w->boxes);
    if (!w->boxes)
        goto free_world;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->posted, &attr);
    pthread_condattr_destroy(&attr);
    *out = w;
    return CB_OK;
free_world:
    free(w);
    return CB_ENOMEM;
}

void cb_boot_world_destroy(struct cb_boot_world *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n * w->n; i++)
        while (w->boxes[i].head) {
            struct letter *l = w->boxes[i].head;
            w->boxes[i].head = l->next;
            free(l);
        }
    pthread_cond_destroy(&w->posted);
    pthread_mutex_destroy(&w->lock);
    free(w->boxes);
    free(w);
}

int cb_boot_world_size(const struct cb_boot_world *w) { return w->n; }

static cb_status post(struct cb_boot_world *w, int from, int to, const void *data, size_t bytes)
{
    struct letter *l = malloc(sizeof *l + bytes);
    if (!l)
        return CB_ENOMEM;
    l->next = NULL;
    l->bytes = bytes;
    memcpy(l->data, data, bytes);
    struct mailbox *m = &w->boxes[from * w->n + to];
    if (m->tail)
        m->tail->next = l;
    else
        m->head = l;
    m->tail = l;
    return CB_OK;
}

/* How often a wait with a watch polls it. */
#define WATCH_EVERY_NS 10000000

static struct timespec timespec_of(int64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

/* Until a letter from `from` to `me` is there (CB_OK), the deadline passes
 * (CB_ETIMEOUT) or the watch fails (its status). Called and returns with
 * the lock held; the watch runs without it. */
static cb_status await_letter(struct cb_boot_world *w, int from, int me, int64_t end_ns,
                              const struct cb_boot_wait *how)
{
    struct mailbox *m = &w->boxes[from * w->n + me];
    while (!m->head) {
        int64_t now = cb_now_ns();
        if (now >= end_ns)
            return CB_ETIMEOUT;
        struct timespec until = timespec_of(how->watch && now + WATCH_EVERY_NS < end_ns ? now + WATCH_EVERY_NS
                                                                                       : end_ns);
        pthread_cond_timedwait(&w->posted, &w->lock, &until);
        if (m->head || !how->watch)
            continue;
        pthread_mutex_unlock(&w->lock);
        cb_status st = how->watch(how->watch_ctx);
        pthread_mutex_lock(&w->lock);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

static struct letter *take(struct cb_boot_world *w, int from, int me)
{
    struct mailbox *m = &w->boxes[from * w->n + me];
    struct letter *l = m->head;
    m->head = l->next;
    if (!m->head)
        m->tail = NULL;
    return l;
}

cb_status cb_boot_world_exchange(struct cb_boot_world *w, int me, const int *to, const void *sendbufs, int nto,
                                 const int *from, void *recvbufs, int nfrom, size_t bytes,
                                 const struct cb_boot_wait *how)
{
    int64_t end_ns = cb_now_ns() + (int64_t)how->timeout_ms * 1000000;
    cb_status st = CB_OK;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < nto && st == CB_OK; i++)
        st = post(w, me, to[i], (const char *)sendbufs + (size_t)i * bytes, bytes);
    pthread_cond_broadcast(&w->posted);
    for (int j = 0; j < nfrom && st == CB_OK; j++) {
        st = await_letter(w, from[j], me, end_ns, how);
        if (st == CB_ETIMEOUT)
            cb_log_error("%s: timed out after %d s waiting for rank %d (a thread of this process)", how->what,
                         how->timeout_ms / 1000, from[j]);
        if (st != CB_OK)
            break;
        struct letter *l = take(w, from[j], me);
        memcpy((char *)recvbufs + (size_t)j * bytes, l->data, l->bytes < bytes ? l->bytes : bytes);
        free(l);
    }
    pthread_mutex_unlock(&w->lock);
    return st;
}
