/* The shm transport in one process: two contexts, a sender and a receiver,
 * through /proc/self. Checks the slot path, and the direct path: a receiver's
 * offered destination in shared memory is where the sender's data lands, and
 * every case where the offer must not be used falls back to a slot; and the
 * read path: a lent source is read by the receiver where the sender has it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/transport.h"

#define SLOT (64 * 1024)
#define NSLOTS 4
#define BIG (16 * 1024)   /* takes the direct path */
#define SMALL 512         /* stays on the slot path */

static const struct cb_transport_ops *const T = &cb_transport_shm;

struct pair {
    void *sctx, *rctx, *sconn, *rconn;
};

static void *ctx_new(int rank)
{
    struct cb_transport_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.rank = rank;
    cfg.nranks = 2;
    snprintf(cfg.host, sizeof cfg.host, "host%d", rank);
    memset(cfg.token, 7, sizeof cfg.token);
    cfg.slot_bytes = SLOT;
    cfg.nslots = NSLOTS;
    cfg.timeout_ms = 5000;
    void *ctx = NULL;
    assert_int_equal(T->init(&cfg, &ctx), CB_OK);
    return ctx;
}

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof *p);
    struct cb_peer from = {.rank = 0, .host = "host0"}, to = {.rank = 1, .host = "host1"};
    uint8_t handle[CB_HANDLE_BYTES];
    void *listen = NULL;
    p->sctx = ctx_new(0);
    p->rctx = ctx_new(1);
    assert_int_equal(T->listen(p->rctx, &from, handle, &listen), CB_OK);
    assert_int_equal(T->connect(p->sctx, &to, handle, &p->sconn), CB_OK);
    assert_int_equal(T->accept(listen, &p->rconn), CB_OK);
    assert_non_null(p->sconn);
    assert_non_null(p->rconn);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    T->close_send(p->sconn);
    T->close_recv(p->rconn);
    T->finalize(p->sctx);
    T->finalize(p->rctx);
    free(p);
    return 0;
}

/* Send n bytes of `fill` as one message; returns the address the sender wrote to. */
static char *send_msg(struct pair *p, size_t n, int fill)
{
    void *out = NULL;
    assert_int_equal(T->send_slot(p->sconn, n, &out), CB_OK);
    assert_non_null(out);
    memset(out, fill, n);
    assert_int_equal(T->send_post(p->sconn, n), CB_OK);
    return out;
}

/* Receive one message; returns where it is (and checks size and content). */
static const char *recv_msg(struct pair *p, size_t n, int fill)
{
    const void *in = NULL;
    size_t got = 0;
    assert_int_equal(T->recv_slot(p->rconn, &in, &got), CB_OK);
    assert_non_null(in);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((const unsigned char *)in)[i], fill);
    assert_int_equal(T->recv_release(p->rconn), CB_OK);
    return in;
}

static int offer_at(struct pair *p, size_t ahead, void *dst, size_t n)
{
    int accepted = -1;
    assert_int_equal(T->recv_offer(p->rconn, ahead, dst, n, &accepted), CB_OK);
    return accepted;
}

static int offer(struct pair *p, void *dst, size_t n)
{
    return offer_at(p, 0, dst, n);
}

static void test_direct_lands_in_destination(void **state)
{
    struct pair *p = *state;
    char *window = T->alloc_shared(p->rctx, 4 * BIG);
    assert_non_null(window);
    memset(window, 0, 4 * BIG);
    assert_true(offer(p, window + BIG, BIG));
    char *wrote = send_msg(p, BIG, 0x5a);
    assert_ptr_not_equal(wrote, window + BIG);   /* the sender's own mapping of it */
    assert_ptr_equal(recv_msg(p, BIG, 0x5a), window + BIG);
    assert_int_equal(window[BIG - 1], 0);         /* nothing written around it */
    assert_int_equal(window[2 * BIG], 0);
    T->free_shared(p->rctx, window);
}

