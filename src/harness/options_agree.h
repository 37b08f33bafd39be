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

/* What a command must share: a digest of each option and its flag's name. */
struct cb_agreed {
    int n;
    const char *names[CB_AGREED_MAX];
    uint64_t digests[CB_AGREED_MAX];
};
/* Add one option's bytes (FNV-1a over length and bytes). */
void cb_agreed_add(struct cb_agreed *a, const char *name, const void *p, size_t len);

/* The collectives' options that must agree. */
void cb_options_digest(const struct cb_options *o, struct cb_agreed *a);
/* Of those, the transport's (every command that moves data shares them). */
void cb_options_digest_transport(const struct cb_options *o, struct cb_agreed *a);

/* A command's parser run again, reporting its error (its result unused). */
typedef void cb_reparse_fn(int argc, char **argv);

/* After cb_boot_init, with this rank's parse status of argc/argv and, when
 * it parsed, what it must share. A parse error is printed once, by the
 * lowest rank that has one (it calls reparse(argc, argv));
 * options that differ are named by rank 0 with the ranks that differ from
 * it. Every rank returns the same status: CB_OK, CB_EUSAGE, or the
 * bootstrap's failure. Any command's agreement is this one. */
cb_status cb_agree(struct cb_boot *b, int argc, char **argv, cb_status parsed, const struct cb_agreed *mine,
                   cb_reparse_fn *reparse, int timeout_ms);

/* cb_agree for the collectives, with the status of a quiet cb_options_parse
 * of argc/argv. */
cb_status cb_options_agree(struct cb_boot *b, int argc, char **argv, const struct cb_options *o, cb_status parsed);

#endif
