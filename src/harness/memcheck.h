/* Before anything is allocated: the memory a rank needs at the largest size,
 * and whether this host can hold it for all of its ranks (MemAvailable, and
 * the room left under the cgroup's memory.max). A run that does not fit is
 * refused with the figures and the largest -e that fits, instead of being
 * OOM-killed half way (or the OOM killer picking another process). */
#ifndef CB_MEMCHECK_H
#define CB_MEMCHECK_H

#include <stddef.h>
#include "options.h"

struct cb_mem_need {
    size_t buffers;   /* send, receive and expected at the largest size */
    size_t scratch;   /* the algorithms' scratch at the largest size */
    size_t premul;    /* -o with mulsum: an odd rank's pre-multiplied input (counted for every rank) */
    size_t fifos;     /* FIFO slots of connections to every peer, every channel */
    size_t samples;   /* per-iteration times rank 0 keeps for every row (-I 1) */
    size_t per_rank;  /* buffers + scratch + premul + fifos */
};

/* What one rank of nranks needs (samples: what rank 0 needs besides).
 * 0, or -1 when a figure does not fit a size_t. */
int cb_mem_need(const struct cb_options *o, int nranks, struct cb_mem_need *need);
/* What a host with `local` ranks (rank 0 among them when rank0_here) needs; SIZE_MAX on overflow. */
size_t cb_mem_host_need(const struct cb_options *o, int nranks, int local, int rank0_here);

/* MemAvailable of a /proc/meminfo text, in bytes: 0, or -1 when absent. */
int cb_meminfo_available(const char *text, size_t *bytes);
/* The least room under a memory limit of the process whose /proc/self/cgroup
 * reads `self`, the cgroup file systems mounted at `root` (/sys/fs/cgroup):
 * v2 memory.max - memory.current, v1 memory.limit_in_bytes -
 * memory.usage_in_bytes, of its cgroup and every ancestor; SIZE_MAX when
 * there is no limit or none is known. */
size_t cb_cgroup_room(const char *self, const char *root);
/* Bytes this process may still allocate: MemAvailable, lowered to the
 * cgroup's room; SIZE_MAX when neither is known. `what` says which it is. */
size_t cb_mem_available(char *what, size_t len);

/* This process's resident (VmRSS) and pinned (VmPin: what RDMA
 * registrations hold) bytes; 0 where not known. */
void cb_self_memory(size_t *rss, size_t *pinned);

/* CB_OK, or CB_EUSAGE (logged when `report`) when this host cannot hold
 * its `local` ranks. */
cb_status cb_mem_check(const struct cb_options *o, int nranks, int local, int rank0_here, int report);

#endif