static void test_private_or_small_stays_on_slots(void **state)
{
    struct pair *p = *state;
    char *priv = malloc(BIG), *window = T->alloc_shared(p->rctx, BIG);
    assert_false(offer(p, priv, BIG));        /* not shared: the sender cannot reach it */
    assert_false(offer(p, window, SMALL));    /* small: not worth the offer */
    send_msg(p, BIG, 1);
    assert_ptr_not_equal(recv_msg(p, BIG, 1), priv);
    send_msg(p, SMALL, 2);
    assert_ptr_not_equal(recv_msg(p, SMALL, 2), window);
    free(priv);
    T->free_shared(p->rctx, window);
}

/* An offer the sender did not see in time, or of another size, costs nothing. */
static void test_late_or_mismatched_offer_uses_slot(void **state)
{
    struct pair *p = *state;
    char *window = T->alloc_shared(p->rctx, 2 * BIG);
    send_msg(p, BIG, 3);                       /* written before the offer */
    assert_true(offer(p, window, BIG));
    assert_ptr_not_equal(recv_msg(p, BIG, 3), window);
    assert_true(offer(p, window, BIG));        /* offered BIG, sender writes BIG + 64 */
    send_msg(p, BIG + 64, 4);
    assert_ptr_not_equal(recv_msg(p, BIG + 64, 4), window);
    T->free_shared(p->rctx, window);
}

/* At most nslots messages are offered ahead of the receiver's releases, and
 * each lands in its own destination, in order. */
static void test_offers_ahead_are_bounded_and_ordered(void **state)
{
    struct pair *p = *state;
    char *window = T->alloc_shared(p->rctx, (NSLOTS + 1) * BIG);
    for (int i = 0; i < NSLOTS; i++)
        assert_true(offer_at(p, (size_t)i, window + (size_t)i * BIG, BIG));
    assert_false(offer_at(p, NSLOTS, window + (size_t)NSLOTS * BIG, BIG));
    for (int i = 0; i < NSLOTS; i++)
        send_msg(p, BIG, 10 + i);
    for (int i = 0; i < NSLOTS; i++)
        assert_ptr_equal(recv_msg(p, BIG, 10 + i), window + (size_t)i * BIG);
    assert_true(offer(p, window + (size_t)NSLOTS * BIG, BIG));   /* room again */
    send_msg(p, BIG, 20);
    assert_ptr_equal(recv_msg(p, BIG, 20), window + (size_t)NSLOTS * BIG);
    T->free_shared(p->rctx, window);
}

/* A freed window's fd number comes back for the next one: the sender must
 * not write through its old mapping. */
static void test_reused_fd_is_mapped_again(void **state)
{
    struct pair *p = *state;
    char *a = T->alloc_shared(p->rctx, BIG);
    assert_true(offer(p, a, BIG));
    send_msg(p, BIG, 30);
    assert_ptr_equal(recv_msg(p, BIG, 30), a);
    T->free_shared(p->rctx, a);
    char *b = T->alloc_shared(p->rctx, BIG);
    memset(b, 0, BIG);
    assert_true(offer(p, b, BIG));
    send_msg(p, BIG, 31);
    assert_ptr_equal(recv_msg(p, BIG, 31), b);
    T->free_shared(p->rctx, b);
}

/* An offer behind messages that get none: those use slots, it lands in
 * place; an offer once made is kept, a different one for the same message is
 * refused and the data lands where the first one said. */
static void test_offer_ahead_of_slot_messages(void **state)
{
    struct pair *p = *state;
    char *window = T->alloc_shared(p->rctx, 3 * BIG);
    assert_true(offer_at(p, 2, window, BIG));
    assert_true(offer_at(p, 2, window, BIG));             /* the same again: still taken */
    assert_false(offer_at(p, 2, window + BIG, BIG));      /* another for the same message */
    send_msg(p, BIG, 40);
    send_msg(p, SMALL, 41);
    send_msg(p, BIG, 42);
    assert_ptr_not_equal(recv_msg(p, BIG, 40), window);
    assert_ptr_not_equal(recv_msg(p, SMALL, 41), window);
    assert_ptr_equal(recv_msg(p, BIG, 42), window);
    T->free_shared(p->rctx, window);
}

