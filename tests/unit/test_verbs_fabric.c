/* The verbs transport's fabric rules, without a device: the FIFO entry's
 * layout and torn-read check, the connection handle and the MTU both ends
 * agree on, --hca's grammar (NCCL_IB_HCA's), the automatic choice's rule
 * for NICs of another kind and the SL oob derives as rdma_cm does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/hca.h"
#include "transport/verbs_internal.h"

/* ---- stderr capture, for the messages */
static int saved_fd = -1;
static FILE *cap;

static void capture_begin(void)
{
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(2);
    dup2(fileno(cap), 2);
}

static char *capture_end(void)
{
    static char buf[4096];
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    rewind(cap);
    size_t n = fread(buf, 1, sizeof buf - 1, cap);
    buf[n] = '\0';
    fclose(cap);
    return buf;
}

/* ---- FIFO entries */

static void fifo_entry_layout(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct cts_entry), 32);
    assert_int_equal(_Alignof(struct cts_entry), 32);
    assert_int_equal(offsetof(struct cts_entry, addr), 0);
    assert_int_equal(offsetof(struct cts_entry, rkey), 8);
    assert_int_equal(offsetof(struct cts_entry, size), 12);
    assert_int_equal(offsetof(struct cts_entry, seq), 16);
    assert_int_equal(offsetof(struct cts_entry, check), 20);
    /* the region is page-aligned (posix_memalign 4096): no entry spans a 32-byte boundary or a cache line */
    for (int nslots = 1; nslots <= 1024; nslots *= 2) {
        size_t bytes = vb_fifo_entries_bytes(nslots);
        assert_true(bytes >= 2 * (size_t)nslots * 32);
        assert_int_equal(bytes % 4096, 0);
        for (int i = 0; i < 2 * nslots; i++) {
            size_t off = (size_t)i * sizeof(struct cts_entry);
            assert_int_equal(off % 32, 0);
            assert_true(off / 64 == (off + sizeof(struct cts_entry) - 1) / 64);
        }
    }
    struct cts_entry *e = NULL;
    assert_int_equal(posix_memalign((void **)&e, 4096, vb_fifo_entries_bytes(4)), 0);
    assert_int_equal((uintptr_t)&e[3] % 32, 0);
    free(e);
}

static void fifo_entry_torn_reads_are_rejected(void **state)
{
    (void)state;
    struct cts_entry old = vb_entry_make(0x7f0000001000u, 0x1234, 4096, 5);
    struct cts_entry new = vb_entry_make(0x7f0000009000u, 0x5678, 8192, 13);
    struct cts_entry e, out;
    assert_int_equal(vb_entry_read(&new, 13, &out), 1);
    assert_int_equal(out.addr, new.addr);
    assert_int_equal(out.rkey, new.rkey);
    assert_int_equal(out.size, new.size);
    assert_int_equal(vb_entry_read(&old, 13, &out), 0);   /* not yet written */
    memset(&e, 0, sizeof e);
    assert_int_equal(vb_entry_read(&e, 1, &out), 0);      /* never written */
    /* the new sequence number with any field of the old write: not ready */
    e = new; e.addr = old.addr;
    assert_int_equal(vb_entry_read(&e, 13, &out), 0);
    e = new; e.rkey = old.rkey;
    assert_int_equal(vb_entry_read(&e, 13, &out), 0);
    e = new; e.size = old.size;
    assert_int_equal(vb_entry_read(&e, 13, &out), 0);
    e = new; e.check = old.check;
    assert_int_equal(vb_entry_read(&e, 13, &out), 0);
    e = old; e.seq = 13;
    assert_int_equal(vb_entry_read(&e, 13, &out), 0);
    /* a mix of two writes of the same slot one FIFO apart, field by field */
    int caught = 0, mixes = 0;
    for (int mask = 1; mask < 15; mask++) {
        e = old;
        e.seq = new.seq;
        if (mask & 1) e.addr = new.addr;
        if (mask & 2) e.rkey = new.rkey;
        if (mask & 4) e.size = new.size;
        if (mask & 8) e.check = new.check;
        mixes++;
        caught += !vb_entry_read(&e, 13, &out);
    }
    assert_int_equal(caught, mixes);
}

/* ---- the handle and the MTU */

static struct vb_hinfo sample_handle(void)
{
    struct vb_hinfo h;
    memset(&h, 0, sizeof h);
    h.family = AF_INET;
    h.nonce = 0xdeadbeef;
    h.rank = 3;
    h.port_be = htons(18515);
    h.qps.nqps = 2;
    h.nslots = 8;
    h.slot_bytes = 512 << 10;
    h.addr[0] = 10; h.addr[1] = 77; h.addr[2] = 0; h.addr[3] = 2;
    h.mtu = IBV_MTU_1024;
    h.active_mtu = IBV_MTU_4096;
    h.mtu_asked = 1;
    h.link_layer = IBV_LINK_LAYER_ETHERNET;
    h.rate_mbps = 100000;
    h.split_data = 1;
    h.pooled = 1;
    snprintf(h.qps.dev, sizeof h.qps.dev, "mlx5_1");
    snprintf(h.host, sizeof h.host, "nodeb");
    h.qps.connect_mode = VB_CONNECT_OOB;
    h.qps.gid_index = 3;
    h.qps.lid = 0x1234;
    for (int i = 0; i < 16; i++)
        h.qps.gid[i] = (uint8_t)(0xf0 + i);
    h.qps.psn = 0xabcdef;
    h.qps.qpn[0] = 0x000111;
    h.qps.qpn[1] = 0xfedcba;
    return h;
}

