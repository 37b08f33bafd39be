/* TCP transport in one process: two contexts talking over real sockets.
 * Every loop has a deadline, so a broken transport fails instead of hanging. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/transport.h"
#include "transport/tcp_internal.h"

#define DEADLINE_MS 20000
#define NMSG 1000

static const struct cb_transport_ops *const T = &cb_transport_tcp;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cfg_make(struct cb_transport_config *cfg, int rank, uint8_t tok, const char *ifname,
                     size_t slot_bytes, int nslots)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rank = rank;
    cfg->nranks = 3;
    snprintf(cfg->host, sizeof cfg->host, "host%d", rank);
    memset(cfg->token, tok, sizeof cfg->token);
    cfg->slot_bytes = slot_bytes;
    cfg->nslots = nslots;
    cfg->timeout_ms = 5000;
    snprintf(cfg->tcp_if, sizeof cfg->tcp_if, "%s", ifname);
}

static void *ctx_new(int rank, uint8_t tok, const char *ifname, size_t slot_bytes, int nslots)
{
    struct cb_transport_config cfg;
    void *ctx = NULL;
    cfg_make(&cfg, rank, tok, ifname, slot_bytes, nslots);
    assert_int_equal(T->init(&cfg, &ctx), CB_OK);
    assert_non_null(ctx);
    return ctx;
}

static struct cb_peer peer_of(int rank)
{
    struct cb_peer p = {.rank = rank};
    snprintf(p.host, sizeof p.host, "host%d(test)", rank);
    return p;
}

/* Connect sender context cs (rank rs) to receiver context cr (rank rr). */
static void connect_pair(void *cs, int rs, void *cr, int rr, void **sconn, void **rconn)
{
    struct cb_peer ps = peer_of(rs), pr = peer_of(rr);
    uint8_t handle[CB_HANDLE_BYTES];
    void *l = NULL;
    long long deadline = now_ms() + DEADLINE_MS;
    *sconn = *rconn = NULL;
    assert_int_equal(T->listen(cr, &ps, handle, &l), CB_OK);
    while (!*sconn || !*rconn) {
        if (!*sconn)
            assert_int_equal(T->connect(cs, &pr, handle, sconn), CB_OK);
        if (!*rconn)
            assert_int_equal(T->accept(l, rconn), CB_OK);
        assert_int_equal(T->progress(cs), CB_OK);
        assert_int_equal(T->progress(cr), CB_OK);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(T->close_listen(l), CB_OK);
}

/* Sizes around the edges: empty, tiny, around the receiver's 4 KiB
 * lookahead, a full slot, and pseudo-random ones. */
static size_t msg_size(int i, size_t slot)
{
    const size_t fixed[] = {0, 1, 7, slot, 8, 4087, 4088, 4089, 4096, 4097, slot - 1};
    const int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
    if (i % 13 < nfixed)
        return fixed[i % 13];
    return ((size_t)i * 7919u) % slot + 1;
}

static uint8_t msg_byte(int dir, int i, size_t k)
{
    return (uint8_t)(dir * 101 + i * 31 + k * 7 + (k >> 8));
}

/* 1 when message i was posted, 0 when no slot is free. */
static int try_send(void *sconn, int dir, int i, size_t slot)
{
    void *p = NULL;
    assert_int_equal(T->send_slot(sconn, 0, &p), CB_OK);
    if (!p)
        return 0;
    size_t n = msg_size(i, slot);
    uint8_t *b = p;
    for (size_t k = 0; k < n; k++)
        b[k] = msg_byte(dir, i, k);
    assert_int_equal(T->send_post(sconn, n), CB_OK);
    return 1;
}

/* 1 when message i arrived, in order and intact. */
static int try_recv(void *rconn, int dir, int i, size_t slot)
{
    const void *p = NULL;
    size_t n = 0;
    assert_int_equal(T->recv_slot(rconn, &p, &n), CB_OK);
    if (!p)
        return 0;
    assert_int_equal(n, msg_size(i, slot));
    const uint8_t *b = p;
    size_t bad = n;
    for (size_t k = 0; k < n && bad == n; k++)
        if (b[k] != msg_byte(dir, i, k))
            bad = k;
    if (bad != n)
        fail_msg("message %d of direction %d: byte %zu is %u, expected %u", i, dir, bad, b[bad],
                 msg_byte(dir, i, bad));
    assert_int_equal(T->recv_release(rconn), CB_OK);
    return 1;
}

static void progress2(void *a, void *b)
{
    assert_int_equal(T->progress(a), CB_OK);
    assert_int_equal(T->progress(b), CB_OK);
}

static unsigned lcg(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

/* 1000 messages each way, senders running ahead of receivers. */
static void test_fifo_both_directions(void **state)
{
    (void)state;
    const size_t slot = 32 << 10;
    const int nslots = 4;
    void *c0 = ctx_new(0, 0xa5, "", slot, nslots), *c1 = ctx_new(1, 0xa5, "", slot, nslots);
    void *s[2], *r[2];
    connect_pair(c0, 0, c1, 1, &s[0], &r[0]);   /* direction 0: rank 0 -> rank 1 */
    connect_pair(c1, 1, c0, 0, &s[1], &r[1]);   /* direction 1: rank 1 -> rank 0 */
    int sent[2] = {0, 0}, got[2] = {0, 0};
    unsigned rnd = 12345;
    long long deadline = now_ms() + DEADLINE_MS;
    /* fill every slot (and then some) before the first receive */
    for (int d = 0; d < 2; d++)
        while (sent[d] < 3 * nslots) {
            sent[d] += try_send(s[d], d, sent[d], slot);
            progress2(c0, c1);
            assert_true(now_ms() < deadline);
        }
    while (got[0] < NMSG || got[1] < NMSG) {
        for (int d = 0; d < 2; d++) {
            for (int k = (int)(lcg(&rnd) % (2 * nslots + 1)); k > 0 && sent[d] < NMSG; k--)
                sent[d] += try_send(s[d], d, sent[d], slot);
            for (int k = (int)(lcg(&rnd) % (2 * nslots)); k > 0 && got[d] < sent[d]; k--)
                got[d] += try_recv(r[d], d, got[d], slot);
        }
        progress2(c0, c1);
        assert_true(now_ms() < deadline);
    }
    for (int d = 0; d < 2; d++) {
        int idle = 0;
        assert_int_equal(T->send_idle(s[d], &idle), CB_OK);
        assert_int_equal(idle, 1);
    }
    assert_int_equal(T->close_send(s[0]), CB_OK);
    assert_int_equal(T->close_send(s[1]), CB_OK);
    assert_int_equal(T->close_recv(r[0]), CB_OK);
    assert_int_equal(T->close_recv(r[1]), CB_OK);
    T->finalize(c0);
    T->finalize(c1);
}

/* Progress serves the connections with data moving, not all of them: 16
 * idle connections cost nothing over 100 calls, and one message on one of
 * them costs a few visits, not 16 per call (issue 15: the cost of a
 * progress call must not grow with the number of peers). */
static void test_progress_serves_busy_only(void **state)
{
    (void)state;
    enum { NCONN = 16, BUSY = 5 };
    const size_t slot = 8 << 10;
    void *c0 = ctx_new(0, 0x33, "127.0.0.1", slot, 2), *c1 = ctx_new(1, 0x33, "127.0.0.1", slot, 2);
    const struct tcp_ctx *t0 = c0, *t1 = c1;
    void *s[NCONN], *r[NCONN];
    for (int i = 0; i < NCONN; i++)
        connect_pair(c0, 0, c1, 1, &s[i], &r[i]);
    unsigned long long before0 = t0->progress_pumps, before1 = t1->progress_pumps;
    for (int k = 0; k < 100; k++)
        progress2(c0, c1);
    assert_int_equal(t0->progress_pumps - before0, 0);
    assert_int_equal(t1->progress_pumps - before1, 0);
    assert_int_equal(try_send(s[BUSY], 0, 0, slot), 1);
    long long deadline = now_ms() + DEADLINE_MS;
    int calls = 0;
    while (!try_recv(r[BUSY], 0, 0, slot)) {
        progress2(c0, c1);
        calls++;
        assert_true(now_ms() < deadline);
    }
    /* the receiver's socket is served once per call it is readable in */
    assert_in_range(t1->progress_pumps - before1, 0, (unsigned long long)calls + 1);
    for (int i = 0; i < NCONN; i++) {
        assert_int_equal(T->close_send(s[i]), CB_OK);
        assert_int_equal(T->close_recv(r[i]), CB_OK);
    }
    T->finalize(c0);
    T->finalize(c1);
}

/* A receiver that does not read stops the sender: send_slot returns NULL
 * instead of buffering without bound, and nothing is lost or reordered. */
static void test_backpressure(void **state)
{
    (void)state;
    const size_t slot = 256 << 10;
    void *c0 = ctx_new(0, 0x11, "127.0.0.1", slot, 2), *c1 = ctx_new(1, 0x11, "127.0.0.1", slot, 2);
    void *s, *r;
    connect_pair(c0, 0, c1, 1, &s, &r);
    int sent = 0, got = 0, nulls = 0, idle = 1;
    long long deadline = now_ms() + DEADLINE_MS;
    while (nulls < 200 && sent < 100000) {   /* only the sender progresses */
        int ok = try_send(s, 0, 3, slot);    /* message 3 is a full slot */
        sent += ok;
        nulls = ok ? 0 : nulls + 1;
        assert_int_equal(T->progress(c0), CB_OK);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(nulls, 200);
    assert_true(sent >= 2);
    assert_int_equal(T->send_idle(s, &idle), CB_OK);
    assert_int_equal(idle, 0);
    while (got < sent) {
        got += try_recv(r, 0, 3, slot);
        progress2(c0, c1);
        assert_true(now_ms() < deadline);
    }
    do {
        assert_int_equal(T->send_idle(s, &idle), CB_OK);
        assert_true(now_ms() < deadline);
    } while (!idle);
    T->close_send(s);
    T->close_recv(r);
    T->finalize(c0);
    T->finalize(c1);
}

static int raw_connect(const uint8_t *handle)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    memcpy(&sa.sin_port, handle + 6, 2);            /* handle layout: see tcp.c */
    memcpy(&sa.sin_addr.s_addr, handle + 8, 4);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void *connect_until_done(void *ctx, int to_rank, const uint8_t *handle, void *other)
{
    struct cb_peer p = peer_of(to_rank);
    void *conn = NULL;
    long long deadline = now_ms() + DEADLINE_MS;
    while (!conn) {
        assert_int_equal(T->connect(ctx, &p, handle, &conn), CB_OK);
        assert_int_equal(T->progress(other), CB_OK);
        assert_true(now_ms() < deadline);
    }
    return conn;
}

/* Wrong token, wrong rank, garbage and silence: none is ever accepted, and
 * the job's own connection still is. */
static void test_stray_connections_rejected(void **state)
{
    (void)state;
    const size_t slot = 4096;
    struct cb_transport_config cfg;
    void *c1 = NULL;
    cfg_make(&cfg, 1, 0xa5, "127.0.0.1", slot, 4);
    cfg.timeout_ms = 300;   /* silent connections are dropped after this */
    assert_int_equal(T->init(&cfg, &c1), CB_OK);
    void *bad_token = ctx_new(0, 0x5a, "127.0.0.1", slot, 4);
    void *bad_rank = ctx_new(2, 0xa5, "127.0.0.1", slot, 4);
    void *c0 = ctx_new(0, 0xa5, "127.0.0.1", slot, 4);
    struct cb_peer p0 = peer_of(0);
    uint8_t handle[CB_HANDLE_BYTES], junk[64];
    void *l = NULL, *rconn = NULL;
    assert_int_equal(T->listen(c1, &p0, handle, &l), CB_OK);

    void *s_tok = connect_until_done(bad_token, 1, handle, c1);
    connect_until_done(bad_rank, 1, handle, c1);   /* freed by finalize */
    assert_int_equal(try_send(s_tok, 0, 1, slot), 1);
    int fd_junk = raw_connect(handle), fd_silent = raw_connect(handle);
    memset(junk, 0x42, sizeof junk);
    assert_int_equal(write(fd_junk, junk, sizeof junk), (ssize_t)sizeof junk);

    /* the silent one must be dropped (EOF) while accept never returns anything */
    long long deadline = now_ms() + DEADLINE_MS;
    char c;
    while (recv(fd_silent, &c, 1, MSG_DONTWAIT) != 0) {
        assert_int_equal(T->accept(l, &rconn), CB_OK);
        assert_null(rconn);
        assert_true(now_ms() < deadline);
    }

    /* the sender with the wrong token finds its connection closed */
    cb_status st = CB_OK;
    for (int i = 2; st == CB_OK; i++) {
        void *p = NULL;
        st = T->send_slot(s_tok, 0, &p);
        if (st == CB_OK && p)
            st = T->send_post(s_tok, slot);
        if (st == CB_OK)
            st = T->progress(bad_token);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(st, CB_EPEER);

    void *s0 = connect_until_done(c0, 1, handle, c1);
    while (!rconn) {
        assert_int_equal(T->accept(l, &rconn), CB_OK);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(try_send(s0, 0, 7, slot), 1);
    while (!try_recv(rconn, 0, 7, slot))
        assert_true(now_ms() < deadline);

    close(fd_junk);
    close(fd_silent);
    T->close_listen(l);
    T->close_send(s0);
    T->close_recv(rconn);
    T->finalize(bad_token);   /* frees s_tok */
    T->finalize(bad_rank);
    T->finalize(c0);
    T->finalize(c1);
}

/* A flood of idle connections during set-up, more than the transport keeps
 * owing their hello (256): the job's own connection, made after most of the
 * flood and followed by more idle ones, is still accepted, long before the
 * idle ones time out. */
#define FLOOD 300
#define FLOOD_FIRST 280
static void test_flood_does_not_starve(void **state)
{
    (void)state;
    const size_t slot = 4096;
    void *c1 = ctx_new(1, 0xc3, "127.0.0.1", slot, 4), *c0 = ctx_new(0, 0xc3, "127.0.0.1", slot, 4);
    struct cb_peer p0 = peer_of(0);
    uint8_t handle[CB_HANDLE_BYTES];
    void *l = NULL, *rconn = NULL;
    static int idle[FLOOD];
    assert_int_equal(T->listen(c1, &p0, handle, &l), CB_OK);
    for (int i = 0; i < FLOOD_FIRST; i++) {
        idle[i] = raw_connect(handle);
        if (i % 50 == 0)
            assert_int_equal(T->progress(c1), CB_OK);   /* as set-up polls, between arrivals */
    }
    void *s0 = connect_until_done(c0, 1, handle, c1);
    for (int i = FLOOD_FIRST; i < FLOOD; i++) {
        idle[i] = raw_connect(handle);
        if (i % 10 == 0 && !rconn)
            assert_int_equal(T->accept(l, &rconn), CB_OK);   /* as set-up polls, between arrivals */
    }
    /* well before the idle ones' hello deadline (5 s here): the flood did not push ours out */
    long long deadline = now_ms() + 1000;
    while (!rconn) {
        assert_int_equal(T->accept(l, &rconn), CB_OK);
        assert_int_equal(T->progress(c0), CB_OK);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(try_send(s0, 0, 3, slot), 1);
    deadline = now_ms() + DEADLINE_MS;
    while (!try_recv(rconn, 0, 3, slot)) {
        assert_int_equal(T->progress(c0), CB_OK);
        assert_true(now_ms() < deadline);
    }
    for (int i = 0; i < FLOOD; i++)
        close(idle[i]);
    T->close_listen(l);
    T->close_send(s0);
    T->close_recv(rconn);
    T->finalize(c0);
    T->finalize(c1);
}

/* Orderly close (close_send): data first, then CB_EPEER from recv_slot, and
 * progress stays quiet. A crash (finalize without close): CB_EPEER from progress. */
static void test_peer_close(void **state)
{
    (void)state;
    const size_t slot = 8192;
    void *c0 = ctx_new(0, 0x77, "127.0.0.1", slot, 4), *c1 = ctx_new(1, 0x77, "127.0.0.1", slot, 4);
    void *s, *r;
    const void *p;
    size_t n;
    long long deadline = now_ms() + DEADLINE_MS;
    connect_pair(c0, 0, c1, 1, &s, &r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(try_send(s, 0, i, slot), 1);
    assert_int_equal(T->close_send(s), CB_OK);
    for (int i = 0; i < 3; i++)
        while (!try_recv(r, 0, i, slot))
            assert_true(now_ms() < deadline);
    cb_status st;
    while ((st = T->recv_slot(r, &p, &n)) == CB_OK) {
        assert_null(p);
        assert_int_equal(T->progress(c1), CB_OK);
        assert_true(now_ms() < deadline);
    }
    assert_int_equal(st, CB_EPEER);
    T->close_recv(r);

    void *crash = ctx_new(0, 0x77, "127.0.0.1", slot, 4);
    connect_pair(crash, 0, c1, 1, &s, &r);
    assert_int_equal(try_send(s, 0, 5, slot), 1);
    T->finalize(crash);
    while (!try_recv(r, 0, 5, slot))
        assert_true(now_ms() < deadline);
    while ((st = T->progress(c1)) == CB_OK)
        assert_true(now_ms() < deadline);
    assert_int_equal(st, CB_EPEER);
    assert_int_equal(T->recv_slot(r, &p, &n), CB_EPEER);
    T->close_recv(r);
    T->finalize(c0);
    T->finalize(c1);
}

static void expect_init(const char *ifname, size_t slot, int nslots, cb_status want)
{
    struct cb_transport_config cfg;
    void *ctx = (void *)&cfg;
    cfg_make(&cfg, 0, 1, ifname, slot, nslots);
    assert_int_equal(T->init(&cfg, &ctx), want);
    assert_null(ctx);
}

static const char *prop(const struct cb_props *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->kv[i].key, key) == 0)
            return p->kv[i].val;
    return NULL;
}

static void test_interfaces(void **state)
{
    (void)state;
    struct cb_props props;
    expect_init("nosuchif0", 4096, 4, CB_EDEVICE);
    expect_init("203.0.113.77", 4096, 4, CB_EDEVICE);
    expect_init("lo", 4096, 0, CB_EUSAGE);
    const char *names[] = {"lo", "127.0.0.1", ""};
    for (int i = 0; i < 3; i++) {
        void *ctx = ctx_new(0, 1, names[i], 4096, 4);
        T->properties(ctx, &props);
        assert_string_equal(prop(&props, "transport"), "tcp");
        assert_non_null(prop(&props, "interface"));
        assert_non_null(prop(&props, "address"));
        if (i < 2) {
            assert_string_equal(prop(&props, "interface"), "lo");
            assert_string_equal(prop(&props, "address"), "127.0.0.1");
            assert_non_null(prop(&props, "mtu"));
        }
        T->finalize(ctx);
    }
}

/* Ends with different FIFO geometry are refused at set-up, naming the peer
 * (a receiver with more slots than the sender used to accept it). */
static void test_geometry_mismatch_refused(void **state)
{
    (void)state;
    void *cs = ctx_new(0, 1, "127.0.0.1", 4096, 4), *cr = ctx_new(1, 1, "127.0.0.1", 4096, 8);
    struct cb_peer ps = peer_of(0), pr = peer_of(1);
    uint8_t handle[CB_HANDLE_BYTES];
    void *l = NULL, *sconn = NULL, *rconn = NULL;
    long long deadline = now_ms() + DEADLINE_MS;
    cb_status st = CB_OK;
    assert_int_equal(T->listen(cr, &ps, handle, &l), CB_OK);
    while (st == CB_OK && now_ms() < deadline) {
        if (!sconn)
            (void)T->connect(cs, &pr, handle, &sconn);
        st = T->accept(l, &rconn);
        (void)T->progress(cs);
    }
    assert_int_equal(st, CB_EUSAGE);
    assert_null(rconn);
    assert_int_equal(T->close_listen(l), CB_OK);
    if (sconn)
        (void)T->close_send(sconn);
    T->finalize(cs);
    T->finalize(cr);
}

static void test_bad_handle(void **state)
{
    (void)state;
    void *ctx = ctx_new(0, 1, "127.0.0.1", 4096, 4), *conn = NULL;
    uint8_t handle[CB_HANDLE_BYTES];
    struct cb_peer p = peer_of(1);
    memset(handle, 0x33, sizeof handle);
    assert_int_equal(T->connect(ctx, &p, handle, &conn), CB_EUSAGE);
    assert_null(conn);
    T->finalize(ctx);
}

/* A listener whose accept queue is full drops SYNs: connect() must keep
 * returning NULL without blocking, then finish and greet with the hello. */
static int full_listener(struct sockaddr_in *sa, int *queued)
{
    socklen_t len = sizeof *sa;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)sa, &len), 0);
    *queued = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*queued, (struct sockaddr *)sa, sizeof *sa), 0);
    return lfd;
}

