/* Memory the ranks of one machine share for shm's direct path: collective
 * buffers allocated as memfds (each rank's own windows), and the peers'
 * windows mapped here on first use through /proc/PID/fd/N, the way the FIFOs
 * are. Like the FIFOs, nothing is left in /dev/shm on any exit path. */
#ifndef CB_SHM_WINDOW_H
#define CB_SHM_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include "transport.h"

struct shm_window {
    void *base;
    size_t bytes;
    int fd;
    uint64_t serial;   /* unique in this process: a freed window's fd number can come back */
    struct shm_window *next;
};

/* A new window of `bytes` (a multiple of the page size) on *list, numbered
 * from *serial; NULL when out of memory. */
void *cb_shm_window_alloc(struct shm_window **list, uint64_t *serial, size_t bytes);
/* Unmap and forget the window at `base` (which must be on *list). */
void cb_shm_window_free(struct shm_window **list, void *base);
/* The window that holds [p, p + n), or NULL. */
const struct shm_window *cb_shm_window_find(const struct shm_window *list, const void *p, size_t n);

#define SHM_PEER_MAPS 8
/* A peer's windows as mapped in this process, per connection. */
struct shm_peer_maps {
    int n;
    struct { int fd; uint64_t serial; char *base; size_t bytes; } m[SHM_PEER_MAPS];
};

/* Where the peer's window (pid, fd, serial) of `bytes` is in this process,
 * mapped on first use; NULL when it cannot be mapped, and `why` says why
 * (the caller logs it: what follows differs). */
char *cb_shm_peer_window(struct shm_peer_maps *maps, int pid, int fd, uint64_t serial, size_t bytes,
                      const struct cb_peer *peer, char *why, size_t why_bytes);
void cb_shm_peer_unmap_all(struct shm_peer_maps *maps);

#endif
