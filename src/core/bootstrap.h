/* Out-of-band bootstrap over MPI: rank, size, hosts, and the small exchanges
 * that set up connections and collect results. MPI never carries benchmark
 * data. Every call has a timeout and names the rank that did not come. */
#ifndef CB_BOOTSTRAP_H
#define CB_BOOTSTRAP_H

#include <stddef.h>
#include "status.h"

struct cb_boot;

/* What a bootstrap wait also polls: the data path's progress. A rank that
 * waits out-of-band (results, barriers) while a peer waits on it in the
 * data path must still see its own link fail (a port down past the QPs'
 * retry budget, a completion in error), or both wait out -T and the wrong
 * rank is named. Returns the transport's error (logged where it was seen). */
typedef cb_status (*cb_boot_watch_fn)(void *ctx);

/* This process's rank as the launcher's environment tells it, before MPI
 * starts; -1 when no launcher set one. */
int cb_boot_launcher_rank(void);

/* MPI_Init. Refuses (CB_EUSAGE, logged) when no launcher started us, or when
 * the launcher's process count differs from MPI's (a binary built against
 * another MPI runs as N one-rank jobs). */
cb_status cb_boot_init(int *argc, char ***argv, int timeout_ms, struct cb_boot **out);
void cb_boot_finalize(struct cb_boot *b);
/* Abort the whole job (after an error was logged) so no rank waits forever. */
void cb_boot_abort(struct cb_boot *b, int exit_code);

int cb_boot_rank(const struct cb_boot *b);
int cb_boot_size(const struct cb_boot *b);
/* "hostname(addr)" of a rank, known after cb_boot_init. */
const char *cb_boot_host(const struct cb_boot *b, int rank);
/* Ranks on the same machine as `rank` before it, and in all. */
int cb_boot_local_rank(const struct cb_boot *b);
int cb_boot_local_size(const struct cb_boot *b);
/* Same kernel: the ranks share CPUs (and NICs). */
int cb_boot_same_machine(const struct cb_boot *b, int rank_a, int rank_b);
/* Same kernel and the same IPC, network and PID namespaces: one can map the
 * other's memory (shm). Ranks in two containers or netns hosts of one
 * machine are on one machine but do not share memory. */
int cb_boot_shares_memory(const struct cb_boot *b, int rank_a, int rank_b);
/* Every rank's memory domain (host) as an index: host[r] = 0, 1, ...
 * numbered in order of each host's first rank (core/groups.h), *nhosts =
 * how many; O(n log n). CB_ENOMEM (logged). */
cb_status cb_boot_hosts(const struct cb_boot *b, int *host, int *nhosts);

/* Every wait polls fn(ctx) from now on (NULL: nothing); set by whoever owns
 * the data path (cb_comm_init). cb_boot_unwatch clears it if ctx still
 * holds it. */
void cb_boot_watch(struct cb_boot *b, cb_boot_watch_fn fn, void *ctx);
void cb_boot_unwatch(struct cb_boot *b, void *ctx);

cb_status cb_boot_barrier(struct cb_boot *b, int timeout_ms, const char *what);
/* all[r*bytes..] = rank r's `mine`. */
cb_status cb_boot_allgather(struct cb_boot *b, const void *mine, void *all, size_t bytes,
                            int timeout_ms, const char *what);
/* Rank 0 receives every rank's `mine` into all (ignored elsewhere). */
cb_status cb_boot_gather(struct cb_boot *b, const void *mine, void *all, size_t bytes,
                         int timeout_ms, const char *what);
cb_status cb_boot_bcast(struct cb_boot *b, void *buf, size_t bytes, int timeout_ms, const char *what);
/* Send sendbufs[i] (bytes each) to to[i], receive recvbufs[j] from from[j]. */
cb_status cb_boot_exchange(struct cb_boot *b, const int *to, const void *sendbufs, int nto,
                           const int *from, void *recvbufs, int nfrom, size_t bytes,
                           int timeout_ms, const char *what);
/* Sum / max of doubles over ranks, result everywhere. */
cb_status cb_boot_allreduce_sum(struct cb_boot *b, double *vals, int n, int timeout_ms, const char *what);
cb_status cb_boot_allreduce_max(struct cb_boot *b, double *vals, int n, int timeout_ms, const char *what);

#endif
