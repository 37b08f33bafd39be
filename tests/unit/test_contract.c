/* The transport contract (src/transport/transport.h), one source run against
 * every transport: shm and tcp here, verbs where an RDMA port is active (the
 * Soft-RoCE VM runs this binary too: tests/integration/verbs_vm.sh). Each
 * case holds for all of them: set-up in any order of connect and accept,
 * messages of every size in order and intact under backpressure, a
 * zero-byte message, send_idle only after the receiver consumed everything,
 * lent and offered data as the capabilities say, and a clean close with
 * messages still in flight. What only one transport does (shm's mappings,
 * verbs' FIFO internals) stays in its own test file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "transport/transport.h"

#define SLOT (256 * 1024)
#define NSLOTS 4
#define DEADLINE_S 30.0

struct env {
    const struct cb_transport_ops *ops;
    char hca[128];   /* verbs: the active port to use */
    int shared_slots;   /* the receiver's slots from its shared pool (struct cb_peer) */
};

/* A sender context (rank 0) connected to a receiver context (rank 1). */
struct link {
    const struct env *env;
    const struct cb_transport_ops *T;
    void *sctx, *rctx, *sconn, *rconn;
    int expected;   /* messages the receiver said it takes (recv_expect) */
    int taken;      /* messages it took */
};

static int active_port(char *hca, size_t len)
{
    const char *forced = getenv("CB_TEST_HCA");
    int n = 0, found = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    for (int i = 0; list && i < n && !found; i++) {
        struct ibv_context *ctx = ibv_open_device(list[i]);
        struct ibv_port_attr pa;
        if (ctx && !ibv_query_port(ctx, 1, &pa) && pa.state == IBV_PORT_ACTIVE) {
            snprintf(hca, len, "%s:1", ibv_get_device_name(list[i]));
            found = 1;
        }
        if (ctx)
            ibv_close_device(ctx);
    }
    if (list)
        ibv_free_device_list(list);
    if (found && forced && *forced)
        snprintf(hca, len, "%s", forced);
    return found;
}

static void make_cfg(const struct env *e, struct cb_transport_config *c, int rank)
{
    memset(c, 0, sizeof *c);
    c->rank = rank;
    c->nranks = 2;
    snprintf(c->host, sizeof c->host, "host%d", rank);
    memcpy(c->token, "contract-test-tk", CB_TOKEN_BYTES);
    c->slot_bytes = SLOT;
    c->nslots = NSLOTS;
    c->timeout_ms = 20000;
    snprintf(c->tcp_if, sizeof c->tcp_if, "127.0.0.1");
    snprintf(c->hca, sizeof c->hca, "%s", e->hca);
    c->gid_index = -1;
    c->qps_per_conn = 1;
    c->ib_timeout = 20;
    c->ib_retry_cnt = 7;
    c->local_rank = rank;
    c->local_size = 2;
}

static void progress(struct link *l)
{
    assert_int_equal(l->T->progress(l->sctx), CB_OK);
    assert_int_equal(l->T->progress(l->rctx), CB_OK);
}

/* `accept_first`: the receiver's accept runs before the first connect. */
static void link_open(struct link *l, const struct env *e, int accept_first)
{
    struct cb_transport_config cfg;
    struct cb_peer sender = {.rank = 0, .host = "host0", .shared_slots = e->shared_slots},
                   receiver = {.rank = 1, .host = "host1", .shared_slots = e->shared_slots};
    uint8_t handle[CB_HANDLE_BYTES];
    void *listen = NULL;
    memset(l, 0, sizeof *l);
    l->env = e;
    l->T = e->ops;
    make_cfg(e, &cfg, 0);
    assert_int_equal(l->T->init(&cfg, &l->sctx), CB_OK);
    make_cfg(e, &cfg, 1);
    assert_int_equal(l->T->init(&cfg, &l->rctx), CB_OK);
    assert_int_equal(l->T->listen(l->rctx, &sender, handle, &listen), CB_OK);
    if (l->T->caps.replies) {   /* the sender's answer, before connect / accept */
        uint8_t reply[CB_HANDLE_BYTES];
        assert_int_equal(l->T->reply(l->sctx, &receiver, handle, reply), CB_OK);
        assert_int_equal(l->T->take_reply(listen, reply), CB_OK);
    }
    if (accept_first)
        assert_int_equal(l->T->accept(listen, &l->rconn), CB_OK);
    double deadline = cb_now_s() + DEADLINE_S;
    while (!l->sconn || !l->rconn) {
        if (!l->sconn)
            assert_int_equal(l->T->connect(l->sctx, &receiver, handle, &l->sconn), CB_OK);
        if (!l->rconn)
            assert_int_equal(l->T->accept(listen, &l->rconn), CB_OK);
        progress(l);
        if (cb_now_s() > deadline)
            fail_msg("%s: connection not up after %.0f s", l->T->name, DEADLINE_S);
    }
    assert_int_equal(l->T->close_listen(listen), CB_OK);
}

