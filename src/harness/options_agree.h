/* What every rank of a job must share of its command line, and the check at
 * start-up that they do: a launcher can give each rank its own arguments
 * (mpirun's `-np 1 A : -np 1 B`), and ranks that disagree on the type, the
 * sizes or the algorithm would report "wrong elements" or wait out -T
 * instead of a usage error. */
#ifndef CB_OPTIONS_AGREE_H
#define CB_OPTIONS_AGREE_H

#include <stdint.h>
#include "core/bootstrap.h"
#include "options.h"

#define CB_AGREED_MAX 32

/* The options that must agree: a digest of each, and its flag's name.
 * Returns how many (at most CB_AGREED_MAX). */
int cb_options_digest(const struct cb_options *o, uint64_t *digests, const char **names);

/* After cb_boot_init, with this rank's status of a quiet cb_options_parse
 * of argc/argv. A parse error is printed once, by the lowest rank that has
 * one (it parses again, reporting); options that differ are named by rank 0
 * with the ranks that differ from it. Every rank returns the same status:
 * CB_OK, CB_EUSAGE, or the bootstrap's failure. */
cb_status cb_options_agree(struct cb_boot *b, int argc, char **argv, const struct cb_options *o, cb_status parsed);

#endif
