/* What connections cost a rank at scale: the algorithms' own counts of
 * connection ends, the transport's own buffer geometry, and a measured
 * per-connection set-up cost. */
#include "model.h"
#include "algo/algo.h"

int cb_model_scale(const struct cb_scale_terms *t, cb_algo algo, int nranks, struct cb_scale_need *need)
{
    const struct cb_algo_desc *d = cb_algo_desc(algo);
    if (!d || !d->conn_ends)
        return -1;
    int channels = t->cfg.channels > 0 ? t->cfg.channels : 1, most = 0;
    for (int r = 0; r < nranks; r++) {   /* trees and folds differ per rank */
        int ends = d->conn_ends(nranks, r, channels);
        most = ends > most ? ends : most;
    }
    const struct cb_transport_ops *tr = t->transport;
    size_t pair = d->shared_slots
                      ? tr->geometry_bytes(&t->cfg, CB_END_SEND_SHARED) + tr->geometry_bytes(&t->cfg, CB_END_RECV_SHARED)
                      : tr->geometry_bytes(&t->cfg, CB_END_SEND) + tr->geometry_bytes(&t->cfg, CB_END_RECV);
    need->conn_ends = most;
    need->qps = (long long)most * t->cfg.qps_per_conn;
    need->buffer_bytes = (size_t)(most / 2) * pair;
    if (d->shared_slots)
        need->buffer_bytes += tr->shared_geometry_bytes(&t->cfg, d->shared_slots(nranks, t->cfg.nslots));
    need->setup_s = t->setup_per_conn_s < 0 ? -1 : t->setup_fixed_s + most * t->setup_per_conn_s;
    return 0;
}
