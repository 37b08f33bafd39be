/* The SL of --ib-connect oob QPs on RoCE, derived as rdma_cm derives it.
 * rdma_cm (drivers/infiniband/core/cma.c, iboe_tos_to_sl) turns the traffic
 * class into a Linux priority (rt_tos2priority: ip_tos2prio[IPTOS_TOS(tos)
 * >> 1]) and that into the SL: through the real device's prio -> traffic
 * class map when it has traffic classes (num_tc), else through the VLAN
 * netdev's egress map (the PCP), else 0; a netdev on top of others (bond,
 * macvlan) answers for its first lower device. The egress map is in
 * /proc/net/vlan/<netdev>; the prio -> tc map is only in netlink, so a
 * device with traffic classes gets a warning naming --sl / --ib-connect cm
 * instead of a guess. */
#include "verbs_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vb_tos_to_prio(int tos)
{
    /* net/ipv4/route.c ip_tos2prio: TC_PRIO_BESTEFFORT 0, BULK 2, INTERACTIVE 6, INTERACTIVE_BULK 4 */
    static const unsigned char ip_tos2prio[16] = {0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4};
    return ip_tos2prio[(tos & 0x1e) >> 1];
}

cb_status vb_vlan_egress_pcp(const char *text, int prio, int *pcp)
{
    static const char key[] = "EGRESS priority mappings:";
    const char *p = strstr(text, key);
    if (!p)
        return CB_EDEVICE;
    p += sizeof key - 1;
    *pcp = 0;   /* a priority without a mapping is sent with PCP 0 (vlan_dev_get_egress_qos_mask) */
    unsigned from, to;
    int n;
    while (sscanf(p, " %u:%u%n", &from, &to, &n) == 2) {
        if ((int)from == prio)
            *pcp = (int)(to & 7);
        p += n;
    }
    return CB_OK;
}

cb_status vb_vlan_real_dev(const char *text, char *dev, size_t len)
{
    const char *p = strstr(text, "\nDevice: ");
    if (!p)
        return CB_EDEVICE;
    p += strlen("\nDevice: ");
    size_t n = strcspn(p, " \t\n");
    if (!n || n >= len)
        return CB_EDEVICE;
    memcpy(dev, p, n);
    dev[n] = '\0';
    return CB_OK;
}

/* `dev` is a VLAN netdev (its uevent says DEVTYPE=vlan; readable by anyone). */
static int is_vlan(const char *dev)
{
    char path[128], buf[512];
    snprintf(path, sizeof path, "/sys/class/net/%s/uevent", dev);
    return !vb_read_file(path, buf, sizeof buf) && strstr(buf, "DEVTYPE=vlan\n");
}

/* A sign that `dev` has traffic classes (num_tc > 0): a transmit queue in a class
 * above 0 (queues/tx-N/traffic_class reads 0 for every queue without them). */
static int has_traffic_classes(const char *dev)
{
    char path[160], buf[16];
    for (int q = 0; q < 1024; q++) {
        snprintf(path, sizeof path, "/sys/class/net/%s/queues/tx-%d/traffic_class", dev, q);
        if (vb_read_file(path, buf, sizeof buf))
            return 0;
        if (atoi(buf) > 0)
            return 1;
    }
    return 0;
}

static void sl_from(struct vctx *t, int sl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sl_from(struct vctx *t, int sl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    t->oob_sl = sl;
    vsnprintf(t->oob_sl_from, sizeof t->oob_sl_from, fmt, ap);
    va_end(ap);
}

/* `dev` has traffic classes: rdma_cm would read its priority -> class map (netlink only). */
static void sl_unread_classes(struct vctx *t, const char *dev, int prio)
{
    cb_log_warn("verbs: %s:%d: %s has traffic classes: rdma_cm takes the SL from its priority -> class map, "
                "which only netlink shows; the oob SL stays 0: pass --sl (`tc qdisc show dev %s`, the class of "
                "priority %d) or use --ib-connect cm", t->dev, t->port, dev, dev, prio);
    sl_from(t, 0, "%s traffic classes unread", dev);
}

/* Through the egress map of the VLAN netdev `ndev`, or its real device's classes. */
static void sl_from_vlan(struct vctx *t, const char *ndev, int prio)
{
    char path[128], text[4096], real[64];
    int pcp;
    snprintf(path, sizeof path, "/proc/net/vlan/%s", ndev);
    const char *why = vb_read_file(path, text, sizeof text) ? strerror(errno)
                      : vb_vlan_egress_pcp(text, prio, &pcp) ? "no EGRESS line" : NULL;
    if (why) {
        cb_log_warn("verbs: %s:%d: --ib-connect oob cannot read the egress map of VLAN %s from %s (%s; root "
                    "only on most kernels): its SL stays 0 where rdma_cm would take the map's PCP for priority "
                    "%d; pass --sl or use --ib-connect cm", t->dev, t->port, ndev, path, why, prio);
        sl_from(t, 0, "VLAN %s egress map unread", ndev);
    } else if (!vb_vlan_real_dev(text, real, sizeof real) && has_traffic_classes(real)) {
        sl_unread_classes(t, real, prio);
    } else {
        sl_from(t, pcp, "VLAN %s egress map, prio %d", ndev, prio);
    }
}

/* The first device under `dev` (a bond's or macvlan's: sysfs lower_NAME links); 0 when none. */
static int first_lower(const char *dev, char *lower, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s", dev);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)))
        if (!strncmp(e->d_name, "lower_", 6) && strlen(e->d_name + 6) < len) {
            snprintf(lower, len, "%s", e->d_name + 6);
            found = 1;
        }
    closedir(d);
    return found;
}

/* rdma_cm's order: the netdev itself if a VLAN, else its first lower device
 * (a VLAN's map or that device's classes), else its own classes, else 0. */
static void sl_from_netdev(struct vctx *t, const char *ndev, int prio)
{
    char lower[64] = "";
    if (is_vlan(ndev))
        sl_from_vlan(t, ndev, prio);
    else if (first_lower(ndev, lower, sizeof lower) && is_vlan(lower))
        sl_from_vlan(t, lower, prio);
    else if (has_traffic_classes(lower[0] ? lower : ndev))
        sl_unread_classes(t, lower[0] ? lower : ndev, prio);
    else
        sl_from(t, 0, "no VLAN on %s", ndev);
}

void vb_oob_choose_sl(struct vctx *t, int tc)
{
    char path[160], ndev[64];
    sl_from(t, 0, "oob: no path record");
    if (t->pattr.link_layer != IBV_LINK_LAYER_ETHERNET)
        return;
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/gid_attrs/ndevs/%d", t->dev, t->port,
             t->gid_index);
    if (vb_read_file(path, ndev, sizeof ndev) || !ndev[0]) {
        sl_from(t, 0, "no netdev for GID index %d", t->gid_index);
        return;
    }
    ndev[strcspn(ndev, "\n")] = '\0';
    sl_from_netdev(t, ndev, vb_tos_to_prio(tc));
}