static void handle_for(uint8_t *h, const struct sockaddr_in *sa, int rank)
{
    const uint8_t magic[4] = {'C', 'B', 'T', 'L'}, version[2] = {0, 1}, id[4] = {0, 0, 0, 7};
    uint8_t r[4] = {0, 0, 0, (uint8_t)rank};
    memset(h, 0, CB_HANDLE_BYTES);   /* layout: see tcp.c */
    memcpy(h, magic, 4);
    memcpy(h + 4, version, 2);
    memcpy(h + 6, &sa->sin_port, 2);
    memcpy(h + 8, &sa->sin_addr.s_addr, 4);
    memcpy(h + 12, id, 4);
    memcpy(h + 16, r, 4);
}

static void test_connect_resumes(void **state)
{
    (void)state;
    struct sockaddr_in sa;
    int queued, fd = -1;
    int lfd = full_listener(&sa, &queued);
    void *ctx = ctx_new(0, 0xa5, "127.0.0.1", 4096, 2), *conn = NULL;
    uint8_t handle[CB_HANDLE_BYTES], hello[48];
    struct cb_peer p1 = peer_of(1);
    handle_for(handle, &sa, 1);
    long long t = now_ms();
    while (now_ms() < t + 300) {
        assert_int_equal(T->connect(ctx, &p1, handle, &conn), CB_OK);
        assert_null(conn);
    }
    int first = accept(lfd, NULL, NULL);   /* frees the queue: the SYN retry gets in */
    assert_true(first >= 0);
    while (!conn) {
        assert_int_equal(T->connect(ctx, &p1, handle, &conn), CB_OK);
        assert_true(now_ms() < t + DEADLINE_MS);
    }
    while (fd < 0) {
        fd = accept(lfd, NULL, NULL);
        assert_true(now_ms() < t + DEADLINE_MS);
    }
    assert_int_equal(recv(fd, hello, sizeof hello, MSG_WAITALL), (ssize_t)sizeof hello);
    assert_memory_equal(hello, "CBTH", 4);
    for (int i = 8; i < 24; i++)
        assert_int_equal(hello[i], 0xa5);      /* the token */
    assert_int_equal(hello[27], 0);            /* rank 0 */
    assert_int_equal(hello[31], 7);            /* listen id */
    /* a second connect, abandoned while in progress, is freed by finalize */
    void *other = NULL;
    assert_int_equal(T->connect(ctx, &p1, handle, &other), CB_OK);
    T->close_send(conn);
    T->finalize(ctx);
    close(fd);
    close(first);
    close(queued);
    close(lfd);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Every test must close every socket it (or the transport) opened. */
static int fds_before(void **state)
{
    int *n = malloc(sizeof *n);
    if (!n)
        return -1;
    *n = open_fds();
    *state = n;
    return 0;
}

static int fds_after(void **state)
{
    int *n = *state, now = open_fds();
    if (now != *n)
        fprintf(stderr, "open file descriptors: %d before the test, %d after\n", *n, now);
    int ok = now == *n;
    free(n);
    return ok ? 0 : -1;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, fds_before, fds_after)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_fifo_both_directions),
        TEST(test_backpressure),
        TEST(test_progress_serves_busy_only),
        TEST(test_stray_connections_rejected),
        TEST(test_flood_does_not_starve),
        TEST(test_peer_close),
        TEST(test_interfaces),
        TEST(test_geometry_mismatch_refused),
        TEST(test_bad_handle),
        TEST(test_connect_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