/* Wait until the sender is idle (everything consumed), then close all. */
static void link_close(struct link *l)
{
    int idle = 0;
    double deadline = cb_now_s() + DEADLINE_S;
    while (!idle && cb_now_s() < deadline) {
        assert_int_equal(l->T->send_idle(l->sconn, &idle), CB_OK);
        progress(l);
    }
    assert_true(idle);
    assert_int_equal(l->T->close_send(l->sconn), CB_OK);
    assert_int_equal(l->T->close_recv(l->rconn), CB_OK);
    l->T->finalize(l->sctx);
    l->T->finalize(l->rctx);
}

/* Verbs runs only where an RDMA port is active (the Soft-RoCE VM). */
#define NEED_TRANSPORT(state)                                                                      \
    do {                                                                                           \
        if (!((const struct env *)*(state))->ops) {                                                \
            print_message("[  SKIP    ] no RDMA device with an active port here; "                 \
                          "the Soft-RoCE VM runs these (tests/integration/verbs_vm.sh)\n");          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static size_t msg_size(int i)
{
    static const size_t fixed[] = {0, 1, 7, 4095, 4096, 4097, SLOT - 1, SLOT, 65536, 100003};
    return fixed[i % (int)(sizeof fixed / sizeof fixed[0])];
}

static uint8_t msg_byte(int i, size_t k) { return (uint8_t)(i * 31 + k * 7 + (k >> 9)); }

/* Post message i if a slot is free; 1 when posted. */
static int try_send(struct link *l, int i)
{
    void *out = NULL;
    size_t n = msg_size(i);
    assert_int_equal(l->T->send_slot(l->sconn, n, &out), CB_OK);
    if (!out)
        return 0;
    for (size_t k = 0; k < n; k++)
        ((uint8_t *)out)[k] = msg_byte(i, k);
    assert_int_equal(l->T->send_post(l->sconn, n), CB_OK);
    return 1;
}

/* The receiver says it takes the next message, as the channel primitives
 * do before they wait: with shared slots nothing is sent before that. */
static void expect_next(struct link *l)
{
    if (l->expected > l->taken)
        return;
    assert_int_equal(l->T->recv_expect(l->rconn, 1), CB_OK);
    l->expected++;
}

/* Take message i if it arrived: in order (its size), intact; 1 when taken. */
static int try_recv(struct link *l, int i)
{
    const void *in = NULL;
    size_t n = 0;
    expect_next(l);
    assert_int_equal(l->T->recv_slot(l->rconn, &in, &n), CB_OK);
    if (!in)
        return 0;
    assert_int_equal(n, msg_size(i));
    for (size_t k = 0; k < n; k++)
        if (((const uint8_t *)in)[k] != msg_byte(i, k))
            fail_msg("%s: message %d byte %zu is %u, expected %u", l->T->name, i, k,
                     ((const uint8_t *)in)[k], msg_byte(i, k));
    assert_int_equal(l->T->recv_release(l->rconn), CB_OK);
    l->taken++;
    return 1;
}

/* Many messages through a FIFO of NSLOTS: the sender is held back while the
 * receiver lags (it never gets NSLOTS ahead of what was released plus what
 * the transport buffers), and everything arrives in order. */
static void stream(struct link *l, int count, int recv_every)
{
    int sent = 0, received = 0, polls = 0;
    double deadline = cb_now_s() + DEADLINE_S;
    while (received < count) {
        if (sent < count && try_send(l, sent))
            sent++;
        if (++polls % recv_every == 0 && try_recv(l, received))
            received++;
        progress(l);
        if (cb_now_s() > deadline)
            fail_msg("%s: %d of %d messages received after %.0f s", l->T->name, received, count, DEADLINE_S);
    }
}

static void test_messages_in_order(void **state)
{
    NEED_TRANSPORT(state);
    struct link l;
    link_open(&l, *state, 0);
    stream(&l, 60, 1);
    stream(&l, 20, 7);   /* a slow receiver: backpressure */
    link_close(&l);
}

static void test_accept_before_connect(void **state)
{
    NEED_TRANSPORT(state);
    struct link l;
    link_open(&l, *state, 1);
    stream(&l, 12, 1);
    link_close(&l);
}

/* send_idle is 1 once a message is consumed; where the transport lends, it
 * is 0 before (lent memory must not change while the receiver reads it). */
static void test_idle_only_when_consumed(void **state)
{
    NEED_TRANSPORT(state);
    struct link l;
    int idle = 1;
    link_open(&l, *state, 0);
    assert_true(try_send(&l, 6));   /* a full slot */
    progress(&l);
    assert_int_equal(l.T->send_idle(l.sconn, &idle), CB_OK);
    if (l.T->caps.lends)
        assert_false(idle);
    double deadline = cb_now_s() + DEADLINE_S;
    while (!try_recv(&l, 6)) {
        progress(&l);
        assert_true(cb_now_s() < deadline);
    }
    link_close(&l);   /* asserts idle comes */
}

/* Lent data arrives intact where the transport lends (caps.lends), and a
 * transport that does not lend says so (the caller then copies). */
static void test_lent_data(void **state)
{
    NEED_TRANSPORT(state);
    struct link l;
    link_open(&l, *state, 0);
    uint8_t *src = l.T->alloc_shared(l.sctx, SLOT);
    assert_non_null(src);
    for (size_t k = 0; k < SLOT; k++)
        src[k] = msg_byte(7, k);
    void *out = NULL;
    int lent = -1;
    double deadline = cb_now_s() + DEADLINE_S;
    while (!out) {
        assert_int_equal(l.T->send_slot(l.sconn, SLOT, &out), CB_OK);
        progress(&l);
        assert_true(cb_now_s() < deadline);
    }
    assert_int_equal(l.T->send_lend(l.sconn, src, SLOT, &lent), CB_OK);
    assert_int_equal(lent, l.T->caps.lends);
    if (!lent) {
        memcpy(out, src, SLOT);
        assert_int_equal(l.T->send_post(l.sconn, SLOT), CB_OK);
    }
    while (!try_recv(&l, 7)) {
        progress(&l);
        assert_true(cb_now_s() < deadline);
    }
    l.T->free_shared(l.sctx, src);   /* consumed: free to go */
    link_close(&l);
}

/* An offer is taken where the transport takes offers (caps.takes_offers) and
 * refused otherwise; either way the message arrives intact, and where
 * recv_slot returns the offered destination the data is there. */
static void test_offered_destination(void **state)
{
    NEED_TRANSPORT(state);
    struct link l;
    link_open(&l, *state, 0);
    uint8_t *dst = l.T->alloc_shared(l.rctx, SLOT);
    assert_non_null(dst);
    int accepted = -1;
    assert_int_equal(l.T->recv_offer(l.rconn, 0, dst, SLOT, &accepted), CB_OK);
    assert_int_equal(accepted, l.T->caps.takes_offers);
    expect_next(&l);
    for (int k = 0; k < 1000; k++)   /* let the offer travel (verbs: an RDMA write) */
        progress(&l);
    double deadline = cb_now_s() + DEADLINE_S;
    while (!try_send(&l, 7)) {
        progress(&l);
        assert_true(cb_now_s() < deadline);
    }
    const void *in = NULL;
    size_t n = 0;
    while (!in) {   /* expected above */
        assert_int_equal(l.T->recv_slot(l.rconn, &in, &n), CB_OK);
        progress(&l);
        assert_true(cb_now_s() < deadline);
    }
    assert_int_equal(n, SLOT);
    for (size_t k = 0; k < n; k += 997)
        assert_int_equal(((const uint8_t *)in)[k], msg_byte(7, k));
    if (in == dst)
        assert_true(l.T->caps.takes_offers);
    assert_int_equal(l.T->recv_release(l.rconn), CB_OK);
    l.T->free_shared(l.rctx, dst);
    link_close(&l);
}

/* Each end reports the buffer memory the geometry says it holds: what
 * `collbench model --scale` multiplies by the connections per rank. With
 * shared slots the receiver holds none of its own; the pool (shared_bytes)
 * grows when a message is expected, by a FIFO's worth, where there is one. */
static void test_buffer_bytes_match_geometry(void **state)
{
    const struct env *e = *state;
    if (!e->ops)
        skip();
    struct link l;
    struct cb_transport_config cfg;
    link_open(&l, e, 0);
    make_cfg(e, &cfg, 0);
    size_t sent = l.T->send_bytes(l.sconn), received = l.T->recv_bytes(l.rconn);
    int shared = e->shared_slots;
    assert_int_equal(sent, l.T->geometry_bytes(&cfg, shared ? CB_END_SEND_SHARED : CB_END_SEND));
    assert_int_equal(received, l.T->geometry_bytes(&cfg, shared ? CB_END_RECV_SHARED : CB_END_RECV));
    assert_int_equal(l.T->shared_bytes(l.sctx) + l.T->shared_bytes(l.rctx), 0);
    if (shared && l.T == &cb_transport_verbs) {
        /* neither end holds slots of its own; with nothing reserved each
         * end's pool grows by a FIFO's worth when it first needs a slot */
        assert_true(sent < (size_t)SLOT && received < (size_t)SLOT);
        expect_next(&l);
        assert_int_equal(l.T->shared_bytes(l.rctx), l.T->shared_geometry_bytes(&cfg, NSLOTS));
        assert_true(l.T->shared_geometry_bytes(&cfg, NSLOTS) >= (size_t)NSLOTS * SLOT);
        while (!try_send(&l, 0))   /* staged (not lent): a slot of the sender's pool */
            progress(&l);
        assert_int_equal(l.T->shared_bytes(l.sctx), l.T->shared_geometry_bytes(&cfg, NSLOTS));
        while (!try_recv(&l, 0))
            progress(&l);
    } else {
        /* the receiver at least holds its slots: nothing is left out of the report */
        assert_true(received >= (size_t)NSLOTS * SLOT);
    }
    link_close(&l);
}

int main(void)
{
    static struct env envs[6];
    const struct cb_transport_ops *ops[3] = {&cb_transport_shm, &cb_transport_tcp, &cb_transport_verbs};
    static const struct {
        const char *name;
        CMUnitTestFunction fn;
    } cases[] = {
        {"messages_in_order", test_messages_in_order}, {"accept_before_connect", test_accept_before_connect},
        {"idle_only_when_consumed", test_idle_only_when_consumed}, {"lent_data", test_lent_data},
        {"offered_destination", test_offered_destination},
        {"buffer_bytes_match_geometry", test_buffer_bytes_match_geometry},
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };
    static char names[6][NCASES][64];
    struct CMUnitTest tests[6 * NCASES];
    /* each transport with its own slots per connection, then with shared slots */
    for (int t = 0; t < 6; t++) {
        const struct cb_transport_ops *o = ops[t % 3];
        envs[t].ops = o;
        envs[t].shared_slots = t >= 3;
        if (o == &cb_transport_verbs && !active_port(envs[t].hca, sizeof envs[t].hca))
            envs[t].ops = NULL;   /* its cases skip */
        for (int c = 0; c < NCASES; c++) {
            snprintf(names[t][c], sizeof names[t][c], "%s_%s%s", o->name, envs[t].shared_slots ? "shared_" : "",
                     cases[c].name);
            tests[t * NCASES + c] = (struct CMUnitTest){names[t][c], cases[c].fn, NULL, NULL, &envs[t]};
        }
    }
    return cmocka_run_group_tests_name("transport contract", tests, NULL, NULL);
}
