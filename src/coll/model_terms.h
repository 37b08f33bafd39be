/* The cost model's building blocks, for the algorithms' model_time functions
 * (struct cb_algo_impl): each algorithm is its sequence of steps as its code
 * runs them; a step costs alpha + bytes * beta of the link it crosses, plus
 * bytes * gamma when it reduces. src/coll/model.c has the reasons. */
#ifndef CB_MODEL_TERMS_H
#define CB_MODEL_TERMS_H

#include "model.h"

struct cb_link {
    double a, b;   /* alpha (s), beta (s per byte) */
};

/* Every rank talks to a peer `d` ranks away. `aligned`: partners pair up
 * inside blocks of 2d ranks (XOR partners), so d < ranks per node stays in
 * the node; otherwise (rings, trees) some pair crosses nodes whenever there
 * are several. `all_cross`: all ranks' traffic goes through the leaf uplinks. */
struct cb_link cb_model_link(const struct cb_machine *m, int d, int aligned, int all_cross);
/* The link every rank's traffic crosses at once when each talks to all. */
struct cb_link cb_model_top_link(const struct cb_machine *m);
/* Rounds of at most per_round bytes that move `bytes` (at least one). */
double cb_model_rounds(double bytes, double per_round);
/* Bytes one step moves per peer and channel. */
double cb_model_chunk(const struct cb_machine *m);
/* `steps` ring steps of `piece` bytes; `fused`: reduced straight from the
 * received slot into the sent one, so half the transfer term is saved. */
double cb_model_ring_steps(const struct cb_machine *m, int steps, double piece, double g, int fused);
/* Recursive doubling (or halving) over the largest power of two of ranks,
 * moving bytes * d / p at distance d (share) or all bytes (!share). */
double cb_model_xor_steps(const struct cb_machine *m, double bytes, int share, double g);
/* The fold of a rank count that is not a power of two: a step there and one back. */
double cb_model_fold(const struct cb_machine *m, double in_bytes, double out_bytes, double reduce_bytes, double g);
/* r rounds of posting a send to each of the other n - 1 ranks at once. */
double cb_model_posted_rounds(struct cb_link l, int n, double r);

#endif