/* Lend n bytes at src (sender's shared memory); returns whether it was lent. */
static int lend(struct pair *p, const char *src, size_t n)
{
    void *out = NULL;
    int lent = -1;
    assert_int_equal(T->send_slot(p->sconn, n, &out), CB_OK);
    assert_non_null(out);
    assert_int_equal(T->send_lend(p->sconn, src, n, &lent), CB_OK);
    if (!lent) {   /* what a caller does when the transport does not take it */
        memcpy(out, src, n);
        assert_int_equal(T->send_post(p->sconn, n), CB_OK);
    }
    return lent;
}

static int sender_idle(struct pair *p)
{
    int idle = -1;
    assert_int_equal(T->send_idle(p->sconn, &idle), CB_OK);
    return idle;
}

/* The receiver reads the sender's buffer itself: what the sender writes there
 * before the release is what the receiver sees; send_idle says when the
 * buffer is free again. */
static void test_lent_source_is_read_in_place(void **state)
{
    struct pair *p = *state;
    char *src = T->alloc_shared(p->sctx, 2 * BIG);
    memset(src, 0x21, 2 * BIG);
    assert_true(lend(p, src + BIG, BIG));
    assert_false(sender_idle(p));
    const void *in = NULL;
    size_t got = 0;
    assert_int_equal(T->recv_slot(p->rconn, &in, &got), CB_OK);
    assert_int_equal(got, BIG);
    assert_ptr_not_equal(in, src + BIG);          /* the receiver's own mapping */
    assert_int_equal(((const char *)in)[0], 0x21);
    src[BIG] = 0x22;                              /* no copy was made */
    assert_int_equal(((const char *)in)[0], 0x22);
    assert_int_equal(T->recv_release(p->rconn), CB_OK);
    assert_true(sender_idle(p));
    T->free_shared(p->sctx, src);
}

/* Private memory or a small message: not lent, the data is copied as usual
 * and arrives intact. A destination the receiver offered does not stop a
 * lend: the receiver reads the sender's buffer and copies into it itself. */
static void test_source_lent_only_when_it_can_be(void **state)
{
    struct pair *p = *state;
    char *priv = malloc(BIG), *src = T->alloc_shared(p->sctx, BIG), *dst = T->alloc_shared(p->rctx, BIG);
    memset(priv, 50, BIG);
    memset(src, 51, BIG);
    assert_false(lend(p, priv, BIG));
    assert_ptr_not_equal(recv_msg(p, BIG, 50), priv);
    assert_false(lend(p, src, SMALL));
    recv_msg(p, SMALL, 51);
    assert_true(offer(p, dst, BIG));
    assert_true(lend(p, src, BIG));
    assert_ptr_not_equal(recv_msg(p, BIG, 51), dst);
    free(priv);
    T->free_shared(p->sctx, src);
    T->free_shared(p->rctx, dst);
}

/* Lent and copied messages keep their order; a freed window's fd number
 * that comes back is mapped again on the receiver's side too. */
static void test_lent_and_slot_messages_in_order(void **state)
{
    struct pair *p = *state;
    char *a = T->alloc_shared(p->sctx, BIG);
    memset(a, 60, BIG);
    assert_true(lend(p, a, BIG));
    send_msg(p, SMALL, 61);
    recv_msg(p, BIG, 60);
    recv_msg(p, SMALL, 61);
    T->free_shared(p->sctx, a);
    char *b = T->alloc_shared(p->sctx, BIG);
    memset(b, 62, BIG);
    assert_true(lend(p, b, BIG));
    recv_msg(p, BIG, 62);
    T->free_shared(p->sctx, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_direct_lands_in_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_or_small_stays_on_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_or_mismatched_offer_uses_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offers_ahead_are_bounded_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_fd_is_mapped_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offer_ahead_of_slot_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lent_source_is_read_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_lent_only_when_it_can_be, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lent_and_slot_messages_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
