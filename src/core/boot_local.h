/* An in-process bootstrap: the ranks of a job are threads of one process,
 * their exchanges go through mailboxes in memory. For tests of channels,
 * algorithms and collectives without mpirun (tests/unit/test_algos.c); the
 * benchmark always boots over MPI (bootstrap.h). */
#ifndef CB_BOOT_LOCAL_H
#define CB_BOOT_LOCAL_H

#include <stddef.h>
#include "bootstrap.h"

struct cb_boot_world;

/* A world of n ranks; each joins from its own thread. */
cb_status cb_boot_world_create(int n, struct cb_boot_world **out);
void cb_boot_world_destroy(struct cb_boot_world *w);
int cb_boot_world_size(const struct cb_boot_world *w);
/* Rank `rank` of the world joins: collective (waits for the others, bounded
 * by timeout_ms); cb_boot_finalize undoes it. */
cb_status cb_boot_local_join(struct cb_boot_world *w, int rank, int timeout_ms, struct cb_boot **out);

/* cb_boot_exchange for a world's rank: sends are buffered, receives wait
 * (bounded, naming the peer) for the next message from each sender, polling
 * watch(watch_ctx) meanwhile when watch is set (bootstrap.h). */
struct cb_boot_wait {
    int timeout_ms;
    const char *what;
    cb_boot_watch_fn watch;
    void *watch_ctx;
};
cb_status cb_boot_world_exchange(struct cb_boot_world *w, int me, const int *to, const void *sendbufs, int nto,
                                 const int *from, void *recvbufs, int nfrom, size_t bytes,
                                 const struct cb_boot_wait *how);

#endif
