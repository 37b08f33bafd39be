/* The alpha-beta-gamma cost model: predicted time of each algorithm of a
 * collective, from per-step latency (alpha), per-byte transfer (beta) and
 * per-byte reduction (gamma) terms. `--algo auto` picks with it per size on
 * the terms measured at start-up; `collbench model` predicts at scales we
 * cannot run. Assumptions: docs/algorithms.md. */
#ifndef CB_MODEL_H
#define CB_MODEL_H

#include <stdio.h>
#include "coll.h"
#include "cost.h"

/* A machine: nodes of ranks_per_node ranks (ranks numbered node by node),
 * under leaf switches of nodes_per_leaf nodes whose uplinks are
 * oversubscribed by `oversub` (>= 1). One level when nodes == 1. */
/* The largest rank count the model takes: its steps count ranks in int,
 * and a machine of 2^24 ranks is beyond any it is asked about. */
#define CB_MODEL_MAX_RANKS (1 << 24)

struct cb_machine {
    int nranks, nodes, nodes_per_leaf, channels;
    double oversub;
    struct cb_cost intra, inter;   /* within a node, between nodes */
};

/* Predicted seconds of `algo` running `coll` on `bytes` (the size column:
 * all_reduce's vector, the whole buffer of the others), or -1 when algo does
 * not implement coll. */
double cb_model_time(const struct cb_machine *m, cb_coll coll, cb_algo algo, size_t bytes, cb_type t);
/* The algorithms of coll that the model ranks (those with a model_time),
 * in CB_ALGO_TABLE's order; returns how many (at most max). */
int cb_model_algos(cb_coll coll, cb_algo *out, int max);
/* The algorithm with the least predicted time. */
cb_algo cb_model_best(const struct cb_machine *m, cb_coll coll, size_t bytes, cb_type t);
/* One machine level from one set of terms (what auto uses). */
void cb_machine_flat(struct cb_machine *m, int nranks, int channels, const struct cb_cost *c);

/* What an algorithm's connections cost one rank at scale (`collbench model
 * --scale`): the transport's buffers for the slot geometry in cfg
 * (geometry_bytes, what its connections report in a run), cfg's QPs per
 * connection, and set-up as fixed + per_conn x connection ends, from the
 * measurement in results/measured/bench-scale.json (< 0: not known). */
struct cb_scale_terms {
    const struct cb_transport_ops *transport;
    struct cb_transport_config cfg;   /* slot_bytes, nslots, qps_per_conn, channels */
    double setup_fixed_s, setup_per_conn_s;
};

struct cb_scale_need {
    int conn_ends;         /* the most any rank makes: a send or a receive with one peer on one channel */
    long long qps;         /* conn_ends x QPs per connection */
    size_t buffer_bytes;   /* half the ends send, half receive */
    double setup_s;        /* < 0: not known */
};

/* The most any rank of nranks needs for algo's connections; -1 where the
 * algorithm makes none of ours (MPI's), else 0. */
int cb_model_scale(const struct cb_scale_terms *t, cb_algo algo, int nranks, struct cb_scale_need *need);

/* `collbench tune`'s file: "key value" lines. Load returns CB_EUSAGE with a
 * message naming the file and line when it cannot be read. */
cb_status cb_cost_save(FILE *f, const struct cb_cost *c, const char *transport);
cb_status cb_cost_load(const char *path, struct cb_cost *c);
/* The file's text (len bytes, any content) as the file `name`: every value
 * range-checked (no inf, nan or absurd figures); a refusal names the line,
 * with its bytes escaped, when `report`. */
cb_status cb_cost_parse(const char *text, size_t len, const char *name, struct cb_cost *c, int report);

#endif
