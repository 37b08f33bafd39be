/* Private to the TCP transport (tcp.c, tcp_conn.c, tcp_fifo.c): the wire
 * constants and byte order, the connection structs, and the functions the
 * files share. The protocol is described at the top of tcp.c. */
#ifndef CB_TCP_INTERNAL_H
#define CB_TCP_INTERNAL_H

#include "transport.h"

#include <endian.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HANDLE_MAGIC 0x4342544cu   /* "CBTL" */
#define HELLO_MAGIC 0x43425448u    /* "CBTH" */
#define PROTO_VERSION 1
#define HANDLE_USED 20
#define HELLO_BYTES 48
#define HDR_BYTES 8
#define MSG_BYE UINT64_MAX
#define LOOKAHEAD 4096             /* read past a payload: next header, small messages */
#define SOCKBUF_BYTES (4 << 20)
#define MAX_IOV 64
#define PENDING_MAX 256            /* accepted sockets still owing their hello; more evict the oldest */
#define HELLO_WAIT_MS 2000         /* at most (less with a shorter -T): a peer sends its hello
                                      as soon as it is connected, a flood must not hold slots */
#define SLOT_ALIGN 64
#define PROGRESS_EVENTS 64         /* readable receivers served per progress call, in turn */

_Static_assert(HANDLE_USED <= CB_HANDLE_BYTES, "tcp handle does not fit");

#define LIST_REMOVE(head, item)                                  \
    do {                                                         \
        __typeof__(item) *pp_ = &(head);                         \
        while (*pp_ && *pp_ != (item))                           \
            pp_ = &(*pp_)->next;                                 \
        if (*pp_)                                                \
            *pp_ = (item)->next;                                 \
    } while (0)

struct tcp_ctx;

/* TX_RETRY: the last connect failed in a way a link flap or a restarting
 * route causes (no route, unreachable, timed out); it is tried again at
 * retry_at_ms, until the caller's -T runs out. */
enum tx_state { TX_CONNECTING, TX_RETRY, TX_HELLO, TX_READY };

struct tcp_send {
    struct tcp_send *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    int fd;
    enum tx_state state;
    struct sockaddr_in dst;
    uint32_t listen_id;
    int64_t retry_at_ms;       /* TX_RETRY: when to connect again */
    int retry_ms;              /* the wait before the next attempt (doubles, at most 1 s) */
    uint8_t hello[HELLO_BYTES];
    size_t hello_sent;
    uint8_t *slots;            /* nslots * stride */
    uint64_t *hdr;             /* big-endian length of each queued slot */
    size_t stride, slot_bytes;
    int nslots, head, nqueued, slot_out;
    size_t off;                /* bytes of the head message already in the kernel */
    cb_status err;             /* sticky, logged when first seen */
    struct tcp_send *next_backlog;   /* in ctx->backlog: queued data the kernel has not taken */
    int in_backlog;
};

struct tcp_recv {
    struct tcp_recv *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    int fd;
    uint8_t *slots;
    size_t *len;
    size_t stride, slot_bytes;
    int nslots, head, nfull;   /* nfull complete slots from head */
    uint8_t hdr[HDR_BYTES];
    size_t hdr_got;
    int in_payload;            /* header known; the slot after the full ones is being filled */
    size_t plen, pgot;
    size_t la_pos, la_end;
    int bye;
    cb_status err;
    uint8_t la[LOOKAHEAD];
};

struct tcp_listen {
    struct tcp_listen *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    uint32_t id;
    struct tcp_recv *ready;    /* verified, not yet returned by accept() */
    cb_status err;
    int accepted;
};

struct tcp_pending {
    struct tcp_pending *next;
    int fd;
    char from[INET_ADDRSTRLEN + 8];
    uint8_t hello[HELLO_BYTES];
    size_t got;
    long long deadline_ms;
};

struct tcp_ctx {
    int rank, nslots, hello_ms;   /* hello_ms: how long an accepted socket may owe its hello */
    size_t slot_bytes;
    uint8_t token[CB_TOKEN_BYTES];
    char ifname[IF_NAMESIZE];
    struct in_addr addr;
    int sockbuf;               /* SO_SNDBUF/SO_RCVBUF, 0 = kernel autotuning */
    int lfd;
    uint16_t port;
    uint32_t next_id;
    int npending;
    long long nevicted;        /* connections dropped to make room: logged once */
    struct tcp_listen *listens;
    struct tcp_pending *pending;
    struct tcp_send *sends;    /* connecting and connected */
    struct tcp_recv *recvs;    /* returned by accept() */
    /* What progress serves, so that its cost follows the connections with
     * data moving, not all of them: the senders whose queue the kernel did
     * not take at once, and the receivers' sockets (epoll) that are readable */
    struct tcp_send *backlog;
    int epfd;
    unsigned long long progress_pumps;   /* connections served by progress so far (tests) */
};

/* ---- byte order on the wire ---- */

static inline void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static inline void put16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, 2);
}

static inline void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static inline uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return be16toh(v);
}

static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

/* ---- shared between the files ---- */

/* tcp.c */
void cb_tcp_addr_str(const struct sockaddr_in *sa, char *out, size_t cap);
void cb_tcp_socket_tune(const struct tcp_ctx *c, int fd);

/* tcp_conn.c: set-up, and freeing what it made */
void cb_tcp_send_free(struct tcp_send *s);
void cb_tcp_recv_free(struct tcp_recv *r);
void cb_tcp_pending_free(struct tcp_ctx *c, struct tcp_pending *p);
cb_status tcp_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm);
cb_status tcp_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn);
cb_status tcp_accept(void *lcomm, void **rconn);
cb_status tcp_close_listen(void *lcomm);

/* tcp_fifo.c: slots and the data path */
/* Bytes from one slot to the next: slot_bytes rounded up to SLOT_ALIGN. */
size_t cb_tcp_slot_stride(size_t slot_bytes);
cb_status cb_tcp_slots_alloc(int nslots, size_t slot_bytes, const struct cb_peer *peer,
                      uint8_t **slots, size_t *stride);
cb_status cb_tcp_io_error(const struct cb_peer *peer, const char *what, int err);
cb_status tcp_send_slot(void *sconn, size_t nbytes, void **slot);
cb_status tcp_send_post(void *sconn, size_t nbytes);
cb_status tcp_send_idle(void *sconn, int *idle);
cb_status tcp_close_send(void *sconn);
cb_status tcp_recv_slot(void *rconn, const void **slot, size_t *nbytes);
cb_status tcp_recv_release(void *rconn);
cb_status tcp_close_recv(void *rconn);
cb_status tcp_progress(void *tctx);

#endif
