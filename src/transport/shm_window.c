#include "shm_window.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void *cb_shm_window_alloc(struct shm_window **list, uint64_t *serial, size_t bytes)
{
    struct shm_window *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = memfd_create("collbench-buffer", MFD_CLOEXEC);
    if (w->fd < 0)
        goto free_window;
    fchmod(w->fd, 0600);
    if (ftruncate(w->fd, (off_t)bytes) != 0)
        goto close_fd;
    w->base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
    if (w->base == MAP_FAILED)
        goto close_fd;
    w->bytes = bytes;
    w->serial = ++*serial;
    w->next = *list;
    *list = w;
    return w->base;
close_fd:
    close(w->fd);
free_window:
    free(w);
    return NULL;
}

void cb_shm_window_free(struct shm_window **list, void *base)
{
    for (struct shm_window **p = list; *p; p = &(*p)->next) {
        struct shm_window *w = *p;
        if (w->base != base)
            continue;
        *p = w->next;
        munmap(w->base, w->bytes);
        close(w->fd);
        free(w);
        return;
    }
}

const struct shm_window *cb_shm_window_find(const struct shm_window *list, const void *p, size_t n)
{
    const char *c = p;
    for (const struct shm_window *w = list; w; w = w->next)
        if (c >= (const char *)w->base && c + n <= (const char *)w->base + w->bytes)
            return w;
    return NULL;
}

char *cb_shm_peer_window(struct shm_peer_maps *maps, int pid, int fd, uint64_t serial, size_t bytes,
                      const struct cb_peer *peer, char *why, size_t why_bytes)
{
    for (int i = 0; i < maps->n; i++)
        if (maps->m[i].fd == fd && maps->m[i].serial == serial)
            return maps->m[i].base;
    if (maps->n == SHM_PEER_MAPS) {   /* the oldest goes: the peer has freed it or will offer it again */
        munmap(maps->m[0].base, maps->m[0].bytes);
        memmove(&maps->m[0], &maps->m[1], sizeof maps->m[0] * (SHM_PEER_MAPS - 1));
        maps->n--;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
    int mfd = open(path, O_RDWR | O_CLOEXEC);
    void *base = mfd < 0 ? MAP_FAILED : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    int err = errno;
    if (mfd >= 0)
        close(mfd);
    if (base == MAP_FAILED) {
        snprintf(why, why_bytes, "rank %d (host %s), %s: %s", peer->rank, peer->host, path, strerror(err));
        return NULL;
    }
    maps->m[maps->n].fd = fd;
    maps->m[maps->n].serial = serial;
    maps->m[maps->n].base = base;
    maps->m[maps->n].bytes = bytes;
    return maps->m[maps->n++].base;
}

void cb_shm_peer_unmap_all(struct shm_peer_maps *maps)
{
    for (int i = 0; i < maps->n; i++)
        munmap(maps->m[i].base, maps->m[i].bytes);
    maps->n = 0;
}