static void handle_round_trip(void **state)
{
    (void)state;
    struct vb_hinfo h = sample_handle(), back;
    unsigned char buf[CB_HANDLE_BYTES];
    struct cb_peer peer = {.rank = 3, .host = "nodeb"};
    memset(buf, 0xa5, sizeof buf);
    vb_handle_encode(&h, buf);
    for (size_t i = sizeof(struct vhandle); i < sizeof buf; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(vb_handle_decode(buf, &peer, &back), CB_OK);
    assert_int_equal(back.family, AF_INET);
    assert_int_equal(back.nonce, 0xdeadbeef);
    assert_int_equal(back.rank, 3);
    assert_int_equal(back.port_be, htons(18515));
    assert_int_equal(back.qps.nqps, 2);
    assert_int_equal(back.nslots, 8);
    assert_int_equal(back.slot_bytes, 512 << 10);
    assert_memory_equal(back.addr, h.addr, 16);
    assert_int_equal(back.mtu, IBV_MTU_1024);
    assert_int_equal(back.active_mtu, IBV_MTU_4096);
    assert_int_equal(back.mtu_asked, 1);
    assert_int_equal(back.link_layer, IBV_LINK_LAYER_ETHERNET);
    assert_int_equal(back.rate_mbps, 100000);
    assert_int_equal(back.split_data, 1);
    assert_int_equal(back.pooled, 1);
    assert_string_equal(back.qps.dev, "mlx5_1");
    assert_string_equal(back.host, "nodeb");
    assert_int_equal(back.qps.connect_mode, VB_CONNECT_OOB);
    assert_int_equal(back.qps.gid_index, 3);
    assert_int_equal(back.qps.lid, 0x1234);
    assert_memory_equal(back.qps.gid, h.qps.gid, 16);
    assert_int_equal(back.qps.psn, 0xabcdef);
    assert_int_equal(back.qps.qpn[0], 0x000111);
    assert_int_equal(back.qps.qpn[1], 0xfedcba);
    /* big-endian on the wire: the rank's bytes, a QP number's */
    struct vhandle raw;
    memcpy(&raw, buf, sizeof raw);
    assert_int_equal(((unsigned char *)&raw.rank)[3], 3);
    assert_int_equal(((unsigned char *)&raw.qps.qpn[1])[1], 0xfe);
}

static void handle_refused(void **state)
{
    (void)state;
    struct vb_hinfo h = sample_handle(), back;
    unsigned char buf[CB_HANDLE_BYTES];
    struct cb_peer peer = {.rank = 3, .host = "nodeb"};
    struct vhandle raw;
    vb_handle_encode(&h, buf);
    memcpy(&raw, buf, sizeof raw);
    raw.version = htons(3);   /* a build before --ib-connect and split_data */
    memcpy(buf, &raw, sizeof raw);
    capture_begin();
    cb_status st = vb_handle_decode(buf, &peer, &back);
    char *msg = capture_end();
    assert_int_equal(st, CB_EUSAGE);
    assert_non_null(strstr(msg, "rank 3 (nodeb) is not a verbs handle of this version (3, this build 7)"));
    vb_handle_encode(&h, buf);
    memcpy(&raw, buf, sizeof raw);
    raw.mtu = 9;   /* no such MTU code */
    memcpy(buf, &raw, sizeof raw);
    capture_begin();
    st = vb_handle_decode(buf, &peer, &back);
    capture_end();
    assert_int_equal(st, CB_EUSAGE);
    vb_handle_encode(&h, buf);
    memcpy(&raw, buf, sizeof raw);
    raw.qps.connect_mode = 0;   /* neither cm nor oob */
    memcpy(buf, &raw, sizeof raw);
    capture_begin();
    st = vb_handle_decode(buf, &peer, &back);
    msg = capture_end();
    assert_int_equal(st, CB_EUSAGE);
    assert_non_null(strstr(msg, "connect mode 0"));
    memset(buf, 0, sizeof buf);
    capture_begin();
    st = vb_handle_decode(buf, &peer, &back);
    capture_end();
    assert_int_equal(st, CB_EUSAGE);
}

static struct vb_rinfo sample_reply(void)
{
    struct vb_rinfo r;
    memset(&r, 0, sizeof r);
    r.qps.connect_mode = VB_CONNECT_OOB;
    r.ok = 1;
    r.rank = 5;
    r.nonce = 0xdeadbeef;
    for (int i = 0; i < CB_TOKEN_BYTES; i++)
        r.token[i] = (uint8_t)(i * 7);
    r.qps.nqps = VB_MAX_QPS;
    r.qps.lid = 0x4321;
    for (int i = 0; i < 16; i++)
        r.qps.gid[i] = (uint8_t)(0x10 + i);
    r.qps.gid_index = 1;
    r.path_mtu = IBV_MTU_2048;
    r.link_layer = IBV_LINK_LAYER_INFINIBAND;
    r.qps.psn = 0x123456;
    r.cts_rkey = 0x89abcdef;
    r.cts_addr = UINT64_C(0x00007f0012345000);
    for (int i = 0; i < VB_MAX_QPS; i++)
        r.qps.qpn[i] = 0x100000u + (uint32_t)i;
    snprintf(r.qps.dev, sizeof r.qps.dev, "mlx5_0");
    return r;
}

/* --ib-connect oob: the sender's reply carries its half of every QP (all 64 fit) */
static void reply_round_trip(void **state)
{
    (void)state;
    struct vb_rinfo r = sample_reply(), back;
    unsigned char buf[CB_HANDLE_BYTES];
    struct cb_peer peer = {.rank = 5, .host = "nodec"};
    memset(buf, 0xa5, sizeof buf);
    vb_reply_encode(&r, buf);
    for (size_t i = sizeof(struct vreply); i < sizeof buf; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(vb_reply_decode(buf, &peer, &back), CB_OK);
    assert_int_equal(back.qps.connect_mode, VB_CONNECT_OOB);
    assert_int_equal(back.ok, 1);
    assert_int_equal(back.rank, 5);
    assert_int_equal(back.nonce, 0xdeadbeef);
    assert_memory_equal(back.token, r.token, CB_TOKEN_BYTES);
    assert_int_equal(back.qps.nqps, VB_MAX_QPS);
    assert_int_equal(back.qps.lid, 0x4321);
    assert_memory_equal(back.qps.gid, r.qps.gid, 16);
    assert_int_equal(back.qps.gid_index, 1);
    assert_int_equal(back.path_mtu, IBV_MTU_2048);
    assert_int_equal(back.link_layer, IBV_LINK_LAYER_INFINIBAND);
    assert_int_equal(back.qps.psn, 0x123456);
    assert_int_equal(back.cts_rkey, 0x89abcdef);
    assert_true(back.cts_addr == UINT64_C(0x00007f0012345000));
    assert_int_equal(back.qps.qpn[0], 0x100000);
    assert_int_equal(back.qps.qpn[VB_MAX_QPS - 1], 0x100000 + VB_MAX_QPS - 1);
    assert_string_equal(back.qps.dev, "mlx5_0");
    struct vreply raw;
    memcpy(&raw, buf, sizeof raw);
    assert_int_equal(((unsigned char *)&raw.cts_rkey)[0], 0x89);   /* big-endian */
    /* a failed sender still answers, so the receiver does not wait */
    r.ok = 0;
    vb_reply_encode(&r, buf);
    assert_int_equal(vb_reply_decode(buf, &peer, &back), CB_OK);
    assert_int_equal(back.ok, 0);
}

static void reply_refused(void **state)
{
    (void)state;
    struct vb_rinfo r = sample_reply(), back;
    unsigned char buf[CB_HANDLE_BYTES];
    struct cb_peer peer = {.rank = 5, .host = "nodec"};
    struct vreply raw;
    vb_reply_encode(&r, buf);
    memcpy(&raw, buf, sizeof raw);
    raw.version = htons(3);
    memcpy(buf, &raw, sizeof raw);
    capture_begin();
    cb_status st = vb_reply_decode(buf, &peer, &back);
    char *msg = capture_end();
    assert_int_equal(st, CB_EUSAGE);
    assert_non_null(strstr(msg, "reply from rank 5 (nodec) is not a verbs reply of this version (3, this build 7)"));
    vb_reply_encode(&r, buf);
    memcpy(&raw, buf, sizeof raw);
    raw.qps.nqps = htons(VB_MAX_QPS + 1);
    memcpy(buf, &raw, sizeof raw);
    capture_begin();
    st = vb_reply_decode(buf, &peer, &back);
    capture_end();
    assert_int_equal(st, CB_EUSAGE);
    memset(buf, 0, sizeof buf);   /* a handle is not a reply */
    struct vb_hinfo h = sample_handle();
    vb_handle_encode(&h, buf);
    capture_begin();
    st = vb_reply_decode(buf, &peer, &back);
    capture_end();
    assert_int_equal(st, CB_EUSAGE);
}

static struct vb_end end_of(int rank, const char *host, const char *dev, int ll, enum ibv_mtu active, int asked,
                            enum ibv_mtu want, unsigned rate)
{
    return (struct vb_end){rank, host, dev, ll, asked ? want : active, active, asked, rate};
}

static void mtu_is_the_smaller_on_both_ends(void **state)
{
    (void)state;
    struct vb_end a = end_of(0, "nodea", "rxe0", IBV_LINK_LAYER_ETHERNET, IBV_MTU_4096, 0, 0, 10000);
    struct vb_end b = end_of(1, "nodeb", "rxe0", IBV_LINK_LAYER_ETHERNET, IBV_MTU_1024, 0, 0, 10000);
    enum ibv_mtu m = IBV_MTU_256;
    char warn[128];
    assert_int_equal(vb_agree_mtu(&a, &b, &m, warn, sizeof warn), CB_OK);
    assert_int_equal(m, IBV_MTU_1024);
    assert_string_equal(warn, "");
    m = IBV_MTU_256;
    assert_int_equal(vb_agree_mtu(&b, &a, &m, warn, sizeof warn), CB_OK);
    assert_int_equal(m, IBV_MTU_1024);
    /* an --mtu both can take wins */
    struct vb_end a512 = end_of(0, "nodea", "rxe0", IBV_LINK_LAYER_ETHERNET, IBV_MTU_4096, 1, IBV_MTU_512, 10000);
    struct vb_end b512 = end_of(1, "nodeb", "rxe0", IBV_LINK_LAYER_ETHERNET, IBV_MTU_1024, 1, IBV_MTU_512, 10000);
    assert_int_equal(vb_agree_mtu(&a512, &b512, &m, NULL, 0), CB_OK);
    assert_int_equal(m, IBV_MTU_512);
    assert_int_equal(vb_agree_mtu(&a512, &b, &m, NULL, 0), CB_OK);
    assert_int_equal(m, IBV_MTU_512);
}

static void mtu_asked_above_the_peer_is_refused(void **state)
{
    (void)state;
    struct vb_end a = end_of(0, "nodea", "mlx5_0", IBV_LINK_LAYER_ETHERNET, IBV_MTU_4096, 1, IBV_MTU_2048, 0);
    struct vb_end b = end_of(1, "nodeb", "mlx5_3", IBV_LINK_LAYER_ETHERNET, IBV_MTU_1024, 0, 0, 0);
    enum ibv_mtu m;
    capture_begin();
    cb_status st = vb_agree_mtu(&a, &b, &m, NULL, 0);
    char *msg = capture_end();
    assert_int_equal(st, CB_EUSAGE);
    assert_non_null(strstr(msg, "rank 0 (nodea, mlx5_0) was given --mtu 2048 but rank 1 (nodeb, mlx5_3) can take "
                                "at most 1024"));
    capture_begin();
    st = vb_agree_mtu(&b, &a, &m, NULL, 0);   /* the same, seen from the other end */
    msg = capture_end();
    assert_int_equal(st, CB_EUSAGE);
    assert_non_null(strstr(msg, "rank 0 (nodea, mlx5_0) was given --mtu 2048"));
}

static void infiniband_to_ethernet_is_refused(void **state)
{
    (void)state;
    struct vb_end a = end_of(0, "gpu01", "mlx5_0", IBV_LINK_LAYER_INFINIBAND, IBV_MTU_4096, 0, 0, 400000);
    struct vb_end b = end_of(5, "gpu02", "mlx5_4", IBV_LINK_LAYER_ETHERNET, IBV_MTU_4096, 0, 0, 400000);
    enum ibv_mtu m;
    capture_begin();
    cb_status st = vb_agree_mtu(&a, &b, &m, NULL, 0);
    char *msg = capture_end();
    assert_int_equal(st, CB_EDEVICE);
    assert_non_null(strstr(msg, "rank 0 (gpu01, device mlx5_0) has an InfiniBand port and rank 5 (gpu02, device "
                                "mlx5_4) an Ethernet port"));
    assert_non_null(strstr(msg, "--hca"));
}

static void rate_mismatch_is_a_warning(void **state)
{
    (void)state;
    struct vb_end a = end_of(0, "nodea", "mlx5_0", IBV_LINK_LAYER_INFINIBAND, IBV_MTU_4096, 0, 0, 400000);
    struct vb_end b = end_of(1, "nodeb", "mlx5_0", IBV_LINK_LAYER_INFINIBAND, IBV_MTU_4096, 0, 0, 200000);
    enum ibv_mtu m;
    char warn[128];
    assert_int_equal(vb_agree_mtu(&a, &b, &m, warn, sizeof warn), CB_OK);
    assert_int_equal(m, IBV_MTU_4096);
    assert_string_equal(warn, "rank 1 nodeb:mlx5_0 200 Gb/s, here 400 Gb/s");
}

/* ---- --hca */

static void hca_grammar_good(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int exclude, exact, n;
        const char *name0;
        int port0;
        const char *name1;
        int port1;
    } good[] = {
        {"", 0, 0, 0, NULL, 0, NULL, 0},
        {"mlx5_0:1", 0, 0, 1, "mlx5_0", 1, NULL, 0},
        {"mlx5_0:1,mlx5_1:2", 0, 0, 2, "mlx5_0", 1, "mlx5_1", 2},
        {"mlx5", 0, 0, 1, "mlx5", 0, NULL, 0},
        {"^mlx5_4", 1, 0, 1, "mlx5_4", 0, NULL, 0},
        {"=mlx5_1", 0, 1, 1, "mlx5_1", 0, NULL, 0},
        {"^=mlx5_4:2,mlx5_5", 1, 1, 2, "mlx5_4", 2, "mlx5_5", 0},
        {"rxe0:1", 0, 0, 1, "rxe0", 1, NULL, 0},
        {"bnxt_re0,irdma-1.a", 0, 0, 2, "bnxt_re0", 0, "irdma-1.a", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct cb_hca_spec s;
        char err[512];
        assert_int_equal(cb_hca_parse(good[i].s, &s, err, sizeof err), CB_OK);
        assert_string_equal(err, "");
        assert_int_equal(s.exclude, good[i].exclude);
        assert_int_equal(s.exact, good[i].exact);
        assert_int_equal(s.n, good[i].n);
        if (good[i].name0) {
            assert_string_equal(s.e[0].name, good[i].name0);
            assert_int_equal(s.e[0].port, good[i].port0);
        }
        if (good[i].name1) {
            assert_string_equal(s.e[1].name, good[i].name1);
            assert_int_equal(s.e[1].port, good[i].port1);
        }
    }
}

static void hca_grammar_bad(void **state)
{
    (void)state;
    static const struct { const char *s, *why; } bad[] = {
        {"^", "no device after '^'"},
        {"=", "no device after '='"},
        {"^=", "no device after '='"},
        {"mlx5_0,,mlx5_1", "an entry is empty"},
        {"mlx5_0,", "an entry is empty"},
        {",mlx5_0", "an entry is empty"},
        {":1", "entry ':1' has no device name"},
        {"mlx5_0:", "entry 'mlx5_0:' has no port after ':'"},
        {"mlx5_0:x", "the port of entry 'mlx5_0:x' is not a number from 1 to 255"},
        {"mlx5_0:0", "the port of entry 'mlx5_0:0' is not a number from 1 to 255"},
        {"mlx5_0:256", "the port of entry 'mlx5_0:256' is not a number from 1 to 255"},
        {"mlx5_0:1:2", "is not a number from 1 to 255"},
        {"mlx5_0:-1", "is not a number from 1 to 255"},
        {"mlx5_0,^mlx5_1", "'^mlx5_1': '^' and '=' go only at the start of the list"},
        {"=^mlx5_1", "'^mlx5_1': '^' and '=' go only at the start"},
        {"mlx5 0", "entry 'mlx5 0' has the character ' '"},
        {"mlx5_0;mlx5_1", "has the character ';'"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too long"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cb_hca_spec s;
        char err[512];
        assert_int_equal(cb_hca_parse(bad[i].s, &s, err, sizeof err), CB_EUSAGE);
        if (!strstr(err, bad[i].why) || !strstr(err, "NCCL_IB_HCA")) {
            print_message("'%s' -> '%s' (wanted '%s')\n", bad[i].s, err, bad[i].why);
            fail();
        }
        assert_non_null(strstr(err, "cannot parse --hca '"));
        assert_int_equal(s.n, 0);
    }
    char many[512] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sd%d", i ? "," : "", i);
    struct cb_hca_spec s;
    char err[512];
    assert_int_equal(cb_hca_parse(many, &s, err, sizeof err), CB_EUSAGE);
    assert_non_null(strstr(err, "more than 32 entries"));
}

static void hca_selects(void **state)
{
    (void)state;
    struct cb_hca_spec s;
    char err[512];
    assert_int_equal(cb_hca_parse("mlx5_1", &s, err, sizeof err), CB_OK);
    assert_true(cb_hca_selects(&s, "mlx5_1", 1));
    assert_true(cb_hca_selects(&s, "mlx5_10", 2));   /* a prefix, as in NCCL */
    assert_false(cb_hca_selects(&s, "mlx5_0", 1));
    assert_int_equal(cb_hca_parse("=mlx5_1:1", &s, err, sizeof err), CB_OK);
    assert_true(cb_hca_selects(&s, "mlx5_1", 1));
    assert_false(cb_hca_selects(&s, "mlx5_1", 2));
    assert_false(cb_hca_selects(&s, "mlx5_10", 1));
    assert_int_equal(cb_hca_parse("^mlx5_4,mlx5_5:2", &s, err, sizeof err), CB_OK);
    assert_false(cb_hca_selects(&s, "mlx5_4", 1));
    assert_false(cb_hca_selects(&s, "mlx5_5", 2));
    assert_true(cb_hca_selects(&s, "mlx5_5", 1));
    assert_true(cb_hca_selects(&s, "mlx5_0", 1));
    assert_int_equal(cb_hca_parse("", &s, err, sizeof err), CB_OK);
    assert_true(cb_hca_selects(&s, "anything", 1));
}

static void other_kinds_of_nic_are_skipped(void **state)
{
    (void)state;
    struct cb_port_desc p[] = {
        {"mlx5_0", 1, IBV_LINK_LAYER_INFINIBAND, 400000}, {"mlx5_1", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
        {"mlx5_2", 1, IBV_LINK_LAYER_ETHERNET, 25000},    {"mlx5_3", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
        {"mlx5_4", 1, IBV_LINK_LAYER_INFINIBAND, 200000},
    };
    int keep[5];
    char note[256];
    assert_int_equal(cb_ports_majority(p, 5, keep, note, sizeof note), 2);
    assert_int_equal(keep[0], 1);
    assert_int_equal(keep[1], 1);
    assert_int_equal(keep[2], 0);
    assert_int_equal(keep[3], 1);
    assert_int_equal(keep[4], 0);
    assert_string_equal(note, "skipped mlx5_2:1 (Ethernet 25 Gb/s), mlx5_4:1 (InfiniBand 200 Gb/s); using the 3 "
                              "InfiniBand 400 Gb/s ports");
    /* one of each: the faster */
    assert_int_equal(cb_ports_majority(p + 1, 2, keep, note, sizeof note), 1);
    assert_int_equal(keep[0], 1);
    assert_int_equal(keep[1], 0);
    /* all alike (or all unknown, as in an XML topology): nothing skipped */
    struct cb_port_desc q[] = {{"rxe0", 1, 0, 0}, {"rxe1", 1, 0, 0}};
    assert_int_equal(cb_ports_majority(q, 2, keep, note, sizeof note), 0);
    assert_string_equal(note, "");
    assert_int_equal(keep[0] + keep[1], 2);
}

/* One rank per host with a list of several: stripe; k ranks per host, no
 * list, or a list of one: each rank one device (rails). */
static void hca_stripe_rule(void **state)
{
    (void)state;
    assert_true(cb_hca_stripes(1, 1, 2));
    assert_true(cb_hca_stripes(1, 0, 8));    /* local size unknown: alone */
    assert_false(cb_hca_stripes(1, 2, 2));   /* 2 ranks, 2 NICs: one each */
    assert_false(cb_hca_stripes(1, 2, 8));
    assert_false(cb_hca_stripes(1, 1, 1));
    assert_false(cb_hca_stripes(0, 1, 4));   /* no --hca: the automatic choice picks one */
}

/* Channel c on device c mod ndev: every device carries channels, equal
 * lists keep a channel on one rail at both ends. */
static void hca_channel_device(void **state)
{
    (void)state;
    int per_dev[3] = {0};
    for (int c = 0; c < 12; c++)
        per_dev[cb_hca_channel_device(c, 3)]++;
    assert_int_equal(per_dev[0], 4);
    assert_int_equal(per_dev[1], 4);
    assert_int_equal(per_dev[2], 4);
    assert_int_equal(cb_hca_channel_device(5, 2), 1);
    assert_int_equal(cb_hca_channel_device(4, 2), 0);
    assert_int_equal(cb_hca_channel_device(7, 1), 0);
    assert_int_equal(cb_hca_channel_device(3, 0), 0);   /* never out of range */
}

/* A host's usable NICs that no rank uses: named with the used ones and
 * what to do; a NIC of another kind is no rail; all used: nothing. */
static void idle_rails_are_named(void **state)
{
    (void)state;
    struct cb_port_desc p[] = {
        {"mlx5_0", 1, IBV_LINK_LAYER_INFINIBAND, 400000}, {"mlx5_1", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
        {"eth_nic", 1, IBV_LINK_LAYER_ETHERNET, 25000},   {"mlx5_2", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
        {"mlx5_3", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
    };
    char msg[CB_RAILS_NOTE];
    struct cb_rail_use two = {2, 0}, one = {1, 1}, four = {4, 1};
    assert_int_equal(cb_rails_unused(p, 5, (int[]){1, 0, 0, 1, 0}, &two, msg, sizeof msg), 2);
    assert_string_equal(msg, "RDMA NICs mlx5_1:1, mlx5_3:1 carry no traffic: the host's 2 ranks use mlx5_0:1, "
                             "mlx5_2:1 of its 4: start one rank per NIC (`mpirun --map-by ppr:4:node`)");
    assert_int_equal(cb_rails_unused(p, 5, (int[]){1, 0, 0, 0, 0}, &one, msg, sizeof msg), 3);
    assert_string_equal(msg, "RDMA NICs mlx5_1:1, mlx5_2:1, mlx5_3:1 carry no traffic: the host's 1 rank uses "
                             "mlx5_0:1 of its 4: start one rank per NIC (`mpirun --map-by ppr:4:node`, every NIC "
                             "in --hca), or let the rank drive them all: --hca mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1 "
                             "--channels 4");
    /* enough ranks, too short a --hca list */
    assert_int_equal(cb_rails_unused(p, 5, (int[]){1, 1, 0, 0, 1}, &four, msg, sizeof msg), 1);
    assert_string_equal(msg, "RDMA NIC mlx5_2:1 carries no traffic: the host's 4 ranks use mlx5_0:1, mlx5_1:1, "
                             "mlx5_3:1 of its 4: list every NIC in --hca: --hca mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1");
    /* every rail used (the Ethernet NIC is another fabric's): nothing */
    assert_int_equal(cb_rails_unused(p, 5, (int[]){1, 1, 0, 1, 1}, &four, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    /* the Ethernet NIC alone in use: the InfiniBand ones are not its rails */
    assert_int_equal(cb_rails_unused(p, 5, (int[]){0, 0, 1, 0, 0}, &one, msg, sizeof msg), 0);
}

/* The rails of a DGX-like host (8 InfiniBand NICs, tests/topo/2s8n.xml)
 * beside its Ethernet NIC: 4 ranks on every other NIC, one rank striping
 * over 4 of its list, 16 ranks on a --hca of 2; all 8 used: nothing. */
static void idle_rails_of_eight_nics(void **state)
{
    (void)state;
    struct cb_port_desc p[9] = {{"eth_nic", 1, IBV_LINK_LAYER_ETHERNET, 25000}};
    for (int i = 0; i < 8; i++) {
        snprintf(p[i + 1].name, sizeof p[i + 1].name, "mlx5_%d", i);
        p[i + 1].port = 1;
        p[i + 1].link_layer = IBV_LINK_LAYER_INFINIBAND;
        p[i + 1].rate_mbps = 200000;
    }
    char msg[CB_RAILS_NOTE];
    struct cb_rail_use four = {4, 0}, one = {1, 1}, sixteen = {16, 1}, eight = {8, 0};
    assert_int_equal(cb_rails_unused(p, 9, (int[]){0, 1, 0, 1, 0, 1, 0, 1, 0}, &four, msg, sizeof msg), 4);
    assert_string_equal(msg, "RDMA NICs mlx5_1:1, mlx5_3:1, mlx5_5:1, mlx5_7:1 carry no traffic: the host's 4 ranks "
                             "use mlx5_0:1, mlx5_2:1, mlx5_4:1, mlx5_6:1 of its 8: start one rank per NIC (`mpirun "
                             "--map-by ppr:8:node`)");
    assert_int_equal(cb_rails_unused(p, 9, (int[]){0, 1, 1, 1, 1, 0, 0, 0, 0}, &one, msg, sizeof msg), 4);
    assert_string_equal(msg, "RDMA NICs mlx5_4:1, mlx5_5:1, mlx5_6:1, mlx5_7:1 carry no traffic: the host's 1 rank "
                             "uses mlx5_0:1, mlx5_1:1, mlx5_2:1, mlx5_3:1 of its 8: start one rank per NIC (`mpirun "
                             "--map-by ppr:8:node`, every NIC in --hca), or let the rank drive them all: --hca "
                             "mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1 --channels 8");
    assert_int_equal(cb_rails_unused(p, 9, (int[]){0, 1, 1, 0, 0, 0, 0, 0, 0}, &sixteen, msg, sizeof msg), 6);
    assert_string_equal(msg, "RDMA NICs mlx5_2:1, mlx5_3:1, mlx5_4:1, mlx5_5:1, mlx5_6:1, mlx5_7:1 carry no traffic: "
                             "the host's 16 ranks use mlx5_0:1, mlx5_1:1 of its 8: list every NIC in --hca: --hca "
                             "mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1");
    assert_int_equal(cb_rails_unused(p, 9, (int[]){0, 1, 1, 1, 1, 1, 1, 1, 1}, &eight, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
}

/* One rank per host striping: channel c on device c mod ndev of each
 * end's own list. Equal lists of 8 keep channel c on rail c at both ends;
 * a host of 8 NICs against one of 4 (uneven hosts) meets on the same
 * device index only for channels 0-3: channels 4-7 leave the 8-NIC host
 * on mlx5_4-7 and reach the other on its mlx5_0-3. */
static void striping_over_uneven_hosts(void **state)
{
    (void)state;
    for (int c = 0; c < 16; c++) {
        assert_int_equal(cb_hca_channel_device(c, 8), c % 8);
        assert_int_equal(cb_hca_channel_device(c, 4), c % 4);
        assert_int_equal(cb_hca_channel_device(c, 8) == cb_hca_channel_device(c, 4), c % 8 < 4);
    }
    assert_true(cb_hca_stripes(1, 1, 8));
    assert_false(cb_hca_stripes(1, 4, 8));   /* 4 ranks on 8 NICs: rails, one NIC each */
    assert_false(cb_hca_stripes(1, 16, 8));
}

/* Hosts with as many NICs: nothing; one short: named with its count and
 * NICs, beside the others' count; unknown (0) hosts are not compared. */
static void host_nic_counts_compared(void **state)
{
    (void)state;
    char msg[CB_RAILS_NOTE] = "x";
    int most = 0;
    struct cb_host_nics same[] = {{"a", 8, ""}, {"b", 8, ""}, {"c", 0, ""}};
    assert_int_equal(cb_hosts_nic_counts(same, 3, 0, &most, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_int_equal(most, 8);
    struct cb_host_nics short_b[] = {{"a", 8, ""}, {"b", 4, "mlx5_0,mlx5_1,mlx5_2,mlx5_3"}, {"c", 8, ""}};
    assert_int_equal(cb_hosts_nic_counts(short_b, 3, 0, &most, msg, sizeof msg), 1);
    assert_string_equal(msg, "hosts differ in how many RDMA NICs their ranks use (the usable ones of the common "
                             "kind): b has 4 (mlx5_0,mlx5_1,mlx5_2,mlx5_3); a, c have 8. Ranks (and a striping "
                             "rank's channels) take NICs by position on every host, so where the counts differ "
                             "a rank's traffic leaves on one rail and arrives on another (through the spine on "
                             "a rail-optimized fabric). Check those hosts' NICs (ibstat, rdma link) or name the "
                             "same NICs on every host with --hca");
    /* two hosts, a tie: the larger count is the reference; --hca's advice */
    struct cb_host_nics tie[] = {{"a", 2, "mlx5_0,mlx5_1"}, {"b", 1, "mlx5_0"}};
    assert_int_equal(cb_hosts_nic_counts(tie, 2, 1, &most, msg, sizeof msg), 1);
    assert_int_equal(most, 2);
    assert_non_null(strstr(msg, "hosts differ in how many RDMA NICs --hca selects: b has 1 (mlx5_0); a has 2. "));
    assert_non_null(strstr(msg, "Give --hca as many NICs on every host"));
}

/* Thousands of hosts: a few named, the rest counted, the message bounded. */
static void many_hosts_nic_counts_bounded(void **state)
{
    (void)state;
    enum { N = 4096 };
    static struct cb_host_nics h[N];
    static char names[N][16];
    char msg[CB_RAILS_NOTE];
    int most = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "node%04d", i);
        h[i] = (struct cb_host_nics){names[i], i % 100 == 7 ? 4 : 8, i % 100 == 7 ? "mlx5_0..3" : ""};
    }
    assert_int_equal(cb_hosts_nic_counts(h, N, 0, &most, msg, sizeof msg), 41);
    assert_non_null(strstr(msg, ": node0007 has 4 (mlx5_0..3), node0107 has 4 (mlx5_0..3), node0207 has 4 "
                                "(mlx5_0..3), node0307 has 4 (mlx5_0..3) and 37 more; node0000, node0001, "
                                "node0002 and 4052 more have 8. "));
    assert_true(strlen(msg) < 700);
}

/* A host's NICs in a message: a numbered run shortened, else listed. */
static void nic_names_shortened(void **state)
{
    (void)state;
    char buf[24];
    const char *run[] = {"mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"}, *gap[] = {"mlx5_0", "mlx5_2"};
    const char *many[] = {"ibp12s0", "ibp75s0", "ibp84s0", "ibp141s0"}, *mixed[] = {"mlx5_0", "rxe1"};
    cb_nic_names_short(run, 4, buf, sizeof buf);
    assert_string_equal(buf, "mlx5_0..3");
    cb_nic_names_short(run, 1, buf, sizeof buf);
    assert_string_equal(buf, "mlx5_0");
    cb_nic_names_short(gap, 2, buf, sizeof buf);
    assert_string_equal(buf, "mlx5_0,mlx5_2");
    cb_nic_names_short(mixed, 2, buf, sizeof buf);
    assert_string_equal(buf, "mlx5_0,rxe1");
    cb_nic_names_short(many, 4, buf, sizeof buf);
    assert_string_equal(buf, "ibp12s0,ibp75s0,ibp8...");
}

/* rt_tos2priority (include/net/route.h): ip_tos2prio[IPTOS_TOS(tos) >> 1], the
 * table of net/ipv4/route.c (index 1 is ECN_OR_COST(BESTEFFORT) since 2.6.x,
 * FILLER before). The DSCP's top bits and the ECN bit do not count. */
static void tos_to_prio_is_the_kernels(void **state)
{
    (void)state;
    static const struct { int tos, prio; } cases[] = {
        {0, 0}, {0x02, 0}, {0x04, 0}, {0x08, 2}, {0x0c, 2}, {0x10, 6}, {0x14, 6}, {0x18, 4}, {0x1c, 4},
        {104, 2},    /* DSCP 26 (AF31), the default_roce_tos of the VM cases */
        {0xb8, 4},   /* DSCP 46 (EF) */
        {160, 0},    /* DSCP 40 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(vb_tos_to_prio(cases[i].tos), cases[i].prio);
    for (int tos = 0; tos < 256; tos++) {
        assert_int_equal(vb_tos_to_prio(tos | 1), vb_tos_to_prio(tos & ~1));
        assert_int_equal(vb_tos_to_prio(tos ^ 0xe0), vb_tos_to_prio(tos));
    }
}

/* /proc/net/vlan/eth0.100 as the kernel writes it (vlanproc.c), ingress map included */
static const char vlan_proc[] =
    "eth0.100  VID: 100\t REORDER_HDR: 1  dev->priv_flags: 1021\n"
    "         total frames received            0\n"
    "          total bytes received            0\n"
    "      Broadcast/Multicast Rcvd            0\n"
    "\n"
    "      total frames transmitted           42\n"
    "       total bytes transmitted         4242\n"
    "Device: eth0\n"
    "INGRESS priority mappings: 0:0  1:0  2:0  3:0  4:0  5:0  6:0  7:0\n"
    " EGRESS priority mappings: 0:1 2:3 4:5 6:7 \n";

/* The egress map's PCP for a priority: its entry, 0 when it has none; the
 * ingress map (same shape, one line before) is not read. */
static void vlan_egress_map_is_parsed(void **state)
{
    (void)state;
    int pcp = -1;
    static const int want[8] = {1, 0, 3, 0, 5, 0, 7, 0};
    for (int prio = 0; prio < 8; prio++) {
        assert_int_equal(vb_vlan_egress_pcp(vlan_proc, prio, &pcp), CB_OK);
        assert_int_equal(pcp, want[prio]);
    }
    assert_int_equal(vb_vlan_egress_pcp("Device: eth0\n EGRESS priority mappings: \n", 4, &pcp), CB_OK);
    assert_int_equal(pcp, 0);
    assert_int_equal(vb_vlan_egress_pcp("Device: eth0\nINGRESS priority mappings: 4:5\n", 4, &pcp), CB_EDEVICE);
    char dev[16];
    assert_int_equal(vb_vlan_real_dev(vlan_proc, dev, sizeof dev), CB_OK);
    assert_string_equal(dev, "eth0");
    assert_int_equal(vb_vlan_real_dev(vlan_proc, dev, 4), CB_EDEVICE);   /* "eth0" needs 5 bytes */
    assert_int_equal(vb_vlan_real_dev("eth0.100  VID: 100\n", dev, sizeof dev), CB_EDEVICE);
}

static void mixed_link_layers_are_named(void **state)
{
    (void)state;
    struct cb_port_desc same[] = {{"rxe0", 1, IBV_LINK_LAYER_ETHERNET, 0}, {"rxe1", 1, IBV_LINK_LAYER_ETHERNET, 0}};
    struct cb_port_desc mixed[] = {{"mlx5_0", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
                                   {"mlx5_1", 1, IBV_LINK_LAYER_INFINIBAND, 400000},
                                   {"mlx5_2", 1, IBV_LINK_LAYER_ETHERNET, 100000}};
    char msg[128] = "";
    assert_int_equal(cb_ports_mixed_link(same, 2, msg, sizeof msg), 0);
    assert_int_equal(cb_ports_mixed_link(mixed, 3, msg, sizeof msg), 1);
    assert_string_equal(msg, "mlx5_0:1 (InfiniBand) and mlx5_2:1 (Ethernet)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_entry_layout),
        cmocka_unit_test(fifo_entry_torn_reads_are_rejected),
        cmocka_unit_test(handle_round_trip),
        cmocka_unit_test(handle_refused),
        cmocka_unit_test(reply_round_trip),
        cmocka_unit_test(reply_refused),
        cmocka_unit_test(mtu_is_the_smaller_on_both_ends),
        cmocka_unit_test(mtu_asked_above_the_peer_is_refused),
        cmocka_unit_test(infiniband_to_ethernet_is_refused),
        cmocka_unit_test(rate_mismatch_is_a_warning),
        cmocka_unit_test(hca_grammar_good),
        cmocka_unit_test(hca_grammar_bad),
        cmocka_unit_test(hca_selects),
        cmocka_unit_test(other_kinds_of_nic_are_skipped),
        cmocka_unit_test(hca_stripe_rule),
        cmocka_unit_test(hca_channel_device),
        cmocka_unit_test(mixed_link_layers_are_named),
        cmocka_unit_test(tos_to_prio_is_the_kernels),
        cmocka_unit_test(vlan_egress_map_is_parsed),
        cmocka_unit_test(idle_rails_are_named),
        cmocka_unit_test(idle_rails_of_eight_nics),
        cmocka_unit_test(striping_over_uneven_hosts),
        cmocka_unit_test(host_nic_counts_compared),
        cmocka_unit_test(many_hosts_nic_counts_bounded),
        cmocka_unit_test(nic_names_shortened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
