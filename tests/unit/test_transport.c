/* The transport table: every transport has every operation (the layers
 * above never test one for NULL), names are unique and found again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "transport/transport.h"

static void test_every_operation_present(void **state)
{
    (void)state;
    int n = 0;
    for (int i = 0; cb_transports[i]; i++, n++) {
        const struct cb_transport_ops *t = cb_transports[i];
        assert_non_null(t->name);
        void (*const ops[])(void) = {
            (void (*)(void))t->usable, (void (*)(void))t->init, (void (*)(void))t->properties, (void (*)(void))t->listen,
            (void (*)(void))t->connect, (void (*)(void))t->accept, (void (*)(void))t->close_listen,
            (void (*)(void))t->send_slot, (void (*)(void))t->send_post, (void (*)(void))t->recv_slot,
            (void (*)(void))t->recv_release, (void (*)(void))t->progress, (void (*)(void))t->send_idle,
            (void (*)(void))t->alloc_shared, (void (*)(void))t->free_shared, (void (*)(void))t->recv_offer,
            (void (*)(void))t->send_lend, (void (*)(void))t->close_send, (void (*)(void))t->close_recv,
            (void (*)(void))t->port_events, (void (*)(void))t->finalize,
        };
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
            if (!ops[k])
                fail_msg("transport %s: operation %zu is NULL", t->name, k);
        assert_ptr_equal(cb_transport_find(t->name), t);
        /* a transport that does not lend or take offers uses the defaults */
        if (!t->caps.lends)
            assert_ptr_equal(t->send_lend, cb_transport_no_lend);
        if (!t->caps.takes_offers)
            assert_ptr_equal(t->recv_offer, cb_transport_no_offer);
    }
    assert_int_equal(n, 3);
    assert_null(cb_transport_find("nccl"));
    char names[64];
    cb_transport_names(names, sizeof names, " or ");
    assert_string_equal(names, "shm, tcp or verbs");
}

static void test_defaults_do_nothing(void **state)
{
    (void)state;
    int flag = 1;
    char buf[8];
    assert_int_equal(cb_transport_no_offer(NULL, 0, buf, sizeof buf, &flag), CB_OK);
    assert_int_equal(flag, 0);
    flag = 1;
    assert_int_equal(cb_transport_no_lend(NULL, buf, sizeof buf, &flag), CB_OK);
    assert_int_equal(flag, 0);
    void *p = cb_transport_plain_alloc(NULL, 8192);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0);
    memset(p, 1, 8192);
    cb_transport_plain_free(NULL, p);
    assert_int_equal(cb_transport_no_port_events(NULL, 0, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_operation_present),
        cmocka_unit_test(test_defaults_do_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
